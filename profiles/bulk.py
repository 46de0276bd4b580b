"""Bulk writes into the profiles tables with PostgreSQL COPY (psycopg 3, text format).

Columns come in as numpy arrays or sequences and are formatted column by column; rows are
joined into large preformatted text chunks and written with `copy.write()`. COPY bypasses
Django, so these functions fill what Django would: `created_at`/`updated_at`, JSON defaults.
Call them inside a transaction; they do not open one, so a caller can load several tables
atomically.
"""

import itertools
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db import connection

from profiles.models import Channel, EventChannel, EventType

NULL = "\\N"
COPY_CHUNK_ROWS = 100_000
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


@dataclass(frozen=True)
class Coded:
    """A categorical column: `codes` index into `labels`; code -1 means `missing`."""

    codes: np.ndarray
    labels: Sequence[str]
    missing: str = ""

    def texts(self) -> list[str]:
        table = np.array([copy_escape(v) for v in [*self.labels, self.missing]], dtype=object)
        return table[np.asarray(self.codes, dtype=np.int64)].tolist()


Column = Sequence[Any] | np.ndarray | Coded


def copy_escape(value: str) -> str:
    """Escape one value for COPY's text format (backslash, tab, newline, carriage return)."""
    return value.translate(_ESCAPES)


def text_column(values: Column) -> list[str]:
    """Strings, escaped; None becomes NULL."""
    if isinstance(values, Coded):
        return values.texts()
    return [NULL if v is None else copy_escape(str(v)) for v in values]


def int_column(values: Column) -> list[str]:
    """Integers; None or a negative number becomes NULL (ids are positive)."""
    arr = np.asarray(values, dtype=object if not isinstance(values, np.ndarray) else None)
    if arr.dtype != object:
        out = arr.astype(np.int64).astype(str).astype(object)
        out[arr < 0] = NULL
        return out.tolist()
    return [NULL if v is None or int(v) < 0 else str(int(v)) for v in arr.tolist()]


def decimal_column(values: Column, places: int = 2) -> list[str]:
    """Numbers rounded to `places`; None or NaN becomes NULL."""
    if isinstance(values, Coded):
        raise TypeError("decimal_column takes numbers, not a Coded column")
    if isinstance(values, np.ndarray) and values.dtype.kind == "f":
        arr = values.astype(np.float64, copy=False)
    else:
        arr = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    out = np.full(len(arr), NULL, dtype=object)
    present = ~np.isnan(arr)
    out[present] = [f"{v:.{places}f}" for v in arr[present].tolist()]
    return out.tolist()


def bool_column(values: Column) -> list[str]:
    return np.where(np.asarray(values, dtype=bool), "t", "f").astype(object).tolist()


def timestamp_column(epoch_us: Column) -> list[str]:
    """Epoch microseconds (UTC) as timestamptz literals."""
    arr = np.asarray(epoch_us, dtype=np.int64).astype("datetime64[us]")
    return np.strings.add(np.datetime_as_string(arr, unit="us"), "+00").astype(object).tolist()


def uuid_column(raw: np.ndarray | Sequence[Any]) -> list[str]:
    """UUIDs from an (n, 16) uint8 array, or from UUID objects / strings."""
    if isinstance(raw, np.ndarray) and raw.dtype == np.uint8 and raw.ndim == 2:
        hexed = np.ascontiguousarray(raw).tobytes().hex()
        return [hexed[i : i + 32] for i in range(0, len(hexed), 32)]
    return [str(v) for v in raw]


def json_column(values: Column | None, n: int) -> Iterable[str]:
    """JSON objects: dicts are dumped, strings are taken as JSON text; None means {}."""
    if values is None:
        return itertools.repeat("{}", n)
    if isinstance(values, Coded):
        return values.texts()
    return [
        "{}" if v is None else copy_escape(v if isinstance(v, str) else json.dumps(v))
        for v in values
    ]


def constant(text: str, n: int) -> Iterator[str]:
    return itertools.repeat(text, n)


def copy_columns(table: str, columns: dict[str, Iterable[str]], *, n: int) -> int:
    """COPY `n` rows of preformatted column texts into `table`; returns the rows written."""
    if n == 0:
        return 0
    names = ", ".join(connection.ops.quote_name(c) for c in columns)
    rows = map("\t".join, zip(*columns.values()))  # noqa: B905 - constants are endless
    sql = f"COPY {connection.ops.quote_name(table)} ({names}) FROM STDIN"
    with connection.cursor() as cursor, cursor.copy(sql) as copy:
        while chunk := list(itertools.islice(rows, COPY_CHUNK_ROWS)):
            copy.write("\n".join(chunk) + "\n")
    return n


