"""Interactions (Amazon Personalize): USER_ID, ITEM_ID, TIMESTAMP, EVENT_TYPE, EVENT_VALUE.

Each row is an event whose event_id is derived from the row's content, so importing the
same file again stores nothing (the events are counted as duplicates). The writes go
through profiles.services.events_ingest: COPY into a staging table, INSERT ... ON CONFLICT
(event_id) DO NOTHING, and the new events queued for the features consumer.
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from django.utils import timezone

from marketing.common.csv_import import (
    KINDS,
    CsvHeader,
    ImportCounts,
    ImportReport,
    RowInvalid,
    attribute_key,
    attribute_value,
    chunked,
    csv_open,
)
from profiles.imports.common import Progress, identifier
from profiles.ingest import EVENT_TYPES, MAX_ID_LENGTH, MAX_PROPERTIES_BYTES, MAX_VALUE, EventRow
from profiles.models import ConsentSource
from profiles.services import events_ingest

INTERACTIONS_CHUNK = 50_000
# event_id = uuid5(namespace, row content): the same row imported twice is one event.
EVENT_ID_NAMESPACE = uuid.UUID("6f1c3c8e-2d0b-4d59-9a57-6a3c1f0e4b21")
MAX_FUTURE = timedelta(days=1)


def _event_type_key(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip()).lower()


EVENT_TYPE_SYNONYMS = {
    **{t: t for t in EVENT_TYPES},
    **dict.fromkeys(
        (
            "watch",
            "watched",
            "play",
            "played",
            "stream",
            "streamed",
            "listen",
            "read",
            "viewed",
            "visit",
            "page_view",
            "pageview",
            "product_view",
            "detail_view",
        ),
        "view",
    ),
    **dict.fromkeys(("clicked", "tap", "click_through"), "click"),
    **dict.fromkeys(
        ("cart", "add", "addtocart", "add_cart", "add_to_basket", "basket", "added_to_cart"),
        "add_to_cart",
    ),
    **dict.fromkeys(
        ("buy", "bought", "order", "ordered", "purchased", "checkout", "transaction"),
        "purchase",
    ),
}


def event_type_map(original: str) -> tuple[str, dict]:
    """Personalize's free-text EVENT_TYPE as one of our types; anything we do not know
    (a rating, a like) is "custom" and keeps its name in the properties. No type at all
    is an implicit interaction, a view."""
    key = _event_type_key(original)
    if not key:
        return "view", {}
    mapped = EVENT_TYPE_SYNONYMS.get(key)
    if mapped is None or mapped == "custom":
        return "custom", {"event_type": original.strip()}
    return mapped, {}


def _epoch(seconds: float, column: str, raw: str) -> datetime:
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise RowInvalid(column, "Not a valid Unix time.", raw) from None


def parse_timestamp(raw: str, column: str = "TIMESTAMP") -> datetime:
    """Unix epoch seconds (Personalize's format) or an ISO 8601 date-time (UTC if no
    offset is given)."""
    raw = raw.strip()
    if not raw:
        raise RowInvalid(column, "Required.")
    if raw.isdigit():
        return _epoch(int(raw), column, raw)
    try:
        return _epoch(float(raw), column, raw)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise RowInvalid(
            column,
            "Must be Unix epoch seconds (e.g. 1700000000) or an ISO 8601 date-time.",
            raw,
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_value(raw: str, column: str = "EVENT_VALUE") -> float | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        number = float(raw)
    except ValueError:
        raise RowInvalid(column, "Must be a number.", raw) from None
    if not math.isfinite(number) or abs(number) >= MAX_VALUE:
        raise RowInvalid(column, f"Must be a finite number below {MAX_VALUE:.0e}.", raw)
    return round(number, 2)


@dataclass
class _InteractionColumns:
    user: int
    item: int
    timestamp: int
    type: int | None
    value: int | None
    extra: list[tuple[int, str]]

    @classmethod
    def from_header(cls, header: CsvHeader) -> _InteractionColumns:
        known = {"USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_TYPE", "EVENT_VALUE"}
        return cls(
            user=header.required_index("USER_ID"),
            item=header.required_index("ITEM_ID"),
            timestamp=header.required_index("TIMESTAMP"),
            type=header.index("EVENT_TYPE"),
            value=header.index("EVENT_VALUE"),
            extra=[
                (i, attribute_key(name))
                for i, (key, name) in enumerate(zip(header.keys, header.names, strict=True))
                if key not in known
            ],
        )


def _interaction_parser(columns: _InteractionColumns, now: datetime):
    """A function turning one row into an EventRow (or raising RowInvalid)."""
    latest = now + MAX_FUTURE
    types: dict[str, tuple[str, dict]] = {}
    uuid5 = uuid.uuid5
    namespace = EVENT_ID_NAMESPACE
    c_user, c_item, c_time = columns.user, columns.item, columns.timestamp
    c_type, c_value, extra = columns.type, columns.value, columns.extra

    def parse(row: list[str]) -> EventRow:
        user = row[c_user].strip()
        if not user or len(user) > MAX_ID_LENGTH:
            identifier(user, "USER_ID")
        item = row[c_item].strip()
        if not item or len(item) > MAX_ID_LENGTH:
            identifier(item, "ITEM_ID")
        original = row[c_type] if c_type is not None else ""
        mapped = types.get(original)
        if mapped is None:
            mapped = types[original] = event_type_map(original)
        event_type, properties = mapped
        value = parse_value(row[c_value]) if c_value is not None else None
        occurred_at = parse_timestamp(row[c_time])
        if occurred_at > latest:
            raise RowInvalid("TIMESTAMP", "Must not be more than a day in the future.", row[c_time])
        content = (
            f"{user}\x1f{item}\x1f{_event_type_key(original)}\x1f{value}"
            f"\x1f{occurred_at.timestamp()}"
        )
        if extra:
            properties = dict(properties)
            for index, name in extra:
                cell = row[index].strip()
                if cell:
                    properties[name] = attribute_value(cell)
            if properties:
                encoded = orjson.dumps(properties, option=orjson.OPT_SORT_KEYS)
                if len(encoded) > MAX_PROPERTIES_BYTES:
                    raise RowInvalid("", f"The extra columns exceed {MAX_PROPERTIES_BYTES} bytes.")
                content += "\x1f" + encoded.decode()
        return EventRow(
            event_id=uuid5(namespace, content),
            customer_id=user,
            type=event_type,
            item_id=item,
            value=value,
            channel="",
            campaign_id=None,
            occurred_at=occurred_at,
            properties=properties,
        )

    return parse


def interactions_import(
    *, path: Path, report: ImportReport, progress: Progress, chunk_size: int = INTERACTIONS_CHUNK
) -> ImportCounts:
    """USER_ID, ITEM_ID, TIMESTAMP required; EVENT_TYPE and EVENT_VALUE optional; other
    columns become event properties. Unknown users become anonymous customers."""
    source = csv_open(path, required=KINDS["interactions"].required, errors=report)
    parse = _interaction_parser(_InteractionColumns.from_header(source.header), timezone.now())
    good = stored = customers_created = 0
    try:
        for chunk in chunked(source.rows, chunk_size):
            events: list[EventRow] = []
            for number, row in chunk:
                try:
                    events.append(parse(row))
                except RowInvalid as exc:
                    report.reject(number, exc)
            if events:
                result = events_ingest(rows=events, consent_source=ConsentSource.IMPORT)
                stored += result.accepted
                customers_created += result.customers_created
            good += len(events)
            progress(good + report.rejected)
    finally:
        source.close()
    return ImportCounts(
        rows=good + report.rejected,
        imported=stored,
        unchanged=good - stored,
        rejected=report.rejected,
        details={
            "events": stored,
            "duplicates": good - stored,
            "customers_created": customers_created,
        },
    )
