from decimal import Decimal

import pytest
from django.core.cache import caches
from django.test import override_settings

from profiles.consent import consent_set
from profiles.features import features_empty
from profiles.models import CustomerAlias, CustomerFeatures
from recommender import serving
from recommender.errors import NoPreviousVersionError
from recommender.models import Item, RecommendationList
from recommender.serving import ItemFilters, Source, recommend, similar
from recommender.serving_cache import breaker
from recommender.serving_services import (
    modelversion_activate,
    modelversion_rollback,
    recommendation_lists_store,
    similar_lists_store,
)
from tests.profiles.factories import CustomerFactory
from tests.recommender.factories import ItemFactory, ModelVersionFactory

URL = "/api/v1/customers/{}/recommendations"


@pytest.fixture(autouse=True)
def _fresh_serving_state():
    """The snapshot lives in process between calls; each test starts without one."""
    serving._local_drop()
    breaker.reset()
    yield
    serving._local_drop()
    breaker.reset()


@pytest.fixture
def catalog(db):
    """i1..i8: shoes i1-i4 (i4 out of stock), hats i5-i8 (i8 inactive); popular: i1..i8."""
    items = {}
    for n in range(1, 9):
        items[f"i{n}"] = ItemFactory(
            external_id=f"i{n}",
            title=f"Item {n}",
            category="shoes" if n <= 4 else "hats",
            brand="Acme" if n % 2 else "Zeta",
            price=Decimal(10 * n),
            in_stock=n != 4,
            is_active=n != 8,
            attributes={"color": ["red", "blue"] if n in (2, 6) else "green", "size": n},
        )
    popularity = ModelVersionFactory(
        algorithm="popularity",
        is_active=True,
        artifact={
            "item_ids": [f"i{n}" for n in range(1, 9)],
            "scores": [float(10 - n) for n in range(1, 9)],
        },
    )
    return items, popularity


def _customer(views=(), purchases=(), consent=True, external_id="c1"):
    customer = CustomerFactory(external_id=external_id)
    CustomerFeatures.objects.create(
        customer=customer,
        state={
            **features_empty(),
            "recent_views": list(views),
            "recent_purchases": list(purchases),
        },
    )
    if consent:
        consent_set(customer=customer, purpose="personalization", granted=True, source="api")
    return customer


def _hybrid(customer, ids, *, active=True):
    version = ModelVersionFactory(algorithm="hybrid", is_active=active)
    recommendation_lists_store(
        version=version,
        rows=[(customer.pk, ids, [float(len(ids) - i) for i in range(len(ids))])],
    )
    return version


def _ids(result):
    return [i.item_id for i in result.items]


def test_unknown_customer_gets_the_popular_list(catalog):
    _, popularity = catalog

    result = recommend(customer_external_id="nobody", k=3)

    assert _ids(result) == ["i1", "i2", "i3"]
    assert [i.source for i in result.items] == [Source.POPULAR] * 3
    assert [i.score for i in result.items] == [9.0, 8.0, 7.0]
    assert (result.model_version_id, result.model_version_algorithm) == (
        popularity.pk,
        "popularity",
    )
    assert (result.strategy_used, result.personalized) == ("popular", False)


def test_personalized_list_is_served_with_consent_and_filled_from_popular(catalog):
    customer = _customer()
    hybrid = _hybrid(customer, ["i7", "i5"])

    result = recommend(customer_external_id="c1", k=4)

    assert _ids(result) == ["i7", "i5", "i1", "i2"]
    assert [i.source for i in result.items] == [
        "personalized",
        "personalized",
        "popular",
        "popular",
    ]
    assert (result.model_version_id, result.model_version_algorithm) == (hybrid.pk, "hybrid")
    assert (result.strategy_used, result.personalized) == ("personalized", True)


def test_alias_resolves_to_the_customer(catalog):
    customer = _customer()
    CustomerAlias.objects.create(alias="anon-9", customer=customer)
    _hybrid(customer, ["i6"])

    assert _ids(recommend(customer_external_id="anon-9", k=1)) == ["i6"]


@pytest.mark.parametrize("withdrawn", [False, True])
def test_without_personalization_consent_only_popular_items(catalog, withdrawn):
    customer = _customer(purchases=["i1"], consent=withdrawn)
    if withdrawn:
        consent_set(customer=customer, purpose="personalization", granted=False, source="ui")
    _hybrid(customer, ["i7", "i5"])

    result = recommend(customer_external_id="c1", k=3)

    # No personal data is used at all: not even the purchase exclusion.
    assert _ids(result) == ["i1", "i2", "i3"]
    assert (result.personalized, result.strategy_used) == (False, "popular")
    assert result.model_version_algorithm == "popularity"


