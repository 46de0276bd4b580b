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


def scratch_needs_load(model, *, rows: int, reload: bool, db: str, env: dict) -> bool:
    """Whether the scratch database must be (re)loaded: asked to, missing, or not holding
    `rows` rows of `model`. When so, it is dropped, created and migrated here."""
    from django.db import DatabaseError, connection

    try:
        stored = model.objects.count()
    except DatabaseError:  # no scratch database yet
        stored = None
    connection.close()
    if reload or stored != rows:
        database_reset(db, env)
        return True
    return False


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


def open_loop_drive(
    port: int,
    calls: list[tuple[str, bytes]],
    *,
    rate: float,
    headers: dict,
    threads: int = 32,
) -> dict:
    """Send every (path, body) at `rate` per second, open loop: each call is due at an exact
    time and its latency counts from then, so a stalled server is not hidden by a waiting
    client (no coordinated omission). A body makes the call a POST, none a GET."""
    import http.client
    import threading

    import numpy as np

    n = len(calls)
    lock = threading.Lock()
    state = {"next": 0}
    latencies = np.zeros(n)
    statuses = np.zeros(n, dtype=np.int32)
    start = time.perf_counter() + 0.2

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            with lock:
                index = state["next"]
                state["next"] += 1
            if index >= n:
                break
            due = start + index / rate
            if (wait := due - time.perf_counter()) > 0:
                time.sleep(wait)
            path, body = calls[index]
            try:
                conn.request("POST" if body else "GET", path, body=body or None, headers=headers)
                response = conn.getresponse()
                response.read()
                statuses[index] = response.status
            except (OSError, http.client.HTTPException):
                statuses[index] = -1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            latencies[index] = time.perf_counter() - due
        conn.close()

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - start
    ms = latencies * 1000
    return {
        "requests": n,
        "non_200": int((statuses != 200).sum()),
        "achieved_rps": round(n / elapsed, 1),
        **{f"p{q}_ms": round(float(np.percentile(ms, q)), 2) for q in (50, 90, 95, 99)},
        "max_ms": round(float(ms.max()), 2),
    }
