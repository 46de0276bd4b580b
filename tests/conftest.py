import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache
from rest_framework.test import APIClient

from marketing.roles import ANALYST, MARKETER, roles_sync
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
