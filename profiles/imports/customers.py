"""Users (Amazon Personalize): USER_ID, GENDER, E_MAIL, AGE, ... and the customer upsert
that the endpoints import shares."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from zoneinfo import available_timezones

import orjson
import psycopg
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from marketing.common.csv_import import (
    KINDS,
    ImportCounts,
    ImportReport,
    RowInvalid,
    attribute_key,
    attribute_value,
    chunked,
    csv_open,
    text,
)
from profiles.imports.common import RECORDS_CHUNK, Progress, bulk_cursor, identifier

USER_FIELDS = {
    "E_MAIL": "email",
    "EMAIL": "email",
    "GENDER": "gender",
    "FIRST_NAME": "first_name",
    "LAST_NAME": "last_name",
    "COUNTRY": "country",
    "PHONE": "phone",
    "PHONE_NUMBER": "phone",
    "LANGUAGE": "language",
    "TIMEZONE": "timezone",
    "BIRTH_DATE": "birth_date",
}
TEXT_FIELDS = (
    "email",
    "phone",
    "first_name",
    "last_name",
    "country",
    "timezone",
    "language",
    "gender",
)
_LENGTHS = {
    "email": 254,
    "phone": 32,
    "first_name": 100,
    "last_name": 100,
    "timezone": 64,
    "language": 16,
    "gender": 16,
}
_PHONE = re.compile(r"\+?[0-9][0-9 ().\-]{2,30}")
_TIMEZONES = available_timezones()


def email_check(value: str, column: str) -> str:
    value = text(value, column, max_length=254)
    try:
        validate_email(value)
    except ValidationError:
        raise RowInvalid(column, "Not a valid email address.", value) from None
    return value


def phone_check(value: str, column: str) -> str:
    value = value.strip()
    if not _PHONE.fullmatch(value):
        raise RowInvalid(column, "Not a valid phone number.", value)
    return value


def _user_field(name: str, raw: str, column: str, today: date) -> str | date:  # noqa: PLR0911
    if name == "email":
        return email_check(raw, column)
    if name == "phone":
        return phone_check(raw, column)
    if name == "country":
        value = raw.strip().upper()
        if not re.fullmatch(r"[A-Z]{2}", value):
            raise RowInvalid(column, "Must be a two-letter ISO country code.", raw)
        return value
    if name == "timezone":
        value = raw.strip()
        if value not in _TIMEZONES:
            raise RowInvalid(column, "Not a known time zone (e.g. Europe/Berlin).", raw)
        return value
    if name == "birth_date":
        try:
            born = date.fromisoformat(raw.strip())
        except ValueError:
            raise RowInvalid(column, "Must be a date, YYYY-MM-DD.", raw) from None
        if born > today:
            raise RowInvalid(column, "Must not be in the future.", raw)
        return born
    return text(raw, column, max_length=_LENGTHS[name])


@dataclass
class CustomerRecord:
    """What a file says about one customer; None and missing keys mean "not given"."""

    external_id: str
    fields: dict = field(default_factory=dict)
    attributes: dict = field(default_factory=dict)

    def merge(self, other: CustomerRecord) -> None:
        self.fields.update(other.fields)
        self.attributes.update(other.attributes)


_CUSTOMER_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS profiles_customer_import (
    external_id text, email text, phone text, first_name text, last_name text, country text,
    timezone text, language text, gender text, birth_date date, attributes jsonb
) ON COMMIT DELETE ROWS
"""
_STAGE_COLUMNS = (*TEXT_FIELDS, "birth_date")

# Blank ('') means not given; only rows whose values change are updated (no updated_at
# churn on a re-import). Erased customers are never written to.
# Built from the constant column names above.
_CUSTOMER_UPSERT = f"""
INSERT INTO profiles_customer AS c (external_id, is_anonymous, {", ".join(TEXT_FIELDS)},
    birth_date, attributes, created_at, updated_at)
SELECT external_id, false, {", ".join(f"coalesce({f}, '')" for f in TEXT_FIELDS)},
    birth_date, attributes, %(now)s, %(now)s
FROM profiles_customer_import
ON CONFLICT (external_id) DO UPDATE SET
    is_anonymous = false,
    {", ".join(f"{f} = coalesce(nullif(EXCLUDED.{f}, ''), c.{f})" for f in TEXT_FIELDS)},
    birth_date = coalesce(EXCLUDED.birth_date, c.birth_date),
    attributes = c.attributes || EXCLUDED.attributes,
    updated_at = EXCLUDED.updated_at
WHERE c.erased_at IS NULL AND (
    false, {", ".join(f"coalesce(nullif(EXCLUDED.{f}, ''), c.{f})" for f in TEXT_FIELDS)},
    coalesce(EXCLUDED.birth_date, c.birth_date), c.attributes || EXCLUDED.attributes
) IS DISTINCT FROM (
    c.is_anonymous, {", ".join(f"c.{f}" for f in TEXT_FIELDS)}, c.birth_date, c.attributes
)
RETURNING external_id, id, (xmax = 0) AS inserted
"""  # noqa: S608


