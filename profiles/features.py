"""Incremental profile features: pure Python, no Django (CONVENTIONS §0).

A profile's features are a JSON-able dict that `features_apply` folds new events into, one
batch at a time, without looking at the history again. Folding the whole history into an empty
state gives the same result as folding it in batches, which is what the nightly drift check
(`features_drift`) verifies against the stored incremental values.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter

SESSION_GAP_SECONDS = 30 * 60
DEFAULT_LAST_N = 20
DEFAULT_HALF_LIFE_DAYS = 30.0

# How strongly one event says the customer likes the item's category.
AFFINITY_WEIGHTS = {
    "view": 1.0,
    "click": 1.0,
    "offer_click": 1.5,
    "email_click": 1.0,
    "sms_click": 1.0,
    "push_open": 0.5,
    "add_to_cart": 3.0,
    "purchase": 5.0,
}


@dataclass(frozen=True, slots=True)
class FeatureEvent:
    occurred_at: datetime | float  # a datetime, or epoch seconds (cheaper in bulk)
    type: str
    item_id: str = ""
    category: str = ""
    value: float | None = None
    channel: str = ""


@dataclass(frozen=True)
class FeatureConfig:
    last_n: int = DEFAULT_LAST_N
    half_life_days: float = DEFAULT_HALF_LIFE_DAYS


def features_empty() -> dict:
    return {
        "counts": {},
        "last_at": {},
        "first_seen": None,
        "last_seen": None,
        "sessions": 0,
        "orders": 0,
        "revenue": 0.0,
        "recent_views": [],
        "recent_purchases": [],
        "affinity": {},
        "affinity_as_of": None,
        "channels": {},
        "hours": [0] * 24,
    }


def as_datetime(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, tz=UTC)


def features_apply(
    state: Mapping | None,
    events: Iterable[FeatureEvent],
    *,
    config: FeatureConfig,
    in_place: bool = False,
) -> dict:
    """Fold `events` into a copy of `state` (or into `state` itself with `in_place`, for a
    caller that owns it) and return it.

    Events are applied in time order. An event older than the newest one already folded in
    (a late arrival) still counts everywhere; the session count and recent-item lists treat
    it as if it had arrived in order only when it is the newest.
    """
    s: dict
    if in_place and isinstance(state, dict) and _KEYS.issubset(state):
        s = state
    else:
        s = _copy(state or features_empty())
    decay_per_second = math.log(2) / (config.half_life_days * 86400.0)
    for t, event in sorted(((_epoch(e.occurred_at), e) for e in events), key=itemgetter(0)):
        s["counts"][event.type] = s["counts"].get(event.type, 0) + 1
        if (prev := s["last_at"].get(event.type)) is None or prev < t:
            s["last_at"][event.type] = t
        last_seen = s["last_seen"]
        if s["first_seen"] is None or s["first_seen"] > t:
            s["first_seen"] = t
        if last_seen is None or t - last_seen > SESSION_GAP_SECONDS:
            s["sessions"] += 1
        is_newest = last_seen is None or t >= last_seen
        if is_newest:
            s["last_seen"] = t
        if event.type == "purchase":
            s["orders"] += 1
            s["revenue"] = round(s["revenue"] + (event.value or 0.0), 2)
        if event.item_id and is_newest:
            key = {"view": "recent_views", "purchase": "recent_purchases"}.get(event.type)
            if key:
                s[key] = _push_recent(s[key], event.item_id, config.last_n)
        weight = AFFINITY_WEIGHTS.get(event.type)
        if weight and event.category:
            _affinity_add(s, event.category, weight, t, decay_per_second)
        if event.channel:
            s["channels"][event.channel] = s["channels"].get(event.channel, 0) + 1
        s["hours"][int(t // 3600) % 24] += 1
    return s


def _epoch(value: datetime | float) -> float:
    return value if isinstance(value, float) else value.timestamp()


def _push_recent(items: list[str], item_id: str, n: int) -> list[str]:
    return ([item_id] + [i for i in items if i != item_id])[:n]


def _affinity_add(s: dict, category: str, weight: float, t: float, decay: float) -> None:
    """Scores are kept as of `affinity_as_of`; an event later than that moves the clock."""
    as_of = s["affinity_as_of"]
    if as_of is None:
        as_of = t
        s["affinity_as_of"] = t
    if t > as_of:
        factor = math.exp(-decay * (t - as_of))
        s["affinity"] = {c: v * factor for c, v in s["affinity"].items()}
        s["affinity_as_of"] = t
        as_of = t
    contribution = weight * math.exp(-decay * (as_of - t))
    s["affinity"][category] = s["affinity"].get(category, 0.0) + contribution


_KEYS = frozenset(features_empty())


def _copy(state: Mapping) -> dict:
    s = {k: (v.copy() if type(v) in (dict, list) else v) for k, v in state.items()}
    if not _KEYS.issubset(s):
        for key, default in features_empty().items():
            s.setdefault(key, default)
    return s


def features_summary(state: Mapping, *, now: datetime, config: FeatureConfig) -> dict:
    """The derived values a marketer reads: RFM, AOV, decayed affinity as of `now`."""
    decay = math.log(2) / (config.half_life_days * 86400.0)
    as_of = state.get("affinity_as_of")
    factor = math.exp(-decay * max(0.0, now.timestamp() - as_of)) if as_of else 1.0
    affinity = {
        c: round(v * factor, 4)
        for c, v in sorted(state.get("affinity", {}).items(), key=lambda kv: -kv[1])
    }
    last_purchase = state.get("last_at", {}).get("purchase")
    orders = state.get("orders", 0)
    revenue = state.get("revenue", 0.0)
    channels = state.get("channels", {})
    hours = state.get("hours", [0] * 24)
    return {
        "recency_days": None
        if last_purchase is None
        else round((now.timestamp() - last_purchase) / 86400.0, 2),
        "frequency": orders,
        "monetary": round(revenue, 2),
        "average_order_value": round(revenue / orders, 2) if orders else None,
        "category_affinity": affinity,
        "preferred_channel": max(channels, key=lambda c: (channels[c], c)) if channels else None,
        "preferred_hour": max(range(24), key=lambda h: (hours[h], -h)) if any(hours) else None,
    }


def features_drift(incremental: Mapping, recomputed: Mapping, *, tolerance: float = 1e-6) -> dict:
    """The fields where two feature states disagree, as {field: (incremental, recomputed)}."""
    diffs = {}
    for key in features_empty():
        a, b = incremental.get(key), recomputed.get(key)
        if key == "affinity":
            cats = set(a or {}) | set(b or {})
            if any(abs((a or {}).get(c, 0.0) - (b or {}).get(c, 0.0)) > tolerance for c in cats):
                diffs[key] = (a, b)
        elif key == "revenue":
            if abs((a or 0.0) - (b or 0.0)) > 0.005:
                diffs[key] = (a, b)
        elif a != b:
            diffs[key] = (a, b)
    return diffs