def test_other_consents_do_not_allow_personalization(catalog):
    customer = _customer(consent=False)
    consent_set(customer=customer, purpose="marketing_email", granted=True, source="api")
    _hybrid(customer, ["i7"])

    assert recommend(customer_external_id="c1", k=1).personalized is False


@pytest.mark.parametrize(
    ("exclude", "expected"),
    [
        ((), ["i1", "i2", "i3", "i5"]),
        (("purchased",), ["i2", "i3", "i5", "i6"]),
        (("viewed",), ["i1", "i2", "i5", "i6"]),
        (("purchased", "viewed"), ["i2", "i5", "i6", "i7"]),
    ],
)
def test_exclusions_of_purchased_and_viewed_items(catalog, exclude, expected):
    _customer(views=["i3"], purchases=["i1"])
    # The ranking reaches i4 (out of stock but not filtered here) only after i1-i3.
    Item.objects.filter(external_id="i4").update(is_active=False)

    assert _ids(recommend(customer_external_id="c1", k=4, exclude=exclude)) == expected


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (ItemFilters(category="hats"), ["i5", "i6", "i7"]),
        (ItemFilters(category="SHOES", in_stock=True), ["i1", "i2", "i3"]),
        (ItemFilters(brand="zeta"), ["i2", "i4", "i6"]),
        (ItemFilters(in_stock=False), ["i4"]),
        (ItemFilters(price_min=Decimal(30), price_max=Decimal(50)), ["i3", "i4", "i5"]),
        (ItemFilters(attributes={"color": "blue"}), ["i2", "i6"]),
        (ItemFilters(attributes={"color": "green", "size": "5"}), ["i5"]),
        (ItemFilters(attributes={"material": "wool"}), []),
    ],
)
def test_filters_on_catalog_attributes(catalog, filters, expected):
    _hybrid(_customer(), ["i7", "i6", "i2", "i1"])

    result = recommend(customer_external_id="c1", k=10, filters=filters)

    assert sorted(_ids(result)) == expected


def test_inactive_items_are_never_returned(catalog):
    customer = _customer()
    _hybrid(customer, ["i8", "i7"])

    result = recommend(customer_external_id="c1", k=10)

    assert _ids(result) == ["i7", "i1", "i2", "i3", "i4", "i5", "i6"]
    assert "i8" not in _ids(similar(item_external_id="i5", k=10))


def test_no_popularity_version_falls_back_to_newest_active_items(db):
    for n in range(1, 4):
        ItemFactory(external_id=f"n{n}", is_active=n != 3)

    result = recommend(customer_external_id="nobody", k=5)

    assert _ids(result) == ["n2", "n1"]
    assert (result.model_version_id, result.strategy_used) == (None, "newest")
    assert [i.source for i in result.items] == ["newest", "newest"]


def test_because_you_viewed_merges_similar_lists_by_recency(catalog):
    items, _ = catalog
    _customer(views=["i1", "i5"])  # i1 is the last viewed
    _hybrid(CustomerFactory(), ["i2"])
    item_item = ModelVersionFactory(algorithm="item_item", is_active=True)
    similar_lists_store(
        version=item_item,
        rows=[
            (items["i1"].pk, ["i2", "i3", "i5"], [0.5, 0.4, 0.9]),
            (items["i5"].pk, ["i6", "i3"], [0.9, 0.8]),
        ],
    )

    result = recommend(customer_external_id="c1", k=4, strategy="because_you_viewed")

    # i3: 0.4 + 0.5 * 0.8 = 0.8; i2: 0.5; i6: 0.5 * 0.9 = 0.45; the viewed i1, i5 are left out.
    assert [(i.item_id, i.score, i.source) for i in result.items] == [
        ("i3", 0.8, "because_you_viewed"),
        ("i2", 0.5, "because_you_viewed"),
        ("i6", 0.45, "because_you_viewed"),
        ("i4", 6.0, "popular"),
    ]
    assert (result.model_version_id, result.strategy_used) == (item_item.pk, "because_you_viewed")
    assert result.personalized is True


def test_customer_without_a_list_gets_related_items_of_recent_views(catalog):
    """A customer active only since the last training has no list yet: the default
    strategy uses what they viewed rather than the popular list."""
    items, _ = catalog
    _customer(views=["i1"])
    _hybrid(CustomerFactory(), ["i2"])  # the hybrid is served, but has no list for c1
    item_item = ModelVersionFactory(algorithm="item_item", is_active=True)
    similar_lists_store(version=item_item, rows=[(items["i1"].pk, ["i6", "i3"], [0.9, 0.8])])

    result = recommend(customer_external_id="c1", k=2)

    assert [(i.item_id, i.source) for i in result.items] == [
        ("i6", "because_you_viewed"),
        ("i3", "because_you_viewed"),
    ]
    assert (result.model_version_id, result.personalized) == (item_item.pk, True)


