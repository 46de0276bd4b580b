"""Plumbing the server benchmarks share: a scratch database, the process environment, a
free port, and waiting for a server to listen."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
PG = "postgres://postgres@127.0.0.1:5432"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def bench_env(db: str, *, redis_db: int, **extra: str) -> dict:
    """The environment of the benchmark and of the servers it starts (DEBUG off)."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="marketing.settings",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="bench-secret",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DATABASE_URL=f"{PG}/{db}",
        REDIS_URL=os.environ.get("BENCH_REDIS_URL", f"redis://127.0.0.1:6379/{redis_db}"),
        API_RATE_LIMIT="1000000/min",
        DJANGO_STATICFILES_STORAGE="django.contrib.staticfiles.storage.StaticFilesStorage",
        LOG_LEVEL="WARNING",
        **extra,
    )
    return env


def database_reset(db: str, env: dict) -> None:
    """Drop and create `db`, then migrate it."""
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {db}")
    migrate(env)


def migrate(env: dict) -> None:
    """Apply the project's migrations to the database of `env` (its DATABASE_URL)."""
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)


def django_setup(env: dict) -> None:
    os.environ.update(env)
    import django

    django.setup()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listens on port {port}")


def gunicorn_start(
    *, port: int, workers: int, env: dict, extra: tuple[str, ...] | list[str] = ()
) -> subprocess.Popen:
    """gunicorn serving the project on 127.0.0.1:`port` in its own process group."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "marketing.wsgi",
            "-w",
            str(workers),
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            *extra,
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )


def celery_worker_start(
    *, env: dict, queues: str, concurrency: int, name: str = ""
) -> subprocess.Popen:
    """`celery worker` on `queues` in its own process group (signal the group to stop it
    with its pool processes)."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "marketing",
            "worker",
            "-Q",
            queues,
            *(("-n", name) if name else ()),
            "--concurrency",
            str(concurrency),
            "-l",
            "warning",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
