"""Recommendation algorithms: plain numpy/scipy/implicit code, no Django (CONVENTIONS §0)."""
