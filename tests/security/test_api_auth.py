"""Every API operation of openapi.yaml: keys, scopes (read from the views), hashing, rate limits.

The scope an operation needs is read from its view's `required_scopes` the way HasScope
reads it, so a new endpoint is covered without touching this file.
"""

from pathlib import Path

import pytest
import yaml
from django.apps import apps
from django.db import models
from django.urls import resolve
from rest_framework.test import APIClient

from marketing.models import ApiKey, Scope
from marketing.services import api_key_create
from tests.helpers import start_of_rate_window

ROOT = Path(__file__).resolve().parents[2]
# Callable with any valid key: who am I.
UNSCOPED = {"GET /api/v1/me"}

pytestmark = pytest.mark.django_db


def _operations() -> list[tuple[str, str, bool]]:
    """(METHOD, concrete path, takes API keys) of every operation in the committed schema."""
    schema = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    found = []
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            schemes = {name for req in operation.get("security", []) for name in req}
            concrete = (
                path.replace("{key}", "exp").replace("{id}", "1").replace("{message_id}", "1")
            )
            found.append((method.upper(), concrete, "ApiKeyAuth" in schemes))
    return found


OPERATIONS = _operations()
IDS = [f"{method} {path}" for method, path, _ in OPERATIONS]


def required_scope(method: str, path: str) -> str | None:
    """The scope HasScope asks of a key for this request, read from the resolved view."""
    match = resolve(path, urlconf="marketing.api")  # the documented views (no hot paths)
    view_class = match.func.cls
    actions = getattr(match.func, "actions", None) or {}
    action = actions.get(method.lower())
    scopes = getattr(view_class, "required_scopes", {})
    for key in (f"{action}.{method}", action, method):
        if key in scopes:
            return scopes[key]
    return None


def _call(client: APIClient, method: str, path: str):
    return getattr(client, method.lower())(path, {}, format="json")


@pytest.mark.parametrize(("method", "path", "by_key"), OPERATIONS, ids=IDS)
@pytest.mark.parametrize("header", [None, "Api-Key not-a-key", "Api-Key ", "Bearer abc"])
def test_missing_or_invalid_key_is_refused(method, path, by_key, header):
    client = APIClient()
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)
    response = _call(client, method, path)
    assert response.status_code in (401, 403)
    assert response.json()["code"] in {"not_authenticated", "authentication_failed"}


def test_every_key_operation_but_whoami_needs_a_scope():
    unscoped = {
        f"{method} {path}"
        for method, path, by_key in OPERATIONS
        if by_key and required_scope(method, path) is None
    }
    assert unscoped == UNSCOPED
    assert {required_scope(m, p) for m, p, by_key in OPERATIONS if by_key} - {None} <= set(
        Scope.values
    )


@pytest.mark.parametrize(("method", "path", "by_key"), OPERATIONS, ids=IDS)
def test_a_key_with_every_scope_but_the_needed_one_is_403(method, path, by_key):
    needed = required_scope(method, path) if by_key else None
    if by_key and needed is None:
        pytest.skip("callable with any key (UNSCOPED)")
    _, raw = api_key_create(
        name="almost", scopes=[scope for scope in Scope.values if scope != needed]
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    response = _call(client, method, path)
    assert response.status_code == 403
    if by_key:
        assert response.json()["message"] == f"This API key lacks the scope '{needed}'."


def test_api_keys_are_stored_only_as_hashes():
    """No text column of any table holds the raw key or its secret part."""
    key, raw = api_key_create(name="hashed", scopes=["events:write"])
    secret = raw.split(".", 1)[1]
    assert key.hashed_key
    assert secret not in key.hashed_key
    assert ApiKey.objects.get_from_key(raw).pk == key.pk
    holders = []
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, models.CharField | models.TextField | models.JSONField):
                lookup = (
                    f"{field.name}__contains" if not isinstance(field, models.JSONField) else None
                )
                if lookup and model.objects.filter(**{lookup: secret}).exists():
                    holders.append(f"{model._meta.label}.{field.name}")
    assert holders == []


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("GET", "/api/v1/items", "recommendations:read"),
        ("POST", "/api/v1/experiments/exp/assign", "experiments:assign"),
    ],
)
def test_rate_limit_per_key_answers_429_with_retry_after(method, path, scope):
    """The per-key limit of the ordinary throttle and of the hot paths' counter throttle."""
    _, slow = api_key_create(name="slow", scopes=[scope], rate_limit="2/hour")
    _, other = api_key_create(name="other", scopes=[scope], rate_limit="2/hour")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {slow}")
    start_of_rate_window(3600)  # the counter throttle's fixed window
    codes = [_call(client, method, path).status_code for _ in range(3)]
    assert codes[:2] != [429, 429]
    assert codes[2] == 429
    limited = _call(client, method, path)
    assert limited.status_code == 429
    assert limited.json()["code"] == "throttled"
    assert 0 < int(limited["Retry-After"]) <= 3600
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {other}")
    assert _call(client, method, path).status_code != 429
