"""Plumbing the server benchmarks share: a scratch database, the process environment, a
free port, and waiting for a server to listen."""

import os
import re
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
    client (no coordinated omission). A body makes the call a POST, none a GET.

    One thread and an event loop over at most `threads` connections, with every request's
    bytes built beforehand: the driver's own cost stays a few tens of microseconds a call
    and no GIL hand-over (5 ms between Python threads) lands in the figures. A call due
    while every connection is busy waits for one, and that wait counts."""
    import selectors
    from collections import deque

    import numpy as np

    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    wire = []
    for path, body in calls:
        method = "POST" if body else "GET"
        length = f"Content-Length: {len(body)}\r\n" if body else ""
        wire.append(
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{head}{length}\r\n".encode()
            + (body or b"")
        )
    n = len(calls)
    latencies = np.zeros(n)
    statuses = np.zeros(n, dtype=np.int32)
    # select(2) takes microseconds; epoll_wait rounds its timeout up to whole milliseconds,
    # which would send calls up to 1 ms late.
    selector = selectors.SelectSelector()
    idle: list[socket.socket] = []
    in_flight: dict[socket.socket, list] = {}  # socket -> [index, buffer]
    waiting: deque[int] = deque()
    state = {"open": 0, "done": 0}

    def connect() -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        state["open"] += 1
        return sock

    def discard(sock: socket.socket) -> None:
        selector.unregister(sock)
        sock.close()
        state["open"] -= 1

    def finish(sock: socket.socket, index: int, status: int, keep: bool) -> None:
        latencies[index] = time.perf_counter() - (start + index / rate)
        statuses[index] = status
        state["done"] += 1
        del in_flight[sock]
        if keep:
            idle.append(sock)
        else:
            discard(sock)

    def send(index: int) -> None:
        sock = idle.pop() if idle else connect()
        try:
            sock.sendall(wire[index])
        except OSError:
            if sock.fileno() in selector.get_map():
                selector.unregister(sock)
            sock.close()
            state["open"] -= 1
            latencies[index] = time.perf_counter() - (start + index / rate)
            statuses[index] = -1
            state["done"] += 1
            return
        if sock.fileno() not in selector.get_map():
            selector.register(sock, selectors.EVENT_READ)
        in_flight[sock] = [index, b""]

    def receive(sock: socket.socket) -> None:
        if sock not in in_flight:  # an idle connection the server closed
            idle.remove(sock)
            discard(sock)
            return
        index, buffer = in_flight[sock]
        try:
            chunk = sock.recv(65536)
        except OSError:
            chunk = b""
        if not chunk:  # closed: complete if the headers said nothing of the length
            status = int(buffer[9:12]) if buffer[:5] == b"HTTP/" and b"\r\n\r\n" in buffer else -1
            finish(sock, index, status, keep=False)
            return
        buffer += chunk
        in_flight[sock][1] = buffer
        header_end = buffer.find(b"\r\n\r\n")
        if header_end < 0:
            return
        header = buffer[:header_end].lower()
        match = re.search(rb"\r\ncontent-length: *(\d+)", header)
        if match is None:
            return  # read to the close
        if len(buffer) - header_end - 4 < int(match.group(1)):
            return
        keep = b"\r\nconnection: close" not in header
        finish(sock, index, int(buffer[9:12]), keep=keep)

    start = time.perf_counter() + 0.2
    next_index = 0
    while state["done"] < n:
        now = time.perf_counter()
        while next_index < n and start + next_index / rate <= now:
            waiting.append(next_index)
            next_index += 1
        while waiting and (idle or state["open"] < threads):
            send(waiting.popleft())
        if next_index < n:
            timeout = max(0.0, start + next_index / rate - time.perf_counter())
        else:
            timeout = 1.0
        for key, _ in selector.select(timeout=timeout if in_flight else min(timeout, 1.0)):
            receive(key.fileobj)
    for sock in idle:
        discard(sock)
    elapsed = time.perf_counter() - start
    ms = latencies * 1000
    return {
        "requests": n,
        "non_200": int((statuses != 200).sum()),
        "achieved_rps": round(n / elapsed, 1),
        **{f"p{q}_ms": round(float(np.percentile(ms, q)), 2) for q in (50, 90, 95, 99)},
        "max_ms": round(float(ms.max()), 2),
    }
