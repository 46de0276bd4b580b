"""A segment as a CSV of endpoint addresses, like an Amazon Pinpoint imported segment.

Only endpoints a message may go to are listed: the customer granted the channel's purpose
(`profiles.consent`, the one place that decides) and the endpoint is not opted out. Erased
customers are never listed. Rule segments are evaluated now; the others list their stored
members. Rows stream from a server-side cursor, so the size of a segment does not matter.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Final

from django.db.models import Count, Q, QuerySet
from django.db.models.expressions import RawSQL

from profiles.consent import consent_reachable_endpoints_for
from profiles.models import ChannelEndpoint, Segment
from profiles.segments.errors import SegmentExportChannelError
from profiles.segments.selectors import segment_member_ids_sql

EXPORT_CHANNELS: Final = ("email", "sms", "push")
CHANNEL_TYPES: Final = {"email": "EMAIL", "sms": "SMS", "push": "PUSH"}
EXPORT_COLUMNS: Final = (
    "ChannelType",
    "Address",
    "Id",
    "User.UserId",
    "User.UserAttributes.FirstName",
    "Location.Country",
    "Attributes.SegmentName",
)
EXPORT_CHUNK_SIZE = 2000


def segment_export_channels(channel: str) -> tuple[str, ...]:
    """The channels one export covers: one of EXPORT_CHANNELS, or "all" of them."""
    if channel == "all":
        return EXPORT_CHANNELS
    if channel not in EXPORT_CHANNELS:
        raise SegmentExportChannelError(
            f"Unknown channel {channel!r}; choose one of {', '.join(EXPORT_CHANNELS)} or all.",
            extra={"errors": {"channel": f"Choose one of {', '.join(EXPORT_CHANNELS)} or all."}},
        )
    return (channel,)


def _members(segment: Segment) -> RawSQL:
    # Django's own compiled SQL of the members query, with its parameters kept apart.
    sql, params = segment_member_ids_sql(segment=segment)
    return RawSQL(sql, params)  # noqa: S611


def segment_reachable_endpoints(*, segment: Segment, channel: str) -> QuerySet[ChannelEndpoint]:
    """The segment's members' reachable endpoints on one channel, of customers not erased."""
    return consent_reachable_endpoints_for(customers=_members(segment), channel=channel).filter(
        customer__erased_at__isnull=True
    )


def segment_export_counts(*, segment: Segment) -> dict[str, int]:
    """How many endpoints each channel's export would list (one query)."""
    members = _members(segment)
    reachable = [
        consent_reachable_endpoints_for(customers=members, channel=channel)
        for channel in EXPORT_CHANNELS
    ]
    union = reachable[0]
    for qs in reachable[1:]:
        union = union | qs
    counts = union.filter(customer__erased_at__isnull=True).aggregate(
        **{channel: Count("pk", filter=Q(channel=channel)) for channel in EXPORT_CHANNELS}
    )
    return {channel: counts[channel] or 0 for channel in EXPORT_CHANNELS}


def segment_export_rows(*, segment: Segment, channel: str = "all") -> Iterator[tuple]:
    """The export's rows (without the header), channel by channel, in customer order."""
    for name in segment_export_channels(channel):
        rows = (
            segment_reachable_endpoints(segment=segment, channel=name)
            .order_by("customer_id", "pk")
            .values_list(
                "address",
                "pk",
                "customer__external_id",
                "customer__first_name",
                "customer__country",
            )
        )
        channel_type = CHANNEL_TYPES[name]
        for address, pk, external_id, first_name, country in rows.iterator(
            chunk_size=EXPORT_CHUNK_SIZE
        ):
            yield (channel_type, address, pk, external_id, first_name, country, segment.name)


class _Echo:
    """A file-like object whose write returns the line, for csv.writer to stream through."""

    def write(self, value: str) -> str:
        return value


def segment_export_csv(*, segment: Segment, channel: str = "all") -> Iterator[str]:
    """The CSV text, line by line, header first. An unknown channel raises before any row."""
    segment_export_channels(channel)
    writer = csv.writer(_Echo())
    yield writer.writerow(EXPORT_COLUMNS)
    for row in segment_export_rows(segment=segment, channel=channel):
        yield writer.writerow(row)


def segment_export_filename(*, segment: Segment, channel: str) -> str:
    slug = "".join(ch if ch.isascii() and ch.isalnum() else "-" for ch in segment.name.lower())
    slug = "-".join(part for part in slug.split("-") if part)
    return f"segment-{segment.pk}-{slug or 'export'}-{channel}.csv"
