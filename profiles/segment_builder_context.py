"""The builder's rule tree as template context: for each group and condition the widgets that
fit it (field, operator and value inputs, category and segment selects) and its error."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from profiles.forms_segment_builder import (
    ATTRIBUTE_CHOICE,
    EVENT_OP_LABELS,
    NEVER,
    ROOT,
    SUM_OPS,
    condition_parts,
)
from profiles.segments.rules import (
    CONSENT_PURPOSES,
    COUNT_OPS,
    EVENT_CHANNELS,
    EVENT_LABELS,
    EVENT_TYPES,
    FEATURE_FIELDS,
    MAX_DEPTH,
    MENTION_SENTIMENT_LABELS,
    MENTION_SENTIMENTS,
    NO_VALUE_OPS,
    OP_LABELS,
    OPS_BY_TYPE,
    PROFILE_FIELDS,
    REACHABLE_CHANNELS,
    field_type,
)


@dataclass(frozen=True)
class BuilderChoices:
    """What the selects offer: item categories, the other segments and the brands listened
    for (id, name)."""

    categories: list[str]
    segments: list[tuple[int, str]]
    brands: Mapping[int, str] = field(default_factory=dict)


def field_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """The field select, grouped (optgroups)."""
    return [
        ("Profile", [(f"profile:{k}", label) for k, (_, label) in PROFILE_FIELDS.items()]),
        ("Attributes", [(ATTRIBUTE_CHOICE, "Custom attribute…")]),
        ("Features", [(f"feature:{k}", label) for k, (_, label) in FEATURE_FIELDS.items()]),
        (
            "Behaviour, consent, segments",
            [
                ("event", "Did an event…"),
                ("consent", "Consent"),
                ("reachable", "Reachability"),
                ("segment", "Member of segment"),
                ("mention", "Mentioned a brand…"),
            ],
        ),
    ]


def tree_context(
    rules: Mapping, *, errors: Mapping[str, str] | None = None, choices: BuilderChoices
) -> dict:
    """The root group's context for `_segment_group.html` (recursive)."""
    return _group_context(rules, ROOT, 1, errors or {}, choices)


def _group_context(group: Mapping, path: str, depth: int, errors, choices) -> dict:
    children = []
    for i, child in enumerate(group.get("conditions") or []):
        child_path = f"{path}.{i}"
        if isinstance(child, Mapping) and "conditions" in child:
            children.append(_group_context(child, child_path, depth + 1, errors, choices))
        else:
            children.append(_condition_context(child, child_path, errors, choices))
    return {
        "is_group": True,
        "path": path,
        "op": group.get("op", "and"),
        "children": children,
        "error": errors.get(path, ""),
        "depth": depth,
        "is_root": path == ROOT,
        "can_nest": depth < MAX_DEPTH,
    }


def _options(values, selected: str, labels: Mapping[str, str] | None = None) -> list[tuple]:
    """(value, label, selected) triples; a selected value not offered is kept, so that what
    the user had is never silently replaced."""
    options = [(str(v), (labels or {}).get(v, str(v)), str(v) == selected) for v in values]
    if selected and not any(o[2] for o in options):
        options.insert(0, (selected, selected, True))
    return options


def _condition_context(c: Any, path: str, errors, choices: BuilderChoices) -> dict:
    c = c if isinstance(c, Mapping) else {}
    parts = condition_parts(c)
    kind = str(c.get("kind", ""))
    ctx: dict[str, Any] = {
        "is_group": False,
        "path": path,
        "kind": kind,
        "parts": parts,
        "field_choice": parts["field"],
        "error": errors.get(path, ""),
    }
    if kind in ("profile", "feature"):
        name = str(c.get("field", ""))
        ftype = field_type(kind, name) or "text"
        op = parts.get("op", "")
        ctx.update(
            is_attribute=parts["field"] == ATTRIBUTE_CHOICE,
            ops=_options(OPS_BY_TYPE[ftype], op, OP_LABELS),
            needs_value=op not in NO_VALUE_OPS,
            is_between=op == "between",
            days=op in ("in_last_days", "not_in_last_days"),
            input_type=_input_type(ftype, op),
            is_affinity=name == "affinity",
        )
        if name == "affinity":
            ctx["categories"] = _options(choices.categories, parts.get("category", ""))
    elif kind == "event":
        aggregate = parts.get("aggregate", "count")
        ctx.update(
            event_types=_options(EVENT_TYPES, parts.get("event_type", ""), EVENT_LABELS),
            ops=_options(
                (NEVER, *COUNT_OPS) if aggregate == "count" else SUM_OPS,
                parts.get("op", ""),
                EVENT_OP_LABELS,
            ),
            never=parts.get("op") == NEVER,
            aggregates=_options(("count", "sum"), aggregate, {"count": "times", "sum": "in value"}),
            categories=[
                ("", "any category", not parts.get("category")),
                *_options(choices.categories, parts.get("category", "")),
            ],
            channels=[
                ("", "any channel", not parts.get("channel")),
                *_options(EVENT_CHANNELS, parts.get("channel", "")),
            ],
        )
    elif kind == "mention":
        ctx.update(
            sentiments=_options(
                MENTION_SENTIMENTS,
                parts.get("sentiment", ""),
                {k: v or "with any sentiment" for k, v in MENTION_SENTIMENT_LABELS.items()},
            ),
            brands=[
                ("", "a brand", not parts.get("brand")),
                *_options(
                    [str(pk) for pk in choices.brands],
                    parts.get("brand", ""),
                    {str(pk): name for pk, name in choices.brands.items()},
                ),
            ],
            ops=_options((NEVER, *COUNT_OPS), parts.get("op", ""), EVENT_OP_LABELS),
            never=parts.get("op") == NEVER,
        )
    elif kind == "consent":
        ctx.update(
            purposes=_options(
                CONSENT_PURPOSES,
                parts.get("purpose", ""),
                {p: p.replace("_", " ") for p in CONSENT_PURPOSES},
            ),
            ops=_options(
                ("granted", "not_granted"),
                parts.get("op", ""),
                {"granted": "granted", "not_granted": "not granted"},
            ),
        )
    elif kind == "reachable":
        ctx.update(
            channels=_options(REACHABLE_CHANNELS, parts.get("channel", "")),
            ops=_options(("is", "is_not"), parts.get("op", ""), {"is": "is", "is_not": "is not"}),
        )
    elif kind == "segment":
        ctx.update(
            segments=_options(
                [str(pk) for pk, _ in choices.segments],
                parts.get("segment", ""),
                {str(pk): name for pk, name in choices.segments},
            ),
            ops=_options(("in", "not_in"), parts.get("op", ""), {"in": "in", "not_in": "not in"}),
        )
    return ctx


def _input_type(ftype: str, op: str) -> str:
    if op in ("in", "not_in", "contains", "not_contains"):
        return "text"
    if op in ("in_last_days", "not_in_last_days") or ftype == "number":
        return "number"
    if ftype in ("date", "time"):
        return "date"
    return "text"
