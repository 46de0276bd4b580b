"""The segment rule language: parsed and validated here, without Django (CONVENTIONS §0).

A rule is a tree of groups and conditions, stored as JSON on the segment and sent as JSON by
the API and the builder:

    {"op": "and", "conditions": [
        {"kind": "event", "event_type": "purchase", "category": "Shoes", "within_days": 30,
         "op": "gte", "value": 2},
        {"kind": "event", "event_type": "email_open", "within_days": 60, "op": "eq", "value": 0},
        {"op": "or", "conditions": [
            {"kind": "profile", "field": "country", "op": "in", "value": ["DE", "AT"]},
            {"kind": "feature", "field": "revenue", "op": "gte", "value": 100}]}]}

Condition kinds:
- `profile`: a customer column (see PROFILE_FIELDS) or a custom attribute `attributes.<key>`.
- `feature`: an incrementally maintained feature (FEATURE_FIELDS): revenue, orders, sessions,
  average order value, first / last seen, last purchase, RFM scores (quintiles 1-5 among
  customers with features), decayed category affinity (needs `category`).
- `event`: how often (`aggregate: count`, default) or for how much (`aggregate: sum` of the
  events' values) the customer did `event_type`, optionally of a `category`, an `item`, on a
  `channel` or from a `campaign_id`, within the last `within_days` days (or ever).
  "Did not" is `op: eq, value: 0`.
- `consent`: a purpose granted or not; `reachable`: has a consenting, not opted-out endpoint
  on a channel; `segment`: member of another segment or not.
- `mention`: how many social posts the customer wrote (matched by handle or email when
  ingested) that mention a brand (any, or `brand`) with a `sentiment` (negative, positive,
  neutral or any) within the last `within_days` days (or ever), e.g. "mentioned a brand
  negatively in the last 30 days": {"kind": "mention", "sentiment": "negative",
  "within_days": 30, "op": "gte", "value": 1}.

`rules_validate` returns the normalized tree (values coerced to their types) or raises
`RulesInvalid` whose `errors` map the path of each offending node ("conditions.2.conditions.0")
to a message, so the builder can show it next to that condition.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from profiles.ingest import EVENT_CHANNEL_NAMES, EVENT_TYPE_NAMES

MAX_DEPTH = 5
MAX_CONDITIONS = 50
MAX_DAYS = 3650

GROUP_OPS = ("and", "or")
CONDITION_KINDS = ("profile", "feature", "event", "consent", "reachable", "segment", "mention")

# Field types: text, number, date (calendar date), time (a moment), bool, json (any attribute).
TEXT_OPS = ("eq", "neq", "in", "not_in", "contains", "not_contains", "exists", "not_exists")
NUMBER_OPS = ("eq", "neq", "gt", "gte", "lt", "lte", "between", "exists", "not_exists")
TIME_OPS = (
    "in_last_days",
    "not_in_last_days",
    "before",
    "after",
    "between",
    "exists",
    "not_exists",
)
BOOL_OPS = ("is_true", "is_false")
JSON_OPS = (
    "eq",
    "neq",
    "in",
    "not_in",
    "contains",
    "not_contains",
    "gt",
    "gte",
    "lt",
    "lte",
    "between",
    "exists",
    "not_exists",
)
OPS_BY_TYPE = {
    "text": TEXT_OPS,
    "number": NUMBER_OPS,
    "date": TIME_OPS,
    "time": TIME_OPS,
    "bool": BOOL_OPS,
    "json": JSON_OPS,
}
COUNT_OPS = ("gte", "gt", "eq", "lte", "lt")
NO_VALUE_OPS = ("exists", "not_exists", "is_true", "is_false")

OP_LABELS = {
    "eq": "is",
    "neq": "is not",
    "in": "is one of",
    "not_in": "is none of",
    "contains": "contains",
    "not_contains": "does not contain",
    "exists": "is set",
    "not_exists": "is not set",
    "gt": ">",
    "gte": "≥",
    "lt": "<",
    "lte": "≤",
    "between": "between",
    "in_last_days": "in the last … days",
    "not_in_last_days": "not in the last … days",
    "before": "before",
    "after": "after",
    "is_true": "is true",
    "is_false": "is false",
}

PROFILE_FIELDS: dict[str, tuple[str, str]] = {
    "external_id": ("text", "Customer id"),
    "email": ("text", "Email"),
    "phone": ("text", "Phone"),
    "first_name": ("text", "First name"),
    "last_name": ("text", "Last name"),
    "country": ("text", "Country"),
    "timezone": ("text", "Time zone"),
    "language": ("text", "Language"),
    "gender": ("text", "Gender"),
    "birth_date": ("date", "Birth date"),
    "created_at": ("time", "Created"),
    "is_anonymous": ("bool", "Anonymous"),
}
ATTRIBUTE_PREFIX = "attributes."

FEATURE_FIELDS: dict[str, tuple[str, str]] = {
    "revenue": ("number", "Revenue"),
    "orders": ("number", "Orders"),
    "sessions": ("number", "Sessions"),
    "average_order_value": ("number", "Average order value"),
    "first_seen": ("time", "First seen"),
    "last_seen": ("time", "Last seen"),
    "last_purchase": ("time", "Last purchase"),
    "rfm_recency": ("number", "RFM recency score (1-5)"),
    "rfm_frequency": ("number", "RFM frequency score (1-5)"),
    "rfm_monetary": ("number", "RFM monetary score (1-5)"),
    "affinity": ("number", "Category affinity"),
}

EVENT_TYPES = EVENT_TYPE_NAMES
EVENT_CHANNELS = EVENT_CHANNEL_NAMES
# What the builder and the rule in words call each event type ("did not open an email").
EVENT_LABELS = {
    "view": "view",
    "click": "click",
    "add_to_cart": "add to cart",
    "purchase": "purchase",
    "offer_shown": "see an offer",
    "offer_click": "click an offer",
    "email_open": "open an email",
    "email_click": "click an email",
    "sms_click": "click an SMS",
    "push_open": "open a push",
    "unsubscribe": "unsubscribe",
    "custom": "a custom event",
}
CONSENT_PURPOSES = ("marketing_email", "sms", "push", "personalization")
MENTION_SENTIMENTS = ("negative", "positive", "neutral", "any")
MENTION_SENTIMENT_LABELS = {
    "negative": "negatively",
    "positive": "positively",
    "neutral": "neutrally",
    "any": "",
}
REACHABLE_CHANNELS = ("email", "sms", "push")


@dataclass(frozen=True)
class RuleCatalog:
    """What the rules may refer to that lives in the database."""

    categories: frozenset[str] | None = None  # None: any category is accepted
    segments: Mapping[int, str] = field(default_factory=dict)  # id -> name
    brands: Mapping[int, str] | None = None  # id -> name; None: any brand id is accepted


class RulesInvalid(ValueError):
    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


ATTRIBUTE_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$")


def field_type(kind: str, name: str) -> str | None:
    if kind == "profile":
        if name.startswith(ATTRIBUTE_PREFIX):
            key = name[len(ATTRIBUTE_PREFIX) :]
            return "json" if ATTRIBUTE_KEY.match(key) and "__" not in key else None
        return PROFILE_FIELDS.get(name, (None,))[0]
    if kind == "feature":
        return FEATURE_FIELDS.get(name, (None,))[0]
    return None


def rules_validate(rules: Any, catalog: RuleCatalog) -> dict:
    """The normalized rule tree, or RulesInvalid naming every offending node."""
    errors: dict[str, str] = {}
    counter = [0]
    if not isinstance(rules, Mapping) or "conditions" not in rules:
        raise RulesInvalid({"": 'A rule must be a group: {"op": "and", "conditions": [...]}'})
    normalized = _group(rules, "", 1, catalog, errors, counter)
    if errors:
        raise RulesInvalid(errors)
    return normalized


def _join(path: str, key: str | int) -> str:
    return f"{path}.{key}" if path else str(key)


def _group(node: Mapping, path: str, depth: int, catalog, errors, counter) -> dict:
    op = node.get("op", "and")
    if op not in GROUP_OPS:
        errors[path] = f"A group combines its conditions with 'and' or 'or', not {op!r}."
    if depth > MAX_DEPTH:
        errors[path] = f"Groups nest at most {MAX_DEPTH} deep."
        return {"op": op, "conditions": []}
    children = node.get("conditions")
    if not isinstance(children, list) or not children:
        errors[path] = "This group is empty: add a condition or remove the group."
        return {"op": op, "conditions": []}
    out = []
    for i, child in enumerate(children):
        child_path = _join(path, f"conditions.{i}")
        if not isinstance(child, Mapping):
            errors[child_path] = "A condition must be an object."
            continue
        if "conditions" in child:
            out.append(_group(child, child_path, depth + 1, catalog, errors, counter))
        else:
            counter[0] += 1
            if counter[0] > MAX_CONDITIONS:
                errors[child_path] = f"A segment has at most {MAX_CONDITIONS} conditions."
                continue
            try:
                out.append(_condition(child, catalog))
            except ValueError as exc:
                errors[child_path] = str(exc)
    return {"op": op, "conditions": out}


def _condition(node: Mapping, catalog: RuleCatalog) -> dict:
    kind = node.get("kind")
    if kind == "profile" or kind == "feature":
        return _field_condition(node, kind, catalog)
    if kind == "event":
        return _event_condition(node, catalog)
    if kind == "consent":
        purpose = node.get("purpose")
        if purpose not in CONSENT_PURPOSES:
            raise ValueError(
                f"Unknown consent purpose {purpose!r}; one of {_list(CONSENT_PURPOSES)}."
            )
        op = _choice(node.get("op", "granted"), ("granted", "not_granted"), "consent")
        return {"kind": kind, "purpose": purpose, "op": op}
    if kind == "reachable":
        channel = node.get("channel")
        if channel not in REACHABLE_CHANNELS:
            raise ValueError(f"Unknown channel {channel!r}; one of {_list(REACHABLE_CHANNELS)}.")
        op = _choice(node.get("op", "is"), ("is", "is_not"), "reachability")
        return {"kind": kind, "channel": channel, "op": op}
    if kind == "segment":
        segment = _integer(node.get("segment"), "segment")
        if segment not in catalog.segments:
            raise ValueError(f"Segment {node.get('segment')!r} does not exist.")
        op = _choice(node.get("op", "in"), ("in", "not_in"), "membership")
        return {"kind": kind, "segment": segment, "op": op}
    if kind == "mention":
        return _mention_condition(node, catalog)
    raise ValueError(f"Unknown condition kind {kind!r}; one of {_list(CONDITION_KINDS)}.")


def _field_condition(node: Mapping, kind: str, catalog: RuleCatalog) -> dict:
    name = node.get("field")
    if not isinstance(name, str) or not name:
        raise ValueError("Choose a field.")
    ftype = field_type(kind, name)
    if ftype is None:
        known = PROFILE_FIELDS if kind == "profile" else FEATURE_FIELDS
        hint = " or attributes.<key>" if kind == "profile" else ""
        raise ValueError(f"Unknown {kind} field {name!r}; one of {_list(known)}{hint}.")
    op = node.get("op")
    if op not in OPS_BY_TYPE[ftype]:
        raise ValueError(
            f"{name!r} cannot be compared with {op!r}; use one of {_list(OPS_BY_TYPE[ftype])}."
        )
    out: dict[str, Any] = {"kind": kind, "field": name, "op": op}
    if name == "affinity":
        category = node.get("category")
        if not isinstance(category, str) or not category.strip():
            raise ValueError("Category affinity needs a category.")
        out["category"] = _category(category.strip(), catalog)
    if op in NO_VALUE_OPS:
        return out
    out["value"] = _value(node.get("value"), ftype, op, name)
    return out


def _value(value: Any, ftype: str, op: str, name: str) -> Any:
    if op in ("in_last_days", "not_in_last_days"):
        days = _integer(value, name)
        if not 0 < days <= MAX_DAYS:
            raise ValueError(f"{name}: days must be between 1 and {MAX_DAYS}.")
        return days
    if op == "between":
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",")]
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise ValueError(f"{name}: 'between' needs two values, low and high.")
        low, high = (_scalar(v, ftype, name) for v in value)
        if low is not None and high is not None and low > high:
            raise ValueError(f"{name}: the low end {low} is above the high end {high}.")
        return [low, high]
    if op in ("in", "not_in"):
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list | tuple) or not value:
            raise ValueError(f"{name}: give at least one value.")
        return [_scalar(v, ftype, name) for v in value]
    if op in ("contains", "not_contains"):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name}: give the text to look for.")
        return value
    return _scalar(value, ftype, name)


def _scalar(value: Any, ftype: str, name: str) -> Any:
    if ftype == "number":
        return _number(value, name)
    if ftype in ("date", "time"):
        return _date(value, name, with_time=ftype == "time")
    if ftype == "json":
        # Attributes keep their JSON type; a numeric-looking text compares as a number.
        if isinstance(value, str):
            try:
                return int(value) if value.strip().lstrip("-").isdigit() else float(value)
            except ValueError:
                return value
        if isinstance(value, bool | int | float | str):
            return value
        raise ValueError(f"{name}: {value!r} is not a text, number or true/false.")
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ValueError(f"{name}: {value!r} is not a text.")
    text = str(value)
    if not text:
        raise ValueError(f"{name}: the value is empty.")
    return text


def _number(value: Any, name: str) -> float | int:
    if isinstance(value, bool):
        raise ValueError(f"{name}: {value!r} is not a number.")
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            pass
        else:
            return int(number) if number.is_integer() else number
        if not value.strip():
            raise ValueError(f"{name}: enter a number.")
    raise ValueError(f"{name}: {value!r} is not a number.")


def _integer(value: Any, name: str) -> int:
    number = _number(value, name)
    if not float(number).is_integer():
        raise ValueError(f"{name}: {value!r} is not a whole number.")
    return int(number)


def _date(value: Any, name: str, *, with_time: bool) -> str:
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = datetime.fromisoformat(text) if with_time else date.fromisoformat(text)
        except ValueError:
            pass
        else:
            return parsed.isoformat()
    example = "2026-01-31 or 2026-01-31T12:00+00:00" if with_time else "2026-01-31"
    raise ValueError(f"{name}: {value!r} is not a date like {example}.")


def _event_condition(node: Mapping, catalog: RuleCatalog) -> dict:
    event_type = node.get("event_type")
    if event_type not in EVENT_TYPES:
        raise ValueError(f"Unknown event type {event_type!r}; one of {_list(EVENT_TYPES)}.")
    aggregate = _choice(node.get("aggregate", "count"), ("count", "sum"), "aggregate")
    op = node.get("op", "gte")
    allowed = COUNT_OPS if aggregate == "count" else ("gte", "gt", "lte", "lt")
    if op not in allowed:
        raise ValueError(f"Compare the {aggregate} with one of {_list(allowed)}, not {op!r}.")
    value = node.get("value", 1)
    if aggregate == "count":
        value = _integer(value, "count")
        if value < 0:
            raise ValueError("The count cannot be negative.")
    else:
        value = _number(value, "sum of values")
    out: dict[str, Any] = {
        "kind": "event",
        "event_type": event_type,
        "aggregate": aggregate,
        "op": op,
        "value": value,
    }
    within = node.get("within_days")
    if within not in (None, ""):
        days = _integer(within, "within_days")
        if not 0 < days <= MAX_DAYS:
            raise ValueError(f"within_days must be between 1 and {MAX_DAYS}.")
        out["within_days"] = days
    category = node.get("category")
    if category not in (None, ""):
        if not isinstance(category, str):
            raise ValueError(f"category: {category!r} is not a text.")
        out["category"] = _category(category.strip(), catalog)
    for key in ("item",):
        if node.get(key) not in (None, ""):
            out[key] = str(node[key]).strip()
    channel = node.get("channel")
    if channel not in (None, ""):
        if channel not in EVENT_CHANNELS:
            raise ValueError(f"Unknown channel {channel!r}; one of {_list(EVENT_CHANNELS)}.")
        out["channel"] = channel
    if node.get("campaign_id") not in (None, ""):
        out["campaign_id"] = _integer(node["campaign_id"], "campaign_id")
    return out


def _mention_condition(node: Mapping, catalog: RuleCatalog) -> dict:
    sentiment = _choice(node.get("sentiment", "negative"), MENTION_SENTIMENTS, "sentiment")
    op = node.get("op", "gte")
    if op not in COUNT_OPS:
        raise ValueError(f"Compare the number of posts with one of {_list(COUNT_OPS)}, not {op!r}.")
    value = _integer(node.get("value", 1), "count")
    if value < 0:
        raise ValueError("The count cannot be negative.")
    out: dict[str, Any] = {"kind": "mention", "sentiment": sentiment, "op": op, "value": value}
    within = node.get("within_days")
    if within not in (None, ""):
        days = _integer(within, "within_days")
        if not 0 < days <= MAX_DAYS:
            raise ValueError(f"within_days must be between 1 and {MAX_DAYS}.")
        out["within_days"] = days
    if node.get("brand") not in (None, ""):
        brand = _integer(node["brand"], "brand")
        if catalog.brands is not None:
            if brand not in catalog.brands:
                raise ValueError(f"Brand {brand} does not exist.")
            out["brand_name"] = catalog.brands[brand]
        out["brand"] = brand
    return out


def _category(category: str, catalog: RuleCatalog) -> str:
    if catalog.categories is not None and category not in catalog.categories:
        sample = _list(sorted(catalog.categories)[:12])
        raise ValueError(f"Unknown category {category!r}; known categories include {sample}.")
    return category


def _choice(value: Any, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise ValueError(f"Unknown {what} {value!r}; one of {_list(allowed)}.")
    return value


def _list(values) -> str:
    return ", ".join(str(v) for v in values)


def rules_segment_refs(rules: Mapping) -> set[int]:
    """The segments a (validated) rule tree refers to."""
    refs: set[int] = set()
    for child in rules.get("conditions", []):
        if "conditions" in child:
            refs |= rules_segment_refs(child)
        elif child.get("kind") == "segment":
            refs.add(child["segment"])
    return refs


def rules_describe(rules: Mapping, segment_names: Mapping[int, str] | None = None) -> str:
    """The rule in words, for pages and the API, in the builder's words ("purchase of Shoes ≥ 2
    times in the last 30 days and did not open an email in the last 60 days and …")."""
    names = segment_names or {}
    parts = []
    for child in rules.get("conditions", []):
        if "conditions" in child:
            parts.append(f"({rules_describe(child, names)})")
        else:
            parts.append(_describe_condition(child, names))
    return f" {rules.get('op', 'and')} ".join(parts)


