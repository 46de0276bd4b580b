"""The rule segment builder's form: the whole rule tree is one HTML form.

Inputs are named by the node's path in the tree: the root group is "0", its children
"0.0", "0.1", …, a nested group's children "0.1.0", …; groups have `g-<path>-op` and
conditions `c-<path>-<part>` (`c-0.2-field`, `c-0.2-op`, `c-0.2-value`, …).
`fields_to_rules` turns the posted fields back into the rule tree (as typed: validation is
the rule language's job), `rules_apply_action` applies a button ("add-condition:0.1",
"add-group:0", "remove:0.1.0"), `rules_to_fields` is the inverse of `fields_to_rules`, and
profiles/segment_builder_context.py prepares a tree for the recursive templates (the widgets
that fit each condition, its error). No Django here except the small name/description form.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from django import forms

from profiles.models import Segment
from profiles.segments.rules import (
    ATTRIBUTE_PREFIX,
    CONSENT_PURPOSES,
    COUNT_OPS,
    MAX_DEPTH,
    MENTION_SENTIMENTS,
    NO_VALUE_OPS,
    OPS_BY_TYPE,
    REACHABLE_CHANNELS,
    field_type,
)

ROOT = "0"
FIELD_NAME = re.compile(r"^([cg])-(0(?:\.\d{1,3})*)-([a-z_0-9]+)$")
ATTRIBUTE_CHOICE = "profile:" + ATTRIBUTE_PREFIX
SIMPLE_KINDS = ("event", "consent", "reachable", "segment", "mention")
CONDITION_PARTS = (
    "op",
    "value",
    "value2",
    "key",
    "category",
    "event_type",
    "aggregate",
    "within_days",
    "channel",
    "purpose",
    "segment",
    "item",
    "campaign_id",
    "sentiment",
    "brand",
)

# "never" is how the builder says "exactly 0 times" (stored as op eq, value 0).
NEVER = "never"
EVENT_OP_LABELS = {
    NEVER: "not at all",
    "gte": "at least",
    "gt": "more than",
    "eq": "exactly",
    "lte": "at most",
    "lt": "fewer than",
}
SUM_OPS = ("gte", "gt", "lte", "lt")


def condition_default() -> dict:
    """What "+ condition" adds: valid at once, so the count stays visible."""
    return {"kind": "feature", "field": "orders", "op": "gte", "value": 1}


def rules_default() -> dict:
    return {"op": "and", "conditions": [condition_default()]}


STARTERS: dict[str, tuple[str, dict]] = {
    "bought-twice": (
        "Bought in a category at least 2 times in 30 days",
        {
            "op": "and",
            "conditions": [
                {
                    "kind": "event",
                    "event_type": "purchase",
                    "category": "",
                    "within_days": 30,
                    "op": "gte",
                    "value": 2,
                }
            ],
        },
    ),
    "no-email-open": (
        "Did not open an email in 60 days",
        {
            "op": "and",
            "conditions": [
                {
                    "kind": "event",
                    "event_type": "email_open",
                    "within_days": 60,
                    "op": "eq",
                    "value": 0,
                },
                {"kind": "reachable", "channel": "email", "op": "is"},
            ],
        },
    ),
    "lapsed-high-spenders": (
        "Lapsed high spenders",
        {
            "op": "and",
            "conditions": [
                {"kind": "feature", "field": "rfm_monetary", "op": "gte", "value": 4},
                {
                    "kind": "feature",
                    "field": "last_purchase",
                    "op": "not_in_last_days",
                    "value": 90,
                },
            ],
        },
    ),
}


def rules_starter(name: str, *, categories: list[str]) -> dict:
    """A starter rule from the new-segment page's links (the default one if unknown)."""
    if name not in STARTERS:
        return rules_default()
    rules = STARTERS[name][1]
    if name == "bought-twice":
        condition = {**rules["conditions"][0]}
        if categories:
            condition["category"] = categories[0]
        else:
            condition.pop("category")
        rules = {**rules, "conditions": [condition]}
    return rules


# --- posted fields -> rule tree ----------------------------------------------------------