def _aliases_resolve(cursor: psycopg.Cursor, external_ids: Sequence[str]) -> dict[str, str]:
    """Ids the storefront later linked to another customer (aliases) mean that customer."""
    cursor.execute(
        "SELECT a.alias, c.external_id FROM profiles_customeralias a "
        "JOIN profiles_customer c ON c.id = a.customer_id WHERE a.alias = ANY(%s)",
        [list(external_ids)],
    )
    return dict(cursor.fetchall())


@dataclass(frozen=True)
class _UpsertResult:
    created: int
    updated: int
    pks: dict[str, int]


def customers_upsert(
    cursor: psycopg.Cursor, records: list[CustomerRecord], *, want_pks: bool = False
) -> _UpsertResult:
    """Create or update known customers from a chunk (inside the caller's transaction).
    Records for the same customer merge, later ones winning."""
    aliases = _aliases_resolve(cursor, [r.external_id for r in records])
    merged: dict[str, CustomerRecord] = {}
    for record in records:
        key = aliases.get(record.external_id, record.external_id)
        if key in merged:
            merged[key].merge(record)
        else:
            merged[key] = CustomerRecord(key, dict(record.fields), dict(record.attributes))
    cursor.execute(_CUSTOMER_STAGE)
    cursor.execute("TRUNCATE profiles_customer_import")
    with cursor.copy(
        "COPY profiles_customer_import (external_id, "
        + ", ".join(_STAGE_COLUMNS)
        + ", attributes) FROM STDIN"
    ) as copy:
        for record in merged.values():
            copy.write_row(
                (
                    record.external_id,
                    *(record.fields.get(name) for name in _STAGE_COLUMNS),
                    orjson.dumps(record.attributes).decode(),
                )
            )
    cursor.execute(_CUSTOMER_UPSERT, {"now": timezone.now()})
    written = cursor.fetchall()
    created = sum(1 for _, _, inserted in written if inserted)
    pks: dict[str, int] = {}
    if want_pks:
        cursor.execute(
            "SELECT external_id, id FROM profiles_customer WHERE external_id = ANY(%s) "
            "AND erased_at IS NULL",
            [list(merged)],
        )
        found: dict[str, int] = dict(cursor.fetchall())
        pks = {
            r.external_id: found[aliases.get(r.external_id, r.external_id)]
            for r in records
            if aliases.get(r.external_id, r.external_id) in found
        }
    return _UpsertResult(created=created, updated=len(written) - created, pks=pks)


def users_import(
    *, path: Path, report: ImportReport, progress: Progress, chunk_size: int = RECORDS_CHUNK
) -> ImportCounts:
    """USER_ID required; E_MAIL (or EMAIL), GENDER, FIRST_NAME, LAST_NAME, COUNTRY, PHONE,
    LANGUAGE, TIMEZONE, BIRTH_DATE fill the profile; AGE and any other column become
    attributes (pipe-separated values become lists). Imported users are known (not
    anonymous)."""
    source = csv_open(path, required=KINDS["users"].required, errors=report)
    header = source.header
    user_column = header.required_index("USER_ID")
    mapped: list[tuple[int, str, str]] = []
    attributes: list[tuple[int, str]] = []
    taken: set[str] = set()
    for index, (key, name) in enumerate(zip(header.keys, header.names, strict=True)):
        if index == user_column:
            continue
        target = USER_FIELDS.get(key)
        if target and target not in taken:
            taken.add(target)
            mapped.append((index, target, name))
        else:
            attributes.append((index, attribute_key(name)))
    today = timezone.now().date()
    good = created = updated = 0
    try:
        for chunk in chunked(source.rows, chunk_size):
            records: list[CustomerRecord] = []
            for number, row in chunk:
                try:
                    record = CustomerRecord(identifier(row[user_column], header.names[user_column]))
                    for index, target, name in mapped:
                        if row[index].strip():
                            record.fields[target] = _user_field(target, row[index], name, today)
                    for index, key in attributes:
                        if cell := row[index].strip():
                            record.attributes[key] = attribute_value(cell)
                except RowInvalid as exc:
                    report.reject(number, exc)
                    continue
                records.append(record)
            if records:
                with transaction.atomic(), bulk_cursor() as cursor:
                    result = customers_upsert(cursor, records)
                created += result.created
                updated += result.updated
            good += len(records)
            progress(good + report.rejected)
    finally:
        source.close()
    return ImportCounts(
        rows=good + report.rejected,
        imported=created + updated,
        unchanged=good - created - updated,
        rejected=report.rejected,
        details={"customers_created": created, "customers_updated": updated},
    )
