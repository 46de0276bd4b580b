"""Database helpers shared by the profiles services."""

from __future__ import annotations

import orjson
import psycopg
from django.db import connection


def bulk_cursor():
    """A psycopg cursor with server-side parameter binding, on Django's connection (so inside
    its transaction). Django's own cursor binds on the client, which quotes 1,000-element
    arrays in Python; this one sends them as they are."""
    connection.ensure_connection()
    return psycopg.Cursor(connection.connection)


def json_value(value):
    """jsonb arrives as text through Django's adapters and as a dict in binary mode."""
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def json_dumps(value) -> str:
    return orjson.dumps(value).decode()