def fields_to_rules(data: Mapping[str, Any]) -> dict:
    """The rule tree the posted fields describe, children ordered by their index."""
    groups: dict[str, dict[str, str]] = {ROOT: {}}
    conditions: dict[str, dict[str, str]] = {}
    for name in data:
        match = FIELD_NAME.match(name)
        if not match:
            continue
        sort, path, part = match.groups()
        value = data.get(name)
        value = value if isinstance(value, str) else ""
        (groups if sort == "g" else conditions).setdefault(path, {})[part] = value
    for path in list(conditions):
        if "field" not in conditions[path]:
            del conditions[path]
    # Every ancestor of a node is a group, even if its op input went missing.
    for path in [*groups, *conditions]:
        parts = path.split(".")
        for end in range(1, len(parts)):
            parent = ".".join(parts[:end])
            if parent not in conditions:
                groups.setdefault(parent, {})
    return _build_group(ROOT, groups, conditions)


def _index(path: str) -> int:
    return int(path.rsplit(".", 1)[1])


def _children_of(path: str, paths) -> list[str]:
    prefix = path + "."
    found = [p for p in paths if p.startswith(prefix) and "." not in p[len(prefix) :]]
    return sorted(found, key=_index)


def _build_group(path: str, groups, conditions) -> dict:
    op = groups[path].get("op", "and")
    children = _children_of(path, [*groups, *conditions])
    built = [
        _build_group(child, groups, conditions)
        if child in groups
        else _build_condition(conditions[child])
        for child in children
    ]
    return {"op": op if op in ("and", "or") else "and", "conditions": built}


def _build_condition(parts: Mapping[str, str]) -> dict:
    choice = parts.get("field", "")
    changed = "prev" in parts and parts["prev"] != choice
    kind, _, name = choice.partition(":")
    if kind in ("profile", "feature"):
        if choice == ATTRIBUTE_CHOICE:
            name = ATTRIBUTE_PREFIX + parts.get("key", "").strip()
        condition: dict[str, Any] = {"kind": kind, "field": name}
        ftype = field_type(kind, name)
        ops = OPS_BY_TYPE.get(ftype or "text", ())
        op = parts.get("op", "")
        if changed or op not in ops:
            op = ops[0] if ops else op
        condition["op"] = op
        if name == "affinity":
            condition["category"] = parts.get("category", "")
        if op not in NO_VALUE_OPS:
            value = "" if changed else parts.get("value", "").strip()
            condition["value"] = (
                [value, "" if changed else parts.get("value2", "").strip()]
                if op == "between"
                else value
            )
        return condition
    if kind == "event":
        op = parts.get("op", "")
        aggregate = "count" if op == NEVER else parts.get("aggregate") or "count"
        allowed = (*COUNT_OPS, NEVER) if aggregate == "count" else SUM_OPS
        condition = {
            "kind": "event",
            "event_type": parts.get("event_type") or "purchase",
            "aggregate": aggregate,
            "op": "gte" if changed or op not in allowed else op,
            "value": "1" if changed else parts.get("value", "").strip(),
        }
        if condition["op"] == NEVER:
            condition["op"], condition["value"] = "eq", "0"
        for part in ("within_days", "category", "channel", "item", "campaign_id"):
            text = "" if changed and part == "within_days" else parts.get(part, "").strip()
            if text:
                condition[part] = text
        if changed:
            condition["within_days"] = "30"
        return condition
    if kind == "mention":
        op = parts.get("op", "")
        condition = {
            "kind": "mention",
            "sentiment": parts.get("sentiment") or MENTION_SENTIMENTS[0],
            "op": "gte" if changed or op not in (*COUNT_OPS, NEVER) else op,
            "value": "1" if changed else parts.get("value", "").strip(),
        }
        if condition["op"] == NEVER:
            condition["op"], condition["value"] = "eq", "0"
        within = "30" if changed else parts.get("within_days", "").strip()
        if within:
            condition["within_days"] = within
        if not changed and parts.get("brand", "").strip():
            condition["brand"] = parts["brand"].strip()
        return condition
    op = parts.get("op", "")
    if kind == "consent":
        op = op if op in ("granted", "not_granted") else "granted"
        return {"kind": kind, "purpose": parts.get("purpose") or CONSENT_PURPOSES[0], "op": op}
    if kind == "reachable":
        op = op if op in ("is", "is_not") else "is"
        return {"kind": kind, "channel": parts.get("channel") or REACHABLE_CHANNELS[0], "op": op}
    if kind == "segment":
        op = op if op in ("in", "not_in") else "in"
        return {"kind": kind, "segment": parts.get("segment", ""), "op": op}
    return {"kind": kind or "", "field": name}


