"""Channel endpoints (Amazon Pinpoint): User.UserId, ChannelType, Address, OptOut,
User.UserAttributes.*, Attributes.*, Location.*, ..."""

from __future__ import annotations

from pathlib import Path

import orjson
import psycopg
from django.db import transaction
from django.utils import timezone

from marketing.common.csv_import import (
    KINDS,
    ImportCounts,
    ImportReport,
    RowInvalid,
    attribute_key,
    attribute_value,
    boolean,
    chunked,
    csv_open,
    text,
)
from profiles.imports.common import RECORDS_CHUNK, Progress, bulk_cursor, identifier
from profiles.imports.customers import CustomerRecord, customers_upsert, email_check, phone_check
from profiles.models import Channel

PINPOINT_CHANNELS = {
    "EMAIL": Channel.EMAIL,
    "SMS": Channel.SMS,
    "APNS": Channel.PUSH,
    "APNS_SANDBOX": Channel.PUSH,
    "APNS_VOIP": Channel.PUSH,
    "APNS_VOIP_SANDBOX": Channel.PUSH,
    "GCM": Channel.PUSH,
    "BAIDU": Channel.PUSH,
    "ADM": Channel.PUSH,
    "IN_APP": Channel.IN_APP,
}
USER_ATTRIBUTE_PREFIX = "USER.USERATTRIBUTES."
ENDPOINT_ATTRIBUTE_PREFIX = "ATTRIBUTES."


def _opt_out(raw: str, column: str) -> bool | None:
    value = raw.strip().upper()
    if not value:
        return None
    if value == "ALL":
        return True
    if value == "NONE":
        return False
    return boolean(raw, column)


def _address(channel: str, raw: str, column: str) -> str:
    if not raw.strip():
        raise RowInvalid(column, "Required.")
    if channel == Channel.EMAIL:
        return email_check(raw, column)
    if channel == Channel.SMS:
        return phone_check(raw, column)
    return text(raw, column, max_length=512)


_ENDPOINT_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS profiles_endpoint_import (
    customer_id bigint, channel text, address text, opted_out boolean, attributes jsonb
) ON COMMIT DELETE ROWS
"""
_ENDPOINT_INSERT = """
INSERT INTO profiles_channelendpoint (customer_id, channel, address, opted_out, attributes,
    created_at, updated_at)
SELECT customer_id, channel, address, coalesce(opted_out, false), attributes, %(now)s, %(now)s
FROM profiles_endpoint_import
ON CONFLICT (customer_id, channel, address) DO NOTHING
"""
# After the insert, the rows that already existed: update those whose values differ.
_ENDPOINT_UPDATE = """
UPDATE profiles_channelendpoint e
SET opted_out = coalesce(s.opted_out, e.opted_out), attributes = e.attributes || s.attributes,
    updated_at = %(now)s
FROM profiles_endpoint_import s
WHERE e.customer_id = s.customer_id AND e.channel = s.channel AND e.address = s.address
  AND (coalesce(s.opted_out, e.opted_out), e.attributes || s.attributes)
      IS DISTINCT FROM (e.opted_out, e.attributes)
