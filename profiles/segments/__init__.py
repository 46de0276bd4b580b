"""Segments: rule segments compiled to SQL, imported lists and machine-learned segments.

- `rules.py`: the rule language, parsed and validated without Django (pure).
- `compiler.py`: a validated rule tree to one ORM queryset of customers.
- `services.py`: create, update, materialize membership, snapshots.
- `selectors.py`: reads for pages and the API.
"""
