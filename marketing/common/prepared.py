"""One-row reads on a request's hot path as server-side prepared statements.

Django's cursor (a psycopg ClientCursor) binds parameters on the client and never prepares,
so PostgreSQL parses and plans a hot query on every call. `fetchone_prepared` runs it
through a cursor that binds on the server and prepares on first use (a statement named
`_pg3_<n>` per connection), inside Django's cursor wrapper: errors stay Django's
OperationalError / InterfaceError (DatabaseUnavailableMiddleware answers 503) and the query
is counted and logged like one from `connection.cursor()`. It is prepared only when the
connection's prepare_threshold is not None (settings set a threshold that is never reached,
so nothing else is prepared); otherwise it runs unprepared with the same result.
"""

import psycopg
from django.db import InterfaceError, OperationalError, connection


class PreparedCursor(psycopg.Cursor):
    """Server-side binding, and every query a server-side prepared statement."""

    def execute(self, query, params=None, *, prepare=True, binary=None):
        return super().execute(query, params, prepare=prepare, binary=binary)


def fetchone_prepared(sql: str, params: dict) -> tuple | None:
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    connection.validate_thread_sharing()
    with connection.wrap_database_errors:
        raw = PreparedCursor(connection.connection)
    wrap = connection.make_debug_cursor if connection.queries_logged else connection.make_cursor
    with wrap(raw) as cursor:  # type: ignore[arg-type]  # the stubs expect a CursorWrapper
        cursor.execute(sql, params)
        return cursor.fetchone()


def fetchone_prepared_as_health_check(sql: str, params: dict) -> tuple | None:
    """`fetchone_prepared` for a read that doubles as the connection's health check. Before
    a request's first query Django checks a persistent connection (CONN_HEALTH_CHECKS) with
    a SELECT 1, a round trip as long as a hot path's one query. A read is safe to repeat: on
    a connection that died while idle (PostgreSQL restarted) it fails and runs once more on
    a new connection. Inside a transaction the usual check stays."""
    reused = connection.connection is not None and not connection.in_atomic_block
    if not reused:
        return fetchone_prepared(sql, params)
    # Django's flag (not in the stubs): this request's check is done
    connection.health_check_done = True  # type: ignore[attr-defined]
    try:
        return fetchone_prepared(sql, params)
    except (OperationalError, InterfaceError):
        connection.close()
        return fetchone_prepared(sql, params)
