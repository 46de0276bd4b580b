"""The events list: newest first, a page at a time by keyset, never a count of the table.

The events table holds tens of millions of rows and has no B-tree on the time alone (a BRIN
index serves the ranges), so a list "newest first" of every type reads the (type,
occurred_at) index once per type, each branch stopping after a page, and merges the
branches: a dozen short index scans whatever the table's size. Pages go on from the last row
shown (occurred_at, pk), not by OFFSET; the list says whether there are older rows, not how
many (the dashboard's rollups give the counts).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from profiles.models import Customer, Event, EventType

EVENT_WINDOWS = {
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
DEFAULT_WINDOW = "day"
EVENT_PAGE_SIZE = 50
# A click or view on a recommended item (the same rule as marketing.rollups' rec_clicks).
REC_CLICK_TYPES = ("click", "view")
REC_ID_PROPERTIES = ("rec_id", "recommendation_id")
REC_SOURCES = ("recommendation", "recommendations")
REC_SOURCE_PREFIX = "rec_"


@dataclass(frozen=True)
class EventCursor:
    """The last row of a page: the next page starts strictly after it (older)."""

    occurred_at: datetime
    pk: int

    def encode(self) -> str:
        return f"{int(self.occurred_at.timestamp() * 1_000_000)}-{self.pk}"

    @classmethod
    def decode(cls, value: str) -> EventCursor | None:
        micros, _, pk = value.partition("-")
        if not (micros.isdigit() and pk.isdigit()):
            return None
        return cls(datetime.fromtimestamp(int(micros) / 1_000_000, tz=UTC), int(pk))


@dataclass(frozen=True)
class EventPage:
    rows: list[tuple[Event, str]]  # each event with its customer's external id
    next_cursor: str | None
    since: datetime
    first_page: bool


def rec_click_q() -> Q:
    """Events that are clicks on recommended items."""
    marked = (
        Q(properties__has_any_keys=list(REC_ID_PROPERTIES))
        | Q(properties__source__in=list(REC_SOURCES))
        | Q(properties__source__startswith=REC_SOURCE_PREFIX)
    )
    return Q(type__in=REC_CLICK_TYPES) & marked


def _filtered(filters: dict, since: datetime, cursor: EventCursor | None) -> QuerySet[Event]:
    qs = Event.objects.filter(occurred_at__gte=since)
    if channel := filters.get("channel"):
        qs = qs.filter(channel=channel)
    if (campaign := filters.get("campaign")) is not None:
        qs = qs.filter(campaign_id=campaign)
    if item := filters.get("item"):
        qs = qs.filter(item_external_id=item)
    if filters.get("rec"):
        qs = qs.filter(rec_click_q())
    if cursor is not None:
        qs = qs.filter(occurred_at__lte=cursor.occurred_at).filter(
            Q(occurred_at__lt=cursor.occurred_at) | Q(pk__lt=cursor.pk)
        )
    return qs


def event_list_page(
    *,
    filters: dict,
    cursor: EventCursor | None = None,
    limit: int = EVENT_PAGE_SIZE,
    now: datetime | None = None,
) -> EventPage:
    """A page of events matching `filters` (type, channel, campaign, item, rec, window),
    newest first, after `cursor`. Two queries: the events, then their customers' ids."""
    now = now or timezone.now()
    since = now - EVENT_WINDOWS[filters.get("window") or DEFAULT_WINDOW]
    base = _filtered(filters, since, cursor)
    types = [filters["type"]] if filters.get("type") else list(EventType.values)
    if filters.get("rec"):
        types = [t for t in types if t in REC_CLICK_TYPES]
    order = ("-occurred_at", "-pk")
    branches = [base.filter(type=t).order_by(*order)[: limit + 1] for t in types]
    if not branches:
        rows: list[Event] = []
    elif len(branches) == 1:
        rows = list(branches[0])
    else:
        rows = list(branches[0].union(*branches[1:], all=True).order_by(*order)[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    customers = dict(
        Customer.objects.filter(pk__in={e.customer_id for e in rows}).values_list(
            "pk", "external_id"
        )
    )
    next_cursor = EventCursor(rows[-1].occurred_at, rows[-1].pk).encode() if more else None
    return EventPage(
        rows=[(e, customers.get(e.customer_id, str(e.customer_id))) for e in rows],
        next_cursor=next_cursor,
        since=since,
        first_page=cursor is None,
    )
