"""Small helpers shared by tests."""

import time

import pytest
from rest_framework.test import APIClient

from marketing.services import api_key_create


def wait_for(predicate, *, timeout: float = 60.0, interval: float = 0.2):
    """Poll until predicate() is truthy; return its value, or fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout} s")


def api_key_client(*scopes: str, name: str = "automation") -> APIClient:
    """An API client authenticated by a new key with exactly these scopes."""
    _, raw = api_key_create(name=name, scopes=list(scopes))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    return client


def start_of_rate_window(seconds: int = 3600, *, margin: float = 30.0) -> None:
    """Sleep into the next fixed rate-limit window (`now // seconds`, as ApiKeyRateThrottle
    counts) when fewer than `margin` seconds are left in this one, so a test's calls and its
    read of the counter all fall into the same window."""
    left = seconds - time.time() % seconds
    if left < margin:
        time.sleep(left + 0.05)
