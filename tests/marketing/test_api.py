import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from marketing.common.errors import ApplicationError
from marketing.models import ApiKey
from marketing.services import api_key_create
from recommender.models import Item


@pytest.fixture
def items(db):
    return [
        Item.objects.create(external_id="sku-1", title="Red shoe", category="shoes", price="49.90"),
        Item.objects.create(external_id="sku-2", title="Blue hat", category="hats", price="19.00"),
    ]


def test_create_api_key_command_prints_key_once_and_stores_only_a_hash(db, capsys):
    call_command("create_api_key", "--name", "shop", "--scopes", "events:write,offers:read")
    out = capsys.readouterr().out.strip().splitlines()
    raw = out[-1]
    key = ApiKey.objects.get(name="shop")
    assert key.scopes == ["events:write", "offers:read"]
    assert raw.startswith(key.prefix + ".")
    assert raw not in key.hashed_key
    assert key.is_valid(raw)
    assert not ApiKey.objects.filter(hashed_key__contains=raw.split(".")[1]).exists()


def test_create_api_key_command_rejects_unknown_scope(db):
    with pytest.raises(CommandError, match="Unknown scope"):
        call_command("create_api_key", "--name", "shop", "--scopes", "events:write,root")
    assert ApiKey.objects.count() == 0


def test_api_key_create_rejects_bad_rate(db):
    with pytest.raises(ApplicationError) as exc:
        api_key_create(name="x", scopes=["events:write"], rate_limit="lots")
    assert exc.value.code == "invalid_rate"
    assert ApiKey.objects.count() == 0


def test_items_list_with_valid_key(storefront_client, items):
    response = storefront_client.get("/api/v1/items", {"category": "shoes"})
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    assert body["results"][0]["id"] == "sku-1"
    assert body["results"][0]["price"] == "49.90"


def test_item_retrieve_by_storefront_id(storefront_client, items):
    response = storefront_client.get("/api/v1/items/sku-2")
    assert response.status_code == 200
    assert response.json()["title"] == "Blue hat"


def test_missing_item_is_404_in_the_common_error_shape(storefront_client, items):
    response = storefront_client.get("/api/v1/items/nope")
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "Not found.", "extra": {}}


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "Authentication credentials were not provided."),
        ("Api-Key not-a-real-key", "Invalid API key."),
        ("Api-Key ", "Empty API key."),
    ],
)
def test_unauthenticated_requests_are_401(api_client, items, header, message):
    if header:
        api_client.credentials(HTTP_AUTHORIZATION=header)
    response = api_client.get("/api/v1/items")
    assert response.status_code == 401
    assert response.json()["message"] == message
    assert response["WWW-Authenticate"] == "Api-Key"


def test_revoked_key_is_refused(api_client, items, storefront_key):
    key, raw = storefront_key
    ApiKey.objects.filter(pk=key.pk).update(revoked=True)
    api_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    response = api_client.get("/api/v1/items")
    assert response.status_code == 401


def test_key_without_scope_is_403(api_client, items):
    _, raw = api_key_create(name="events-only", scopes=["events:write"])
    api_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    response = api_client.get("/api/v1/items")
    assert response.status_code == 403
    assert response.json()["message"] == "This API key lacks the scope 'recommendations:read'."


def test_whoami_reports_key_and_scopes(storefront_client, storefront_key):
    response = storefront_client.get("/api/v1/me")
    assert response.status_code == 200
    assert response.json() == {
        "kind": "api_key",
        "name": "storefront",
        "scopes": sorted(storefront_key[0].scopes),
        "rate_limit": "6000/min",
    }


def test_rate_limit_is_per_key_and_answers_429(api_client, items):
    _, slow = api_key_create(name="slow", scopes=["recommendations:read"], rate_limit="3/hour")
    _, other = api_key_create(name="other", scopes=["recommendations:read"], rate_limit="3/hour")
    api_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {slow}")
    codes = [api_client.get("/api/v1/items").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = api_client.get("/api/v1/items")
    assert limited.json()["code"] == "throttled"
    assert int(limited["Retry-After"]) > 0
    api_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {other}")
    assert api_client.get("/api/v1/items").status_code == 200


def test_logged_in_user_can_read_the_api(marketer_client, items):
    response = marketer_client.get("/api/v1/items")
    assert response.status_code == 200
    assert response.json()["count"] == 2


def test_schema_and_docs_are_served(client, marketer):
    schema = client.get(reverse("schema"))
    assert schema.status_code == 200
    text = schema.content.decode()
    assert "/api/v1/items" in text
    assert "ApiKeyAuth" in text
    client.force_login(marketer)
    docs = client.get(reverse("swagger-ui"))
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content


def test_revoking_a_key_in_the_admin_clears_the_verified_key_cache(api_client, items):
    key, raw = api_key_create(name="soon-revoked", scopes=["recommendations:read"])
    api_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    assert api_client.get("/api/v1/items").status_code == 200
    key.revoked = True
    key.save()
    assert api_client.get("/api/v1/items").status_code == 401


def test_rate_limit_lets_requests_through_when_redis_is_down(api_client, items):
    from django.core.cache import caches
    from django.test import override_settings

    _, raw = api_key_create(name="k", scopes=["recommendations:read"], rate_limit="1/hour")
    down = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }
    api_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    with override_settings(CACHES=down):
        with pytest.raises(Exception, match="Connection refused|Error"):
            caches["default"].get("probe")  # Redis really is unreachable
        codes = [api_client.get("/api/v1/items").status_code for _ in range(3)]
    assert codes == [200, 200, 200]
