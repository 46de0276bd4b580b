import uuid

import pytest

from profiles.models import Customer, CustomerAlias, CustomerFeatures, Event, FeatureBacklog
from profiles.services import features_update_pending
from recommender.models import Item

URL = "/api/v1/events"


def _event(**overrides):
    event = {
        "event_id": str(uuid.uuid4()),
        "customer_id": "c-1",
        "type": "view",
        "item_id": "sku-1",
        "timestamp": "2026-05-01T12:00:00Z",
    }
    event.update(overrides)
    return event


@pytest.fixture
def catalog(db):
    Item.objects.create(external_id="sku-1", title="Shoe", category="shoes")
    Item.objects.create(external_id="sku-2", title="Hat", category="hats")


def test_single_event_is_stored_and_creates_an_anonymous_profile(storefront_client, catalog):
    response = storefront_client.post(URL, _event(), format="json")
    assert response.status_code == 202
    assert response.json() == {"accepted": 1, "duplicates": 0}
    customer = Customer.objects.get(external_id="c-1")
    assert customer.is_anonymous is True
    event = Event.objects.get()
    assert (event.customer_id, event.type, event.item_external_id) == (customer.pk, "view", "sku-1")
    assert event.occurred_at.isoformat() == "2026-05-01T12:00:00+00:00"


def test_resending_a_batch_stores_each_event_once(storefront_client, catalog):
    batch = [_event(), _event(type="purchase", value=30), _event(customer_id="c-2")]
    first = storefront_client.post(URL, batch, format="json")
    again = storefront_client.post(URL, [*batch, _event()], format="json")
    assert first.json() == {"accepted": 3, "duplicates": 0}
    assert again.json() == {"accepted": 1, "duplicates": 3}
    assert Event.objects.count() == 4
    assert FeatureBacklog.objects.count() == 4
    assert features_update_pending().events == 4
    assert FeatureBacklog.objects.count() == 0
    features = CustomerFeatures.objects.get(customer__external_id="c-1")
    assert features.events_applied == 3
    assert features.state["counts"] == {"view": 2, "purchase": 1}
    # A second run (a redelivered task) has nothing left to fold.
    assert features_update_pending().events == 0
    assert CustomerFeatures.objects.get(customer__external_id="c-1").events_applied == 3


def test_same_event_twice_in_one_batch_counts_once(storefront_client, catalog):
    event = _event()
    response = storefront_client.post(URL, [event, event], format="json")
    assert response.json() == {"accepted": 1, "duplicates": 1}
    assert Event.objects.count() == 1


def test_invalid_row_refuses_the_whole_batch(storefront_client, catalog):
    batch = [
        _event(),
        _event(type="teleport", event_id="nope"),
        _event(value="abc", extra=1),
        _event(),
    ]
    response = storefront_client.post(URL, batch, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert body["extra"]["rows"] == {
        "1": {"event_id": ["Must be a valid UUID."], "type": ['"teleport" is not a valid choice.']},
        "2": {"extra": ["Unknown field."], "value": ["A valid number is required."]},
    }
    assert Event.objects.count() == 0
    assert Customer.objects.count() == 0


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "The batch is empty."),
        ("hello", "Send one event object or a list of event objects."),
    ],
)
def test_bad_batch_shapes(storefront_client, payload, message):
    response = storefront_client.post(URL, payload, format="json")
    assert response.status_code == 400
    assert response.json()["extra"]["non_field_errors"] == [message]


def test_batch_over_1000_is_refused(storefront_client, db):
    response = storefront_client.post(URL, [_event() for _ in range(1001)], format="json")
    assert response.status_code == 400
    assert response.json()["extra"]["non_field_errors"] == [
        "At most 1000 events per request; got 1001."
    ]
    assert Event.objects.count() == 0


def test_events_need_the_events_scope(api_client, db):
    from marketing.services import api_key_create

    _, raw = api_key_create(name="reader", scopes=["recommendations:read"])
    api_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    response = api_client.post(URL, _event(), format="json")
    assert response.status_code == 403
    assert Event.objects.count() == 0


def test_profile_api_returns_features(storefront_client, catalog):
    batch = [
        _event(type="view", item_id="sku-1", timestamp="2026-05-01T12:00:00Z"),
        _event(type="purchase", item_id="sku-1", value=40, timestamp="2026-05-01T12:05:00Z"),
        _event(type="view", item_id="sku-2", channel="app", timestamp="2026-05-01T12:06:00Z"),
    ]
    storefront_client.post(URL, batch, format="json")
    features_update_pending()
    response = storefront_client.get("/api/v1/customers/c-1")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == "c-1"
    features = body["features"]
    assert features["event_counts"] == {"view": 2, "purchase": 1}
    assert features["frequency"] == 1
    assert features["monetary"] == 40.0
    assert features["average_order_value"] == 40.0
    assert features["sessions"] == 1
    assert features["recent_views"] == ["sku-2", "sku-1"]
    assert features["recent_purchases"] == ["sku-1"]
    assert list(features["category_affinity"]) == ["shoes", "hats"]
    assert features["preferred_channel"] == "app"


