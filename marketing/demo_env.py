"""Where `make demo` finds PostgreSQL and Redis: the environment, localhost, or embedded servers.

Imported by scripts/demo.py before Django is configured, so this module must not import Django.
The `choose_*` functions only decide; probing and starting servers happen in the callers, and a
probe is called only when the environment does not already name a URL.
"""

import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import environ
import psycopg
import redis
from psycopg import sql

DEMO_DATABASE = "marketing"
LOCAL_HOST = "127.0.0.1"
DEFAULT_PG_PORT = 5432
DEFAULT_REDIS_PORT = 6379


class Source(StrEnum):
    ENV = "env"
    LOCAL = "local"
    EMBEDDED = "embedded"


@dataclass(frozen=True)
class Choice:
    """`url` is empty for EMBEDDED: it is known only once the embedded server runs."""

    source: Source
    url: str
    reason: str


def choose_database(
    *,
    environ: Mapping[str, str],
    probe_local: Callable[[], str | None],
    port: int = DEFAULT_PG_PORT,
    dbname: str = DEMO_DATABASE,
) -> Choice:
    """`probe_local` returns the PostgreSQL user that can log in on localhost, or None."""
    url = environ.get("DATABASE_URL", "").strip()
    if url:
        return Choice(Source.ENV, url, "DATABASE_URL is set")
    user = probe_local()
    if user:
        return Choice(
            Source.LOCAL,
            f"postgres://{quote(user, safe='')}@{LOCAL_HOST}:{port}/{dbname}",
            f"PostgreSQL answers on {LOCAL_HOST}:{port} (user {user})",
        )
    return Choice(Source.EMBEDDED, "", f"nothing answers on {LOCAL_HOST}:{port}")


def choose_redis(
    *,
    environ: Mapping[str, str],
    probe_local: Callable[[], bool],
    port: int = DEFAULT_REDIS_PORT,
) -> Choice:
    url = environ.get("REDIS_URL", "").strip()
    if url:
        return Choice(Source.ENV, url, "REDIS_URL is set")
    if probe_local():
        return Choice(
            Source.LOCAL,
            f"redis://{LOCAL_HOST}:{port}/0",
            f"Redis answers PING on {LOCAL_HOST}:{port}",
        )
    return Choice(Source.EMBEDDED, "", f"nothing answers PING on {LOCAL_HOST}:{port}")


def socket_database_url(*, socket_dir: str, port: int, user: str, dbname: str) -> str:
    """A URL django-environ turns into OPTIONS={"host": socket_dir}, which psycopg accepts."""
    url = f"postgres://{quote(user, safe='')}@/{dbname}?host={quote(socket_dir, safe='')}"
    if port != DEFAULT_PG_PORT:
        url += f"&port={port}"
    return url


def celery_broker_url(redis_url: str) -> str | None:
    """Kombu names Redis unix sockets `redis+socket://`; TCP URLs need no separate broker URL."""
    parts = urlsplit(redis_url)
    if parts.scheme != "unix":
        return None
    db = parse_qs(parts.query).get("db", ["0"])[0]
    return f"redis+socket://{parts.path}?virtual_host={db}"


def psycopg_params(url: str, *, dbname: str | None = None) -> dict[str, Any]:
    """Connection keywords for psycopg from a DATABASE_URL, parsed the way settings.py does.

    The values are strings and ints; typed `Any` because callers unpack them into
    `psycopg.connect(**params)`, whose other keyword arguments are not strings."""
    config = environ.Env.db_url_config(url)
    options = dict(config.get("OPTIONS", {}))
    params: dict[str, Any] = {
        "dbname": dbname or config["NAME"],
        "user": config.get("USER") or None,
        "password": config.get("PASSWORD") or None,
        "host": config.get("HOST") or options.pop("host", None),
        "port": config.get("PORT") or options.pop("port", None),
        **options,
    }
    return {key: value for key, value in params.items() if value not in (None, "")}


def tcp_answers(*, host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def probe_postgres(*, host: str, port: int, users: list[str]) -> str | None:
    """The first of `users` that can connect to the `postgres` database, or None."""
    if not tcp_answers(host=host, port=port):
        return None
    for user in users:
        try:
            with psycopg.connect(
                host=host, port=port, user=user, dbname="postgres", connect_timeout=2
            ):
                return user
        except psycopg.Error:
            continue
    return None


def probe_redis(*, host: str, port: int) -> bool:
    if not tcp_answers(host=host, port=port):
        return False
    client = redis.Redis(host=host, port=port, socket_timeout=2, socket_connect_timeout=2)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def database_ensure(url: str) -> bool:
    """Create the URL's database when it is missing; True when it was created."""
    params = psycopg_params(url)
    name = str(params["dbname"])
    with psycopg.connect(**{**params, "dbname": "postgres"}, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists:
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return True


def port_is_free(port: int, *, host: str = LOCAL_HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As servers do: a port whose last connection is in TIME_WAIT counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(start: int, *, host: str = LOCAL_HOST, tries: int = 100) -> int:
    """`start` if nothing listens there, else the next free port above it."""
    for port in range(start, start + tries):
        if port_is_free(port, host=host):
            return port
    raise RuntimeError(f"no free port in {start}..{start + tries - 1}")
