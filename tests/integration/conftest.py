"""A real Celery worker process for integration tests, on the test database and Redis."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection

from marketing.celery import ALL_QUEUES
from marketing.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def celery_worker_process(transactional_db):
    """Start `celery worker` as a subprocess pointed at the test database; yield its name."""
    db = connection.settings_dict
    env = dict(os.environ)
    env["DATABASE_URL"] = (
        f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    )
    env["DJANGO_CONN_MAX_AGE"] = "0"
    name = f"test-{uuid.uuid4().hex[:8]}@localhost"
    with celery_app.connection_for_write() as conn:
        for queue in ALL_QUEUES.split(","):
            conn.default_channel.client.delete(queue)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "marketing",
            "worker",
            "-Q",
            ALL_QUEUES,
            "-n",
            name,
            "--concurrency",
            "1",
            "--without-gossip",
            "--without-mingle",
            "-l",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"celery worker exited early:\n{proc.stderr.read()}")
            replies = celery_app.control.ping(destination=[name], timeout=0.5) or []
            if any(name in reply for reply in replies):
                break
        else:
            raise RuntimeError("celery worker did not answer within 60 s")
        yield name
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_for(predicate, *, timeout: float = 60.0, interval: float = 0.2):
    """Poll until predicate() is truthy; return its value, or fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout} s")