def test_because_you_viewed_without_views_is_popular(catalog):
    _customer(views=[])
    ModelVersionFactory(algorithm="item_item", is_active=True)

    result = recommend(customer_external_id="c1", k=2, strategy="because_you_viewed")

    assert (_ids(result), result.strategy_used, result.personalized) == (
        ["i1", "i2"],
        "popular",
        False,
    )


def test_similar_items_from_the_item_item_version(catalog):
    items, _ = catalog
    item_item = ModelVersionFactory(algorithm="item_item", is_active=True)
    similar_lists_store(
        version=item_item, rows=[(items["i1"].pk, ["i8", "i3", "i1", "i6"], [4, 3, 2, 1])]
    )

    result = similar(item_external_id="i1", k=3)

    assert [(i.item_id, i.source) for i in result.items] == [
        ("i3", "similar"),
        ("i6", "similar"),
        ("i2", "popular"),
    ]
    assert (result.model_version_id, result.strategy_used) == (item_item.pk, "similar")


def test_similar_items_without_a_model_are_popular_in_the_same_category(catalog):
    _, popularity = catalog

    result = similar(item_external_id="i6", k=5)

    assert _ids(result) == ["i5", "i7"]
    assert (result.model_version_id, result.strategy_used) == (popularity.pk, "popular")


def test_similar_items_of_an_unknown_item_raise_not_found(catalog):
    with pytest.raises(Item.DoesNotExist):
        similar(item_external_id="nope", k=5)


def test_activation_switches_the_served_version_and_invalidates_the_cache(
    catalog, django_capture_on_commit_callbacks
):
    customer = _customer()
    first = _hybrid(customer, ["i7"])
    second = _hybrid(customer, ["i6"], active=False)
    assert recommend(customer_external_id="c1", k=1).model_version_id == first.pk

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        modelversion_activate(version=second)

    assert len(callbacks) == 1
    result = recommend(customer_external_id="c1", k=1)
    assert (result.model_version_id, _ids(result)) == (second.pk, ["i6"])
    first.refresh_from_db()
    assert first.is_active is False


def test_rollback_reactivates_the_previous_ready_version(
    catalog, django_capture_on_commit_callbacks
):
    customer = _customer()
    older = _hybrid(customer, ["i7"], active=False)
    ModelVersionFactory(algorithm="hybrid", status="failed")
    current = _hybrid(customer, ["i6"])
    assert recommend(customer_external_id="c1", k=1).model_version_id == current.pk

    with django_capture_on_commit_callbacks(execute=True):
        restored = modelversion_rollback(algorithm="hybrid")

    assert restored.pk == older.pk
    assert recommend(customer_external_id="c1", k=1).model_version_id == older.pk
    with pytest.raises(NoPreviousVersionError):
        modelversion_rollback(algorithm="hybrid")


def test_storing_lists_again_replaces_them(catalog):
    customer = _customer()
    version = _hybrid(customer, ["i1", "i2"])

    stored = recommendation_lists_store(
        version=version, rows=[(customer.pk, [f"x{n}" for n in range(150)], [1.0] * 150)]
    )

    assert stored == 1
    row = RecommendationList.objects.get()
    assert (len(row.item_ids), row.item_ids[:2], len(row.scores)) == (100, ["x0", "x1"], 100)


def test_warm_cache_serves_with_one_query(catalog, django_assert_num_queries):
    _hybrid(_customer(views=["i2"], purchases=["i1"]), ["i7", "i5"])
    recommend(customer_external_id="c1", k=5)

    # The customer with their recent items and their consent.
    with django_assert_num_queries(1):
        result = recommend(customer_external_id="c1", k=5, exclude=("purchased", "viewed"))

    assert _ids(result) == ["i7", "i5", "i3", "i4", "i6"]


def test_api_returns_recommendations(catalog, storefront_client, django_assert_num_queries):
    customer = _customer()
    hybrid = _hybrid(customer, ["i7", "i5"])
    storefront_client.get(URL.format("c1"))

    with django_assert_num_queries(1):  # the customer and their consent (the key is cached)
        response = storefront_client.get(URL.format("c1"), {"k": 3, "context": "home"})

    assert response.status_code == 200
    assert response.json() == {
        "customer_id": "c1",
        "model_version": {"id": hybrid.pk, "algorithm": "hybrid"},
        "strategy": "personalized",
        "personalized": True,
        "context": "home",
        "items": [
            {
                "id": "i7",
                "title": "Item 7",
                "score": 2.0,
                "image_url": "",
                "deep_link": "",
                "price": "70.00",
                "category": "hats",
                "source": "personalized",
            },
            {
                "id": "i5",
                "title": "Item 5",
                "score": 1.0,
                "image_url": "",
                "deep_link": "",
                "price": "50.00",
                "category": "hats",
                "source": "personalized",
            },
            {
                "id": "i1",
                "title": "Item 1",
                "score": 9.0,
                "image_url": "",
                "deep_link": "",
                "price": "10.00",
                "category": "shoes",
                "source": "popular",
            },
        ],
    }