# --- rule tree -> posted fields (the inverse, for tests and the benchmark) ---------------


def rules_to_fields(rules: Mapping) -> dict[str, str]:
    fields: dict[str, str] = {}
    _group_fields(rules, ROOT, fields)
    return fields


def _group_fields(group: Mapping, path: str, fields: dict[str, str]) -> None:
    fields[f"g-{path}-op"] = str(group.get("op", "and"))
    for i, child in enumerate(group.get("conditions") or []):
        child_path = f"{path}.{i}"
        if isinstance(child, Mapping) and "conditions" in child:
            _group_fields(child, child_path, fields)
        elif isinstance(child, Mapping):
            for part, value in condition_parts(child).items():
                fields[f"c-{child_path}-{part}"] = value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def condition_parts(c: Mapping) -> dict[str, str]:
    """The inputs of one condition, by part; "field" is the field select's value."""
    kind = str(c.get("kind", ""))
    parts: dict[str, str] = {}
    if kind in ("profile", "feature"):
        name = _text(c.get("field"))
        if kind == "profile" and name.startswith(ATTRIBUTE_PREFIX):
            parts["field"] = ATTRIBUTE_CHOICE
            parts["key"] = name[len(ATTRIBUTE_PREFIX) :]
        else:
            parts["field"] = f"{kind}:{name}"
        parts["op"] = _text(c.get("op"))
        if "category" in c:
            parts["category"] = _text(c["category"])
        value = c.get("value")
        if c.get("op") == "between" and isinstance(value, list | tuple) and len(value) == 2:
            parts["value"], parts["value2"] = _text(value[0]), _text(value[1])
        elif "value" in c:
            parts["value"] = _text(value)
    elif kind in SIMPLE_KINDS:
        parts["field"] = kind
        for part in CONDITION_PARTS:
            if part in c:
                parts[part] = _text(c[part])
        if kind in ("event", "mention") and c.get("op") == "eq" and _text(c.get("value")) == "0":
            parts["op"] = NEVER
            parts.pop("value", None)
    else:
        parts["field"] = f"{kind}:{_text(c.get('field'))}"
    parts["prev"] = parts["field"]
    return parts


# --- actions -----------------------------------------------------------------------------

ACTION = re.compile(r"^(add-condition|add-group|remove):(0(?:\.\d{1,3})*)$")


def rules_apply_action(rules: dict, action: str) -> dict:
    """The tree after a builder button; an unknown action or path changes nothing."""
    match = ACTION.match(action or "")
    if not match:
        return rules
    verb, path = match.groups()
    tree = copy.deepcopy(rules)
    node = _node_at(tree, path)
    if node is None:
        return rules
    if verb == "remove":
        if path == ROOT:
            return rules
        parent = _node_at(tree, path.rsplit(".", 1)[0])
        assert parent is not None  # noqa: S101 - the node was found under it
        del parent["conditions"][_index(path)]
        return tree
    if "conditions" not in node:
        return rules
    if verb == "add-condition":
        node["conditions"].append(condition_default())
    elif path.count(".") + 1 < MAX_DEPTH:
        node["conditions"].append({"op": "or", "conditions": [condition_default()]})
    return tree


def _node_at(tree: dict, path: str) -> dict | None:
    node: Any = tree
    for part in path.split(".")[1:]:
        children = node.get("conditions") if isinstance(node, dict) else None
        if not isinstance(children, list) or int(part) >= len(children):
            return None
        node = children[int(part)]
    return node if isinstance(node, dict) else None


def errors_by_path(errors: Mapping[str, str]) -> dict[str, str]:
    """The rule language's error paths ("conditions.1.conditions.0", "" for the root) as
    builder paths ("0.1.0", "0")."""
    out: dict[str, str] = {}
    for rule_path, message in errors.items():
        indexes = [p for p in rule_path.split(".") if p and p != "conditions"]
        out[".".join([ROOT, *indexes])] = message
    return out


# --- name and description ----------------------------------------------------------------


class SegmentRulesForm(forms.Form):
    name = forms.CharField(
        max_length=Segment._meta.get_field("name").max_length,
        widget=forms.TextInput(attrs={"size": 50}),
    )
    description = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2, "cols": 60})
    )