def reserve_ids(table: str, n: int) -> np.ndarray:
    """Take `n` values from the table's id sequence, so rows can be copied with known pks."""
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [table, n],
        )
        return np.sort(np.array([row[0] for row in cursor.fetchall()], dtype=np.int64))


def customers_copy(
    *,
    external_ids: Sequence[str],
    created_at_us: Column,
    emails: Column | None = None,
    phones: Column | None = None,
    first_names: Column | None = None,
    last_names: Column | None = None,
    countries: Column | None = None,
    timezones: Column | None = None,
    languages: Column | None = None,
) -> np.ndarray:
    """Insert customers; returns their new pks in input order."""
    n = len(external_ids)
    ids = reserve_ids("profiles_customer", n)
    created = timestamp_column(created_at_us)

    def optional(values: Column | None) -> Iterable[str]:
        return constant("", n) if values is None else text_column(values)

    copy_columns(
        "profiles_customer",
        {
            "id": int_column(ids),
            "external_id": text_column(external_ids),
            "is_anonymous": constant("f", n),
            "email": optional(emails),
            "phone": optional(phones),
            "first_name": optional(first_names),
            "last_name": optional(last_names),
            "country": optional(countries),
            "timezone": optional(timezones),
            "language": optional(languages),
            "gender": constant("", n),
            "attributes": constant("{}", n),
            "created_at": created,
            "updated_at": created,
        },
        n=n,
    )
    return ids


def endpoints_copy(
    *,
    customer_ids: Column,
    channels: Column,
    addresses: Column,
    opted_out: Column,
    created_at_us: Column,
) -> int:
    channel_texts = text_column(channels)
    unknown = set(channel_texts) - set(Channel.values)
    if unknown:
        raise ValueError(f"unknown channels: {sorted(unknown)}")
    created = timestamp_column(created_at_us)
    n = len(channel_texts)
    return copy_columns(
        "profiles_channelendpoint",
        {
            "customer_id": int_column(customer_ids),
            "channel": channel_texts,
            "address": text_column(addresses),
            "opted_out": bool_column(opted_out),
            "attributes": constant("{}", n),
            "created_at": created,
            "updated_at": created,
        },
        n=n,
    )


def events_copy(
    *,
    customer_ids: Column,
    types: Column,
    occurred_at_us: Column,
    event_ids: np.ndarray | Sequence[Any],
    item_external_ids: Column | None = None,
    values: Column | None = None,
    channels: Column | None = None,
    campaign_ids: Column | None = None,
    properties: Column | None = None,
) -> int:
    """Append events. `received_at` is set to `occurred_at` (they arrive as history).

    `values`: NaN/None for none; `campaign_ids`: None/negative for none; `properties`: dicts,
    JSON strings or a `Coded` column of JSON texts.
    """
    type_texts = text_column(types)
    n = len(type_texts)
    bad = _unknown(types, type_texts, EventType.values, blank_ok=False)
    if bad:
        raise ValueError(f"unknown event types: {sorted(bad)}")
    channel_texts: Iterable[str]
    if channels is None:
        channel_texts = constant("", n)
    else:
        channel_texts = text_column(channels)
        bad = _unknown(channels, channel_texts, EventChannel.values)
        if bad:
            raise ValueError(f"unknown event channels: {sorted(bad)}")
    occurred = timestamp_column(occurred_at_us)
    return copy_columns(
        "profiles_event",
        {
            "event_id": uuid_column(event_ids),
            "customer_id": int_column(customer_ids),
            "type": type_texts,
            "item_external_id": (
                constant("", n) if item_external_ids is None else text_column(item_external_ids)
            ),
            "value": constant(NULL, n) if values is None else decimal_column(values),
            "channel": channel_texts,
            "campaign_id": constant(NULL, n) if campaign_ids is None else int_column(campaign_ids),
            "occurred_at": occurred,
            "received_at": occurred,
            "properties": json_column(properties, n),
        },
        n=n,
    )


def _unknown(
    column: Column, texts: Sequence[str], allowed: Sequence[str], *, blank_ok: bool = True
) -> set[str]:
    """Values outside `allowed` (checked on the labels when the column is `Coded`)."""
    present = set(column.labels) if isinstance(column, Coded) else set(texts)
    return present - set(allowed) - ({""} if blank_ok else set())
