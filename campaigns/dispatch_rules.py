"""Pure decisions of dispatch (no Django): who is held out, which variant a customer gets,
whether a local hour is quiet, whether a frequency cap is reached; and of schedules: how long
a recipient waits for their local send time, when a recurring campaign occurs next.

Every split is a deterministic hash of its inputs, so a redelivered or re-run batch decides
exactly as before, and any worker can decide without reading shared state.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo


def bucket(*parts: object) -> float:
    """A stable number in [0, 100) for the parts (e.g. "holdout", campaign pk, customer pk)."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000 / 100


def in_holdout(*, campaign_id: int, customer_id: int, percent: int) -> bool:
    return percent > 0 and bucket("holdout", campaign_id, customer_id) < percent


def in_global_control(*, external_id: str, percent: float) -> bool:
    """The global control group (CAMPAIGN_GLOBAL_CONTROL_PERCENT of all customers) receives
    no marketing: the same customers for every campaign and every experiment
    (experiments/assignment.py). It hashes the storefront's id, not the database pk, because
    the experiments API decides for customers it has never stored."""
    return percent > 0 and bucket("global_control", external_id) < percent


def variant_index(*, campaign_id: int, customer_id: int, weights: Sequence[int]) -> int:
    """The position of the customer's variant, chosen in proportion to `weights`."""
    total = sum(max(0, w) for w in weights)
    if total <= 0:
        return 0
    point = (
        int.from_bytes(
            hashlib.sha256(f"variant:{campaign_id}:{customer_id}".encode()).digest()[:8], "big"
        )
        % total
    )
    for index, weight in enumerate(weights):
        point -= max(0, weight)
        if point < 0:
            return index
    return len(weights) - 1


def quiet_at(hour: int, *, start: int | None, end: int | None) -> bool:
    """Quiet from `start` (inclusive) to `end` (exclusive), local hours, wrapping past
    midnight (22 → 8 is quiet at 23 and 7, not at 8); unset or equal bounds: never quiet."""
    if start is None or end is None or start == end:
        return False
    if start < end:
        return start <= hour < end
    return hour >= start or hour < end


def quiet_seconds_left(second_of_day: int, *, start: int | None, end: int | None) -> int:
    """Seconds from `second_of_day` (local) until the quiet hours end; 0 when not quiet."""
    hour = second_of_day // 3600
    if not quiet_at(hour, start=start, end=end):
        return 0
    return ((end or 0) * 3600 - second_of_day) % 86_400


def cap_reached(*, overall: int, on_channel: int, cap: int, cap_per_channel: int) -> bool:
    """Caps of 0 or less are off."""
    return (cap > 0 and overall >= cap) or (cap_per_channel > 0 and on_channel >= cap_per_channel)


# --- schedules ------------------------------------------------------------------------------

# The earliest timezone on earth (Kiribati, UTC+14): a local-time campaign starts when its
# send time arrives there.
EARLIEST_UTC_OFFSET = timedelta(hours=14)
RECURRENCE_DAYS = {"daily": 1, "weekly": 7}


def local_send_wait_seconds(now: datetime, *, on: date, at: time, zone: tzinfo) -> int:
    """Seconds from `now` until `at` o'clock on the date `on` in `zone` (0 when that moment
    has passed). Both sides go through UTC: arithmetic between datetimes of one zoneinfo
    would be wall-clock arithmetic and wrong across a DST change."""
    target = datetime.combine(on, at, tzinfo=zone).astimezone(UTC)
    return max(0, math.ceil((target - now.astimezone(UTC)).total_seconds()))


def local_time_launch_at(*, on: date, at: time) -> datetime:
    """When a same-local-time campaign must start: when `at` on `on` comes first on earth."""
    return datetime.combine(on, at, tzinfo=UTC) - EARLIEST_UTC_OFFSET


def next_occurrence(at: datetime, *, recurrence: str, zone: tzinfo) -> datetime:
    """The occurrence after `at`: the same wall-clock time a day or a week later in `zone`,
    so a 09:00 newsletter stays at 09:00 across DST changes."""
    return (at.astimezone(zone) + timedelta(days=RECURRENCE_DAYS[recurrence])).astimezone(UTC)


def occurrence_due(
    first: datetime, now: datetime, *, recurrence: str, zone: tzinfo
) -> tuple[datetime, datetime]:
    """(the latest occurrence at or before `now`, starting from `first`; the one after it).
    Occurrences missed entirely (beat down for days) are passed over: a stale newsletter is
    not worth sending, and sending three at once would be worse."""
    due, following = first, next_occurrence(first, recurrence=recurrence, zone=zone)
    while following <= now:
        due, following = following, next_occurrence(following, recurrence=recurrence, zone=zone)
    return due, following
