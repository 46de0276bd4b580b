"""Private servers for the fault tests: the shared PostgreSQL (5432) and Redis (6379) are
never stopped; each test kills and restarts its own redis-server or PostgreSQL cluster, and a
gunicorn or Celery worker started by the test points at it."""

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import redis
from django.db import connection

from tests.campaigns.conftest import (  # noqa: F401 - the provider stand-ins, shared
    _sendgrid_server,
    _twilio_server,
    sendgrid_stand_in,
    twilio_stand_in,
)

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def stop_group(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """Signal a process started with start_new_session and wait for it."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


class PrivateRedis:
    """`redis-server` on a free port. Without persistence killing it loses everything, as a
    crashed cache node would; with `appendonly` (fsync on every write) a restart finds what
    was written before the kill, as a production Redis with AOF would."""

    def __init__(self, *, appendonly: bool = False) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.dir = tempfile.mkdtemp(prefix="faults-redis-")
        self.appendonly = appendonly

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir]
            + ["--save", "", "--appendonly", "yes" if self.appendonly else "no"]
            + ["--appendfsync", "always"],
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_listening(self.port)

    def kill(self) -> None:
        assert self.proc is not None
        stop_group(self.proc, signal.SIGKILL)

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url())


class PrivatePostgres:
    """A throwaway cluster (initdb into a temporary directory) on a free port. As root the
    server runs as the `postgres` user (PostgreSQL refuses to run as root)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="faults-pg-"))
        self.data = self.dir / "data"
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
        if not bins:
            pytest.skip("no PostgreSQL server binaries in /usr/lib/postgresql")
        self.bin = Path(bins[-1])
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.dir, "postgres")

    def _run(self, *args: str, check: bool = True) -> None:
        subprocess.run(
            [*self.as_user, *args], check=check, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    def url(self, db: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def init(self) -> None:
        self._run(str(self.bin / "initdb"), "-A", "trust", "-U", "postgres", "-D", str(self.data))

    def start(self) -> None:
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.dir / "log"),
            "-w",
            "-o",
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        )

    def stop(self, mode: str = "immediate", *, check: bool = True) -> None:
        """`immediate` is a crash as far as clients see: connections drop, no checkpoint."""
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop", check=check
        )

    def psql(self, db: str, sql: str) -> str:
        return subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", db]
            + ["-Atqc", sql],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

    def remove(self) -> None:
        self.stop(check=False)  # a failed test may have left it stopped
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_redis():
    server = PrivateRedis()
    server.start()
    yield server
    server.kill()
    shutil.rmtree(server.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def private_postgres(django_db_setup, django_db_blocker):
    """A private cluster holding a copy of the migrated test database (`template`): a dump of
    pytest-django's test database, which holds what the migrations wrote and nothing else at
    session start. Tests clone it with `createdb -T template`."""
    source = dict(connection.settings_dict)
    if not source["NAME"].startswith("test_"):  # outside a test the settings keep the name
        source["NAME"] = connection.creation._get_test_db_name()
    cluster = PrivatePostgres()
    cluster.init()
    cluster.start()
    try:
        cluster.psql("postgres", "CREATE DATABASE template")
        dump = subprocess.run(
            ["pg_dump", "-h", source["HOST"] or "127.0.0.1", "-p", str(source["PORT"] or 5432)]
            + ["-U", source["USER"], "--no-owner", source["NAME"]],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres", "-q"]
            + ["-v", "ON_ERROR_STOP=1", "-d", "template"],
            input=dump,
            check=True,
            capture_output=True,
        )
        yield cluster
    finally:
        cluster.remove()


def server_env(*, database_url: str, redis_url: str, **extra: str) -> dict:
    """The environment of a gunicorn or Celery worker the test starts (DEBUG off)."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="marketing.settings",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="faults-secret",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        CELERY_BROKER_URL=redis_url,
        API_RATE_LIMIT="1000000/min",
        DJANGO_STATICFILES_STORAGE="django.contrib.staticfiles.storage.StaticFilesStorage",
        LOG_LEVEL="ERROR",
        **extra,
    )
    return env


def shared_database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def gunicorn_start(*, env: dict, port: int, workers: int = 1) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "marketing.wsgi", "-w", str(workers)]
        + ["-b", f"127.0.0.1:{port}", "--log-level", "warning", "--timeout", "30", "--preload"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        wait_listening(port)
    except RuntimeError:
        stop_group(proc)
        raise
    return proc


def celery_worker_start(*, env: dict, queues: str, name: str) -> subprocess.Popen:
    """`celery worker` in its own process group (SIGKILL the group to kill it with its pool),
    returned once it answers a ping."""
    from marketing.celery import app as celery_app

    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "marketing", "worker", "-Q", queues, "-n", name]
        + ["-c", "1", "--without-gossip", "--without-mingle", "-l", "warning"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("celery worker exited early")
        if name in str(celery_app.control.ping(destination=[name], timeout=0.5)):
            return proc
    stop_group(proc)
    raise RuntimeError("celery worker did not answer within 90 s")
