"""What the customer-data importers share: a COPY-capable cursor and id checks."""

from collections.abc import Callable

from marketing.common.csv_import import RowInvalid
from profiles.ingest import MAX_ID_LENGTH
from profiles.services._db import bulk_cursor

__all__ = ["RECORDS_CHUNK", "Progress", "bulk_cursor", "identifier"]

Progress = Callable[[int], None]

RECORDS_CHUNK = 10_000


def identifier(value: str, column: str) -> str:
    value = value.strip()
    if not value:
        raise RowInvalid(column, "Required.")
    if len(value) > MAX_ID_LENGTH:
        raise RowInvalid(column, f"At most {MAX_ID_LENGTH} characters.", value)
    return value