def test_api_filters_and_attribute_filters(catalog, storefront_client):
    _customer()

    response = storefront_client.get(
        URL.format("c1"), {"category": "hats", "attr.color": "blue", "exclude": ""}
    )

    assert response.status_code == 200
    assert [i["id"] for i in response.json()["items"]] == ["i6"]


@pytest.mark.parametrize(
    ("params", "fields"),
    [
        ({"k": 0}, ["k"]),
        ({"k": 101}, ["k"]),
        ({"exclude": "purchased,cart"}, ["exclude"]),
        ({"strategy": "magic"}, ["strategy"]),
        ({"price_min": "x", "in_stock": "maybe"}, ["in_stock", "price_min"]),
        ({"price_min": 50, "price_max": 10}, ["price_max"]),
        ({"attr.": "red"}, ["attr."]),
    ],
)
def test_api_invalid_parameters_are_400(catalog, storefront_client, params, fields):
    response = storefront_client.get(URL.format("c1"), params)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert sorted(response.json()["extra"]["fields"]) == fields


def test_api_needs_the_recommendations_scope(catalog, api_client):
    from marketing.services import api_key_create

    _, raw = api_key_create(name="events only", scopes=["events:write"])
    api_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")

    assert api_client.get(URL.format("c1")).status_code == 403
    assert api_client.get("/api/v1/items/i1/similar").status_code == 403


def test_api_similar_items(catalog, storefront_client):
    _, popularity = catalog

    response = storefront_client.get("/api/v1/items/i2/similar", {"k": 2})

    assert response.status_code == 200
    body = response.json()
    assert (body["item_id"], body["model_version"], body["strategy"]) == (
        "i2",
        {"id": popularity.pk, "algorithm": "popularity"},
        "popular",
    )
    assert [i["id"] for i in body["items"]] == ["i1", "i3"]
    assert storefront_client.get("/api/v1/items/nope/similar").status_code == 404


def test_customer_profile_route_still_works(catalog, storefront_client):
    _customer()

    assert storefront_client.get("/api/v1/customers/c1").status_code == 200


REDIS_DOWN = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
        "KEY_PREFIX": "down",
    }
}


def test_redis_down_still_answers_from_postgresql(catalog, storefront_client):
    customer = _customer()
    hybrid = _hybrid(customer, ["i7"])

    with override_settings(CACHES=REDIS_DOWN):
        with pytest.raises(Exception, match="Connection refused|Error"):
            caches["default"].get("probe")  # Redis really is unreachable
        breaker.reset()
        serving._local_drop()
        response = storefront_client.get(URL.format("c1"), {"k": 2})
        again = storefront_client.get(URL.format("c1"), {"k": 2})

    assert (response.status_code, again.status_code) == (200, 200)
    body = response.json()
    assert (body["model_version"]["id"], [i["id"] for i in body["items"]]) == (
        hybrid.pk,
        ["i7", "i1"],
    )
    assert again.json() == body


def test_catalog_page_filters_on_active_and_greys_inactive_items(marketer_client):
    ItemFactory(external_id="on", title="Shown")
    ItemFactory(external_id="off", title="Retired", is_active=False)

    everything = marketer_client.get("/catalog/").content.decode()
    inactive = marketer_client.get("/catalog/", {"is_active": "false"}).content.decode()
    active = marketer_client.get("/catalog/", {"is_active": "true"}).content.decode()

    assert ("Shown" in everything, "Retired" in everything) == (True, True)
    assert everything.count('class="inactive muted"') == 1
    assert ("Shown" in inactive, "Retired" in inactive) == (False, True)
    assert ("Shown" in active, "Retired" in active) == (True, False)


def test_api_rate_limit_is_shared_with_the_other_endpoints(catalog, api_client):
    from marketing.services import api_key_create

    _, raw = api_key_create(name="slow", scopes=["recommendations:read"], rate_limit="2/hour")
    api_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")

    statuses = [
        api_client.get("/api/v1/items").status_code,
        api_client.get(URL.format("c1")).status_code,
        api_client.get(URL.format("c1")).status_code,
    ]

    assert statuses == [200, 200, 429]