"""


def endpoints_import(
    *, path: Path, report: ImportReport, progress: Progress, chunk_size: int = RECORDS_CHUNK
) -> ImportCounts:
    """User.UserId, ChannelType and Address required; OptOut ("ALL") when present.
    `User.UserAttributes.X` columns become customer attributes, the rest (Attributes.*,
    Location.*, Demographic.*, Id, ...) endpoint attributes. ChannelType EMAIL, SMS,
    APNS*, GCM, BAIDU, ADM and IN_APP are known; other types are rejected."""
    source = csv_open(path, required=KINDS["endpoints"].required, errors=report)
    header = source.header
    names = header.names
    c_user, c_type, c_address = (
        header.required_index("USER.USERID"),
        header.required_index("CHANNELTYPE"),
        header.required_index("ADDRESS"),
    )
    c_opt_out = header.index("OPTOUT")
    user_attributes: list[tuple[int, str]] = []
    endpoint_attributes: list[tuple[int, str]] = []
    for index, (key, name) in enumerate(zip(header.keys, names, strict=True)):
        if index in (c_user, c_type, c_address, c_opt_out):
            continue
        if key.startswith(USER_ATTRIBUTE_PREFIX):
            user_attributes.append((index, attribute_key(name[len(USER_ATTRIBUTE_PREFIX) :])))
        elif key.startswith(ENDPOINT_ATTRIBUTE_PREFIX):
            endpoint_attributes.append(
                (index, attribute_key(name[len(ENDPOINT_ATTRIBUTE_PREFIX) :]))
            )
        else:
            endpoint_attributes.append((index, attribute_key(name)))
    good = created = updated = customers_created = customers_updated = 0
    try:
        for chunk in chunked(source.rows, chunk_size):
            parsed: list[tuple[CustomerRecord, str, str, bool | None, dict]] = []
            for number, row in chunk:
                try:
                    user = identifier(row[c_user], names[c_user])
                    kind = row[c_type].strip().upper()
                    if not kind:
                        raise RowInvalid(names[c_type], "Required.")
                    channel = PINPOINT_CHANNELS.get(kind)
                    if channel is None:
                        raise RowInvalid(
                            names[c_type],
                            "Unknown channel type; known: " + ", ".join(PINPOINT_CHANNELS) + ".",
                            row[c_type],
                        )
                    address = _address(channel, row[c_address], names[c_address])
                    opted_out = (
                        _opt_out(row[c_opt_out], names[c_opt_out])
                        if c_opt_out is not None
                        else None
                    )
                    record = CustomerRecord(user)
                    for index, key in user_attributes:
                        if cell := row[index].strip():
                            record.attributes[key] = attribute_value(cell)
                    endpoint_attrs = {
                        key: attribute_value(cell)
                        for index, key in endpoint_attributes
                        if (cell := row[index].strip())
                    }
                except RowInvalid as exc:
                    report.reject(number, exc)
                    continue
                parsed.append((record, channel, address, opted_out, endpoint_attrs))
            if parsed:
                with transaction.atomic(), bulk_cursor() as cursor:
                    result = customers_upsert(cursor, [p[0] for p in parsed], want_pks=True)
                    customers_created += result.created
                    customers_updated += result.updated
                    c, u = _endpoints_upsert(cursor, parsed, result.pks)
                created += c
                updated += u
            good += len(parsed)
            progress(good + report.rejected)
    finally:
        source.close()
    return ImportCounts(
        rows=good + report.rejected,
        imported=created + updated,
        unchanged=good - created - updated,
        rejected=report.rejected,
        details={
            "endpoints_created": created,
            "endpoints_updated": updated,
            "customers_created": customers_created,
            "customers_updated": customers_updated,
        },
    )


def _endpoints_upsert(cursor: psycopg.Cursor, parsed, pks: dict[str, int]) -> tuple[int, int]:
    merged: dict[tuple[int, str, str], list] = {}
    for record, channel, address, opted_out, attributes in parsed:
        pk = pks.get(record.external_id)
        if pk is None:  # an erased customer: nothing is written for them
            continue
        key = (pk, channel, address)
        if key in merged:
            if opted_out is not None:
                merged[key][0] = opted_out
            merged[key][1].update(attributes)
        else:
            merged[key] = [opted_out, dict(attributes)]
    cursor.execute(_ENDPOINT_STAGE)
    cursor.execute("TRUNCATE profiles_endpoint_import")
    with cursor.copy(
        "COPY profiles_endpoint_import (customer_id, channel, address, opted_out, attributes) "
        "FROM STDIN"
    ) as copy:
        for (pk, channel, address), (opted_out, attributes) in merged.items():
            copy.write_row((pk, channel, address, opted_out, orjson.dumps(attributes).decode()))
    now = timezone.now()
    cursor.execute(_ENDPOINT_INSERT, {"now": now})
    created = cursor.rowcount
    cursor.execute(_ENDPOINT_UPDATE, {"now": now})
    return created, cursor.rowcount
