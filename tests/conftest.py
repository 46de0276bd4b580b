import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.db import connection
from rest_framework.test import APIClient

from marketing.celery import ALL_QUEUES
from marketing.celery import app as celery_app
from marketing.roles import ANALYST, MARKETER, roles_sync
from marketing.rollups import served_breaker
from marketing.services import api_key_create


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _clean_cache():
    """Each test starts with an empty Redis cache (its own DB number, see pyproject)."""
    cache.clear()
    yield
    cache.clear()
    served_breaker.reset()  # a test that took Redis away does not leave lists uncounted


def _user_in_group(django_user_model, username: str, group: str):
    roles_sync()
    user = django_user_model.objects.create_user(username=username, password="pw-12345-secret")
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def marketer(db, django_user_model):
    return _user_in_group(django_user_model, "mara", MARKETER)


@pytest.fixture
def analyst(db, django_user_model):
    return _user_in_group(django_user_model, "ana", ANALYST)


@pytest.fixture
def marketer_client(client, marketer):
    client.force_login(marketer)
    return client


@pytest.fixture
def analyst_client(client, analyst):
    client.force_login(analyst)
    return client


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def storefront_key(db):
    """A key with every storefront scope; returns (ApiKey, raw secret)."""
    return api_key_create(
        name="storefront",
        scopes=[
            "events:write",
            "recommendations:read",
            "offers:read",
            "offers:write",
            "profiles:read",
            "profiles:write",
        ],
    )


@pytest.fixture
def storefront_client(storefront_key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {storefront_key[1]}")
    return client


ROOT = Path(__file__).resolve().parents[1]


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
