"""What the customer-data importers share: a COPY-capable cursor and id checks."""

from collections.abc import Callable

import psycopg
from django.db import connection

from marketing.common.csv_import import RowInvalid
from profiles.ingest import MAX_ID_LENGTH

Progress = Callable[[int], None]

RECORDS_CHUNK = 10_000


def bulk_cursor() -> psycopg.Cursor:
    """A psycopg cursor on Django's connection (inside its transaction), for COPY."""
    connection.ensure_connection()
    return psycopg.Cursor(connection.connection)


def identifier(value: str, column: str) -> str:
    value = value.strip()
    if not value:
        raise RowInvalid(column, "Required.")
    if len(value) > MAX_ID_LENGTH:
        raise RowInvalid(column, f"At most {MAX_ID_LENGTH} characters.", value)
    return value
