"""`manage.py simulate_store`: the generator's output lands in PostgreSQL, exactly."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count, Sum

from campaigns.models import Campaign, MessageTemplate
from campaigns.personalization import context_for_customers
from campaigns.templating import render, template_compile
from experiments.models import Experiment
from insights.models import Brand, Post
from marketing.simulation import EVENT_TYPES, EventChunk, StoreConfig, generate_events
from marketing.simulation.load import StoreNotEmptyError, store_simulate
from marketing.simulation.store import generate_truth
from profiles.models import (
    ChannelEndpoint,
    Consent,
    ConsentChange,
    Customer,
    CustomerFeatures,
    Event,
    Segment,
)
from profiles.segments.compiler import segment_rules_queryset
from profiles.segments.selectors import segment_rules_clean
from profiles.services import features_rebuild
from recommender.models import Item, Offer

ARGS = ["--customers", "200", "--items", "50", "--days", "20", "--seed", "5"]
CONFIG = StoreConfig(customers=200, items=50, days=20, seed=5)


def _simulate(*extra: str) -> str:
    out = StringIO()
    call_command("simulate_store", *ARGS, *extra, stdout=out)
    return out.getvalue()


def _snapshot() -> dict:
    return {
        "customers": Customer.objects.count(),
        "items": Item.objects.count(),
        "endpoints": ChannelEndpoint.objects.count(),
        "events": Event.objects.count(),
        "event_ids": set(Event.objects.values_list("event_id", flat=True)),
        "offers": Offer.objects.count(),
        "segments": Segment.objects.count(),
        "campaigns": Campaign.objects.count(),
        "posts": Post.objects.count(),
    }


@pytest.fixture(scope="module")
def expected():
    truth = generate_truth(CONFIG)
    events = EventChunk.concat(list(generate_events(truth)))
    return truth, events


@pytest.mark.django_db
def test_simulate_store_writes_what_the_generator_produces(expected):
    truth, events = expected
    output = _simulate()

    assert "Simulated store loaded in" in output
    assert f"events={len(events):,}" in output
    assert Customer.objects.count() == 200
    assert Item.objects.count() == 50
    assert ChannelEndpoint.objects.count() == int(truth.has_endpoint.sum())
    assert ChannelEndpoint.objects.filter(opted_out=True).count() == int(truth.opted_out.sum())
    assert Event.objects.count() == len(events)
    by_type = dict(Event.objects.values_list("type").annotate(n=Count("pk")))
    expected_types = np.bincount(events.type, minlength=len(EVENT_TYPES))
    assert by_type == {t: int(n) for t, n in zip(EVENT_TYPES, expected_types, strict=True) if n}
    assert set(Event.objects.values_list("event_id", flat=True)) == {
        uuid.UUID(bytes=bytes(row)) for row in events.event_id
    }
    purchases = Event.objects.filter(type="purchase").aggregate(total=Sum("value"))["total"]
    purchase = events.type == EVENT_TYPES.index("purchase")
    assert purchases == sum(Decimal(f"{v:.2f}") for v in events.value[purchase].tolist())
    assert Event.objects.filter(campaign_id__isnull=False).count() == int(
        (events.campaign >= 0).sum()
    )

    # One row of each kind, field by field.
    first = Customer.objects.get(external_id="c0000001")
    signup = datetime.fromtimestamp(int(truth.signup_us[0]) / 1e6, tz=UTC)
    assert (first.created_at, first.updated_at) == (signup, signup)
    assert first.email == (truth.endpoint_address(0, 0) if truth.has_endpoint[0, 0] else "")
    item = Item.objects.get(external_id="i000007")
    assert item.image_url == "https://img.example.com/items/i000007.jpg"
    assert item.deep_link == "shop://item/i000007"
    assert item.price == Decimal(f"{truth.item_price[6]:.2f}")
    assert item.in_stock is bool(truth.item_in_stock[6])
    assert item.created_at == datetime.fromtimestamp(int(truth.item_release_us[6]) / 1e6, tz=UTC)
    k = int(np.flatnonzero(events.type == EVENT_TYPES.index("offer_click"))[0])
    offer_click = Event.objects.get(event_id=uuid.UUID(bytes=bytes(events.event_id[k])))
    assert offer_click.customer.external_id == truth.customer_external_ids[events.customer[k]]
    assert offer_click.item_external_id == truth.item_external_ids[events.item[k]]
    assert offer_click.properties == {"offer": offer_click.item_external_id}
    assert offer_click.received_at == offer_click.occurred_at
    assert offer_click.occurred_at == datetime.fromtimestamp(events.occurred_at[k] / 1e6, tz=UTC)
    assert Event.objects.filter(type="view").exclude(properties={}).count() == 0


@pytest.mark.django_db
def test_demo_objects_make_the_pages_non_empty(expected):
    truth, _ = expected
    _simulate()

    offers = list(Offer.objects.order_by("pk"))
    assert [o.item.external_id for o in offers] == [
        truth.item_external_ids[i] for i in truth.offer_items
    ]
    assert [o.discount_percent for o in offers] == [Decimal(d) for d in (10, 15, 20, 25, 30)]
    assert sorted(Segment.objects.values_list("name", "kind")) == [
        ("Big spenders", "rules"),
        ("Electronics fans reachable by email", "rules"),
        ("Email engaged", "rules"),
        ("Lapsed browsers", "rules"),
    ]
    # The demo's rules are valid as stored, and refreshing them finds members.
    for segment in Segment.objects.all():
        assert segment_rules_clean(segment.rules) == segment.rules
    call_command("refresh_segments", stdout=StringIO())
    sizes = dict(Segment.objects.values_list("name", "member_count"))
    assert any(sizes.values()), sizes
    for segment in Segment.objects.all():
        assert segment.member_count == segment_rules_queryset(segment.rules).count()
    assert MessageTemplate.objects.count() == 2
    # The demo's templates render, whole, for a simulated customer.
    customer = Customer.objects.order_by("pk").first()
    context = context_for_customers([customer])[customer.pk]
    for template in MessageTemplate.objects.all():
        message = render(template_compile(template), context)
        assert customer.first_name in (message.subject or message.text)
    assert sorted(Campaign.objects.values_list("name", "status")) == [
        ("Flash sale", "draft"),
        ("Weekly picks", "draft"),
    ]
    experiment = Experiment.objects.get()
    assert experiment.status == "running"
    assert list(experiment.variants.values_list("name", "is_control")) == [
        ("popular", True),
        ("personalised", False),
    ]
    assert sorted(Brand.objects.values_list("name", "is_own")) == [
        ("Acme Store", True),
        ("Globex Mart", False),
    ]
    assert Post.objects.count() == 30
    # Through posts_ingest: every demo post names its brand, so each has a mention of it,
    # and each is scored.
    assert Post.objects.filter(mentions__isnull=True).count() == 0
    assert Post.objects.exclude(sentiment_label="").count() == 30
    for post in Post.objects.prefetch_related("mentions__brand"):
        assert {m.brand.name for m in post.mentions.all()} & {"Acme Store", "Globex Mart"}


@pytest.mark.django_db
def test_second_run_without_reset_fails_and_changes_nothing():
    _simulate()
    before = _snapshot()

    with pytest.raises(CommandError, match="already has 200 customers and 50 items"):
        _simulate()
    with pytest.raises(StoreNotEmptyError) as excinfo:
        store_simulate(config=StoreConfig(customers=10, items=10, days=3), reset=False)

    assert excinfo.value.code == "simulated_store_not_empty"
    assert _snapshot() == before


@pytest.mark.django_db
def test_reset_reloads_the_same_store_without_duplicating_demo_objects():
    _simulate()
    before = _snapshot()
    user_offer = Offer.objects.create(name="Hand-made", item=Item.objects.first())

    output = _simulate("--reset")

    assert "Simulated store loaded" in output
    assert _snapshot() == {**before, "offers": before["offers"] + 1}
    user_offer.refresh_from_db()
    assert user_offer.item is None  # its item went away with the old catalog: SET_NULL


@pytest.mark.django_db
def test_reset_with_a_different_seed_replaces_the_store(expected):
    _simulate()
    call_command(
        "simulate_store", "--customers", "30", "--items", "10", "--days", "5", "--reset",
        stdout=StringIO(),
    )  # fmt: skip
    assert Customer.objects.count() == 30
    assert Item.objects.count() == 10
    assert Offer.objects.count() == 5
    assert Offer.objects.filter(item__isnull=True).count() == 0


@pytest.mark.django_db
def test_truth_out_writes_the_hidden_truth(tmp_path, expected):
    truth, _ = expected
    path = tmp_path / "truth.npz"
    _simulate("--truth-out", str(path))
    with np.load(path) as data:
        assert np.array_equal(data["item_price"], truth.item_price)
        assert list(data["customer_external_ids"][:1]) == ["c0000001"]


@pytest.mark.django_db
def test_invalid_sizes_are_a_command_error():
    with pytest.raises(CommandError, match="customers >= 1"):
        call_command("simulate_store", "--customers", "0", stdout=StringIO())
    assert Customer.objects.count() == 0


@pytest.mark.django_db
def test_simulated_customers_get_consents_and_features():
    _simulate()
    endpoints = ChannelEndpoint.objects.filter(channel="email")
    granted = set(
        Consent.objects.filter(purpose="marketing_email", granted=True).values_list(
            "customer_id", flat=True
        )
    )
    assert granted == set(endpoints.filter(opted_out=False).values_list("customer_id", flat=True))
    withdrawn = Consent.objects.filter(purpose="marketing_email", granted=False)
    assert set(withdrawn.values_list("customer_id", flat=True)) == set(
        endpoints.filter(opted_out=True).values_list("customer_id", flat=True)
    )
    assert ConsentChange.objects.count() == Consent.objects.count()
    personalized = Consent.objects.filter(purpose="personalization", granted=True).count()
    assert 0.8 * Customer.objects.count() < personalized < Customer.objects.count()
    # Features are folded from the loaded history and agree with a fresh recompute.
    with_events = Customer.objects.filter(events__isnull=False).distinct().count()
    assert CustomerFeatures.objects.count() == with_events
    assert features_rebuild(repair=False).drifted == 0
