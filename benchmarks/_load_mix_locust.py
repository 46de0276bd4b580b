"""The locust users of benchmarks/load_mix.py (not a benchmark itself: it starts with _).

Run by load_mix.py as `python -m locust -f benchmarks/_load_mix_locust.py --headless ...` with
LOAD_MIX_CONFIG naming a JSON file it wrote: the API key, customer and item ids of the
scratch store, the experiment key, the marketer's login, and the think time.

Two kinds of users, 5 storefront sessions for each marketer:
- Storefront (API key): event batches, recommendations, offer rank then reward, experiment
  assignment.
- Marketer (logs in through the login form, session cookie): dashboard, segment list,
  campaign list.
Requests are grouped by endpoint (ids replaced by [id]) so the report has one row each.
"""

import json
import os
import random
import re
import uuid
from datetime import UTC, datetime

from locust import FastHttpUser, between, constant, task

with open(os.environ["LOAD_MIX_CONFIG"]) as _file:
    CONFIG = json.load(_file)

EVENT_TYPES = ["view"] * 6 + ["click"] * 2 + ["add_to_cart", "purchase"]
BATCH = int(CONFIG.get("event_batch", 50))
THINK = float(CONFIG.get("think_seconds", 0.0))
WAIT = between(0, THINK) if THINK > 0 else constant(0)
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class Storefront(FastHttpUser):
    """A shop's backend calling the API for its visitors."""

    weight = 5
    wait_time = WAIT

    def on_start(self) -> None:
        self.headers = {
            "Authorization": f"Api-Key {CONFIG['api_key']}",
            "Content-Type": "application/json",
        }
        self.rng = random.Random()

    def _customer(self) -> str:
        return self.rng.choice(CONFIG["customers"])

    @task(3)
    def events(self) -> None:
        now = datetime.now(tz=UTC).isoformat()
        batch = []
        for _ in range(BATCH):
            kind = self.rng.choice(EVENT_TYPES)
            batch.append(
                {
                    "event_id": str(uuid.uuid4()),
                    "customer_id": self._customer(),
                    "type": kind,
                    "item_id": self.rng.choice(CONFIG["items"]),
                    "value": round(self.rng.uniform(5, 200), 2) if kind == "purchase" else None,
                    "channel": "web",
                    "timestamp": now,
                }
            )
        with self.client.post(
            "/api/v1/events",
            data=json.dumps(batch),
            headers=self.headers,
            name="POST /api/v1/events (batch)",
            catch_response=True,
        ) as response:
            if response.status_code != 202:
                response.failure(f"HTTP {response.status_code}")

    @task(5)
    def recommendations(self) -> None:
        self.client.get(
            f"/api/v1/customers/{self._customer()}/recommendations?k=10",
            headers=self.headers,
            name="GET /api/v1/customers/[id]/recommendations",
        )

    @task(3)
    def offer_rank_and_reward(self) -> None:
        body = {
            "customer_id": self._customer(),
            "placement": CONFIG.get("placement", "home_banner"),
            "context": {"device": self.rng.choice(["mobile", "desktop"])},
            "k": 3,
        }
        response = self.client.post(
            "/api/v1/offers/rank",
            data=json.dumps(body),
            headers=self.headers,
            name="POST /api/v1/offers/rank",
        )
        if response.status_code != 200 or self.rng.random() >= 0.5:
            return
        event_id = (response.json() or {}).get("event_id")
        if not event_id:
            return
        self.client.post(
            "/api/v1/offers/reward",
            data=json.dumps({"event_id": event_id, "reward": float(self.rng.random() < 0.1)}),
            headers=self.headers,
            name="POST /api/v1/offers/reward",
        )

    @task(3)
    def experiment_assign(self) -> None:
        self.client.post(
            f"/api/v1/experiments/{CONFIG['experiment']}/assign",
            data=json.dumps({"customer_id": self._customer()}),
            headers=self.headers,
            name="POST /api/v1/experiments/[key]/assign",
        )


class Marketer(FastHttpUser):
    """A marketer in the browser: logs in, then reads the dashboard and the lists."""

    weight = 1
    wait_time = WAIT

    def on_start(self) -> None:
        page = self.client.get("/accounts/login/", name="GET /accounts/login/")
        token = CSRF.search(page.text or "")
        with self.client.post(
            "/accounts/login/",
            data={
                "username": CONFIG["username"],
                "password": CONFIG["password"],
                "csrfmiddlewaretoken": token.group(1) if token else "",
            },
            headers={"Referer": f"{self.host}/accounts/login/"},
            name="POST /accounts/login/",
            allow_redirects=False,
            catch_response=True,
        ) as response:
            if response.status_code != 302:  # the form again: the login was refused
                response.failure(f"login refused (HTTP {response.status_code})")

    def _page(self, path: str) -> None:
        with self.client.get(
            path, name=f"GET {path} (page)", allow_redirects=False, catch_response=True
        ) as response:
            # a lost session shows up as a redirect to the login page, not as a 200
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")

    @task(2)
    def dashboard(self) -> None:
        self._page("/")

    @task(1)
    def segments(self) -> None:
        self._page("/segments/")

    @task(1)
    def campaigns(self) -> None:
        self._page("/campaigns/")
