"""PostgreSQL restarted under load (issue #11, faults): a private cluster is stopped
(immediate mode, as a crash looks to clients) and started again while a client posts events
and reads recommendations through gunicorn. Requests during the outage answer 503 with
Retry-After and the API's JSON error body, never a 500; requests afterwards succeed; every
event acknowledged with 2xx is in the database."""

import subprocess
import sys
import threading
import time
import uuid
from collections import Counter

import pytest
import requests

from tests.faults.conftest import ROOT, free_port, gunicorn_start, server_env, stop_group
from tests.helpers import wait_for

pytestmark = pytest.mark.integration

KEY_SCRIPT = """
import django
django.setup()
from marketing.services import api_key_create
print(api_key_create(name="faults", scopes=["events:write", "recommendations:read"])[1])
"""


def _api_key_start(env: dict) -> subprocess.Popen:
    """A process creating a key in the private database (it boots Django while gunicorn
    does); its last line of output is the raw key."""
    return subprocess.Popen(
        [sys.executable, "-c", KEY_SCRIPT], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )


def test_a_postgres_restart_answers_503_then_recovers_and_loses_no_acknowledged_event(
    private_postgres, private_redis
):
    db = f"faults_{uuid.uuid4().hex[:8]}"
    private_postgres.psql("postgres", f"CREATE DATABASE {db} TEMPLATE template")
    env = server_env(
        database_url=private_postgres.url(db),
        redis_url=private_redis.url(),
        DJANGO_CONN_MAX_AGE="60",  # persistent connections: the restart breaks them
    )
    key_process = _api_key_start(env)
    port = free_port()
    server = gunicorn_start(env=env, port=port, workers=2)
    raw_key = key_process.communicate(timeout=120)[0].strip().splitlines()[-1]
    headers = {"Authorization": f"Api-Key {raw_key}"}
    base = f"http://127.0.0.1:{port}/api/v1"
    acknowledged: list[str] = []
    answers: list[tuple[str, int, str, str | None]] = []  # (phase, status, code, Retry-After)
    phase = {"now": "before"}
    stop = threading.Event()

    pages: list[tuple[str, int, str | None]] = []  # (phase, status, Retry-After)

    def page() -> None:
        """A browser with a session cookie: the session is loaded (from the database) by
        the login check before any view runs."""
        try:
            response = requests.get(
                f"http://127.0.0.1:{port}/",
                cookies={"sessionid": "a" * 32},
                allow_redirects=False,
                timeout=10,
            )
        except requests.RequestException:
            pages.append((phase["now"], 0, None))
            return
        if response.status_code == 503:
            assert b"temporarily unavailable" in response.content
        pages.append((phase["now"], response.status_code, response.headers.get("Retry-After")))

    def client() -> None:
        session = requests.Session()
        session.headers.update(headers)
        n = 0
        while not stop.is_set():
            n += 1
            event_id = str(uuid.uuid4())
            event = {"event_id": event_id, "customer_id": f"c-{n % 20}", "type": "view"}
            event["item_id"] = f"sku-{n % 7}"
            for method, url, body in (
                ("post", f"{base}/events", event),
                ("get", f"{base}/customers/c-{n % 20}/recommendations", None),
            ):
                try:
                    response = session.request(method, url, json=body, timeout=10)
                except requests.RequestException as exc:
                    answers.append((phase["now"], 0, type(exc).__name__, None))
                    continue
                code = ""
                if response.status_code >= 400:
                    code = response.json().get("code", "")  # JSON always, even on 5xx
                answers.append(
                    (phase["now"], response.status_code, code, response.headers.get("Retry-After"))
                )
                if method == "post" and response.status_code < 300:
                    acknowledged.append(event_id)
            if n % 2 == 0:
                page()
            time.sleep(0.01)

    thread = threading.Thread(target=client, daemon=True)
    try:
        url = f"{base}/customers/c-1/recommendations"
        wait_for(
            lambda: all(
                requests.get(url, headers=headers, timeout=30).ok
                for _ in range(4)  # both workers have loaded the app
            ),
            timeout=60,
        )
        thread.start()
        wait_for(lambda: len(answers) >= 10, timeout=60, interval=0.05)
        phase["now"] = "down"
        private_postgres.stop("immediate")
        wait_for(
            lambda: sum(a[1] == 503 for a in answers) >= 6 and any(p[1] == 503 for p in pages),
            timeout=60,
            interval=0.05,
        )
        phase["now"] = "restarting"
        private_postgres.start()
        # Recovered once six answers in a row are successes (a socket broken by the restart
        # may still cost a 503 first).
        wait_for(lambda: all(a[1] in (200, 202) for a in answers[-6:]), timeout=60)
        phase["now"] = "after"
        wait_for(lambda: sum(a[0] == "after" for a in answers) >= 10, timeout=60, interval=0.05)
    finally:
        stop.set()
        thread.join(timeout=30)
        stop_group(server)

    by_phase = Counter((p, s) for p, s, _, _ in answers)
    assert {s for p, s, _, _ in answers if p == "before"} == {200, 202}, by_phase
    assert {s for _, s, _, _ in answers} <= {200, 202, 503}, by_phase  # no 500, no hang-up
    refused = [(c, r) for _, s, c, r in answers if s == 503]
    assert len(refused) >= 6
    assert set(refused) == {("database_unavailable", "5")}  # JSON error body, Retry-After
    assert {s for p, s, _, _ in answers if p == "after"} == {200, 202}, by_phase  # recovered
    stored = set(private_postgres.psql(db, "SELECT event_id FROM profiles_event").split())
    assert acknowledged
    assert set(acknowledged) <= stored  # no acknowledged event lost
    # Pages: a redirect to the login page before and after, 503 with Retry-After (an HTML
    # page) while the database is down, never a 500.
    assert {s for p, s, _ in pages if p in ("before", "after")} <= {302}, pages
    assert {s for _, s, _ in pages} <= {302, 503}, pages
    assert {r for _, s, r in pages if s == 503} == {"5"}
    assert any(s == 503 for _, s, _ in pages), pages