def _describe_condition(c: Mapping, names: Mapping[int, str]) -> str:
    kind = c["kind"]
    if kind in ("profile", "feature"):
        fields = PROFILE_FIELDS if kind == "profile" else FEATURE_FIELDS
        label = fields[c["field"]][1].lower() if c["field"] in fields else c["field"]
        if c["field"] == "affinity":
            label = f"affinity for {c['category']}"
        op = OP_LABELS.get(c["op"], c["op"])
        if "value" not in c:
            return f"{label} {op}"
        value = c["value"]
        if isinstance(value, list):
            value = (
                " and ".join(map(str, value))
                if c["op"] == "between"
                else ", ".join(map(str, value))
            )
        if c["op"] in ("in_last_days", "not_in_last_days"):
            word = "in" if c["op"] == "in_last_days" else "not in"
            return f"{label} {word} the last {value} days"
        return f"{label} {op} {value}"
    if kind == "event":
        what = EVENT_LABELS.get(c["event_type"], c["event_type"])
        if "category" in c:
            what += f" of {c['category']}"
        if "item" in c:
            what += f" of item {c['item']}"
        if "channel" in c:
            what += f" on {c['channel']}"
        when = f" in the last {c['within_days']} days" if "within_days" in c else ""
        if c["aggregate"] == "count" and c["op"] == "eq" and c["value"] == 0:
            return f"did not {what}{when}"
        measure = (
            "in value" if c["aggregate"] != "count" else "time" if c["value"] == 1 else "times"
        )
        return f"{what} {OP_LABELS[c['op']]} {c['value']} {measure}{when}"
    if kind == "consent":
        purpose = c["purpose"].replace("_", " ")
        return f"consent to {purpose} {'granted' if c['op'] == 'granted' else 'not granted'}"
    if kind == "reachable":
        return f"{'reachable' if c['op'] == 'is' else 'not reachable'} by {c['channel']}"
    if kind == "mention":
        return _describe_mention(c)
    name = names.get(c["segment"], f"segment {c['segment']}")
    return f"{'in' if c['op'] == 'in' else 'not in'} {name}"


def _describe_mention(c: Mapping) -> str:
    """ "mentioned a brand negatively in the last 30 days", "did not mention Acme …"."""
    brand = c.get("brand_name") or (f"brand {c['brand']}" if "brand" in c else "a brand")
    how = MENTION_SENTIMENT_LABELS.get(c["sentiment"], "")
    what = f"{brand} {how}".rstrip()
    when = f" in the last {c['within_days']} days" if "within_days" in c else ""
    if c["op"] == "eq" and c["value"] == 0:
        return f"did not mention {what}{when}"
    if c["op"] == "gte" and c["value"] == 1:
        return f"mentioned {what}{when}"
    posts = "post" if c["value"] == 1 else "posts"
    return f"mentioned {what} in {OP_LABELS[c['op']]} {c['value']} {posts}{when}"