def test_alias_merges_the_anonymous_history(storefront_client, catalog):
    storefront_client.post(
        URL,
        [
            _event(customer_id="anon-9", type="view"),
            _event(customer_id="anon-9", type="add_to_cart"),
            _event(customer_id="known-1", type="purchase", value=10),
        ],
        format="json",
    )
    features_update_pending()
    Customer.objects.filter(external_id="known-1").update(is_anonymous=False)
    response = storefront_client.post(
        "/api/v1/customers/known-1/aliases", {"alias": "anon-9"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["aliases"] == ["anon-9"]
    assert response.json()["features"]["event_counts"] == {
        "view": 1,
        "add_to_cart": 1,
        "purchase": 1,
    }
    assert not Customer.objects.filter(external_id="anon-9").exists()
    # Later events sent with the alias land on the known customer.
    storefront_client.post(URL, _event(customer_id="anon-9", type="click"), format="json")
    features_update_pending()
    known = Customer.objects.get(external_id="known-1")
    assert known.events.count() == 4
    assert CustomerFeatures.objects.get(customer=known).state["counts"]["click"] == 1
    assert storefront_client.get("/api/v1/customers/anon-9").json()["id"] == "known-1"


def test_alias_of_another_known_customer_is_a_conflict(storefront_client, catalog):
    a = Customer.objects.create(external_id="a")
    Customer.objects.create(external_id="b")
    CustomerAlias.objects.create(alias="shared", customer=a)
    conflict = storefront_client.post(
        "/api/v1/customers/b/aliases", {"alias": "shared"}, format="json"
    )
    assert conflict.status_code == 409
    assert conflict.json()["code"] == "alias_conflict"
    known = storefront_client.post("/api/v1/customers/b/aliases", {"alias": "a"}, format="json")
    assert known.status_code == 409
    assert Customer.objects.filter(external_id__in=["a", "b"]).count() == 2


def test_unknown_customer_is_404(storefront_client, db):
    assert storefront_client.get("/api/v1/customers/ghost").status_code == 404


def test_alias_merge_drops_queued_events_it_already_counted(storefront_client, catalog):
    storefront_client.post(
        URL,
        [_event(customer_id="anon-1"), _event(customer_id="known-2", type="purchase", value=5)],
        format="json",
    )
    Customer.objects.filter(external_id="known-2").update(is_anonymous=False)
    storefront_client.post("/api/v1/customers/known-2/aliases", {"alias": "anon-1"}, format="json")
    assert FeatureBacklog.objects.count() == 0
    assert features_update_pending().events == 0
    features = CustomerFeatures.objects.get(customer__external_id="known-2")
    assert features.state["counts"] == {"view": 1, "purchase": 1}
    assert features.events_applied == 2


def test_ingest_wakes_the_features_consumer_after_commit(
    storefront_client, catalog, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        storefront_client.post(URL, _event(), format="json")
    names = [c.__name__ for c in callbacks]
    # The features consumer, then the hooks other apps registered (their order is the apps').
    assert names[0] == "features_update_schedule"
    assert {"rollup_events_consume_schedule", "journeys_consume_schedule"} <= set(names[1:])
    with django_capture_on_commit_callbacks() as callbacks:
        storefront_client.post(
            URL, _event(event_id=str(Event.objects.get().event_id)), format="json"
        )
    assert callbacks == []


def test_identify_creates_then_updates_a_known_customer(storefront_client, db):
    url = "/api/v1/customers/u-77"
    created = storefront_client.put(
        url,
        {
            "email": "u77@example.com",
            "first_name": "Uma",
            "country": "DE",
            "timezone": "Europe/Berlin",
            "attributes": {"tier": "gold", "pets": 2},
            "endpoints": [{"channel": "email", "address": "u77@example.com"}],
        },
        format="json",
    )
    assert created.status_code == 201
    body = created.json()
    assert (body["email"], body["is_anonymous"], body["attributes"]) == (
        "u77@example.com",
        False,
        {"tier": "gold", "pets": 2},
    )
    updated = storefront_client.put(
        url,
        {
            "attributes": {"pets": None, "vip": True},
            "endpoints": [{"channel": "sms", "address": "+491234567"}],
        },
        format="json",
    )
    assert updated.status_code == 200
    assert updated.json()["attributes"] == {"tier": "gold", "vip": True}
    assert updated.json()["email"] == "u77@example.com"
    assert sorted(e["channel"] for e in updated.json()["endpoints"]) == ["email", "sms"]


def test_identify_rejects_bad_fields_and_changes_nothing(storefront_client, db):
    Customer.objects.create(external_id="u-78", email="keep@example.com")
    response = storefront_client.put(
        "/api/v1/customers/u-78",
        {"email": "not-an-email", "country": "Germany", "timezone": "Mars/Olympus"},
        format="json",
    )
    assert response.status_code == 400
    assert set(response.json()["extra"]["fields"]) == {"email", "country", "timezone"}
    assert Customer.objects.get(external_id="u-78").email == "keep@example.com"


def test_fast_validator_knows_the_same_types_and_channels_as_the_model():
    from profiles.ingest import EVENT_CHANNELS, EVENT_TYPES
    from profiles.models import EventChannel, EventType

    assert set(EventType.values) == EVENT_TYPES
    assert set(EventChannel.values) == EVENT_CHANNELS
