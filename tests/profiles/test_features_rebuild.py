import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command

from profiles.ingest import events_validate
from profiles.models import Customer, CustomerFeatures, Event, FeatureBacklog
from profiles.services import events_ingest, features_rebuild, features_update_pending
from recommender.models import Item

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def history(db):
    Item.objects.create(external_id="a", title="A", category="shoes")
    Item.objects.create(external_id="b", title="B", category="hats")
    payload = [
        {
            "event_id": str(uuid.uuid4()),
            "customer_id": f"c{i % 3}",
            "type": ["view", "add_to_cart", "purchase"][i % 3],
            "item_id": "ab"[i % 2],
            "value": 12.5 if i % 3 == 2 else None,
            "channel": "web",
            "timestamp": (T0 + timedelta(minutes=7 * i)).isoformat(),
        }
        for i in range(30)
    ]
    for start in range(0, 30, 10):
        events_ingest(rows=events_validate(payload[start : start + 10], now=T0))
        features_update_pending()


def test_incremental_features_agree_with_the_rebuild(history):
    report = features_rebuild(repair=False)
    assert (report.customers, report.events, report.drifted) == (3, 30, 0)


def test_rebuild_finds_and_repairs_drift(history):
    row = CustomerFeatures.objects.get(customer__external_id="c1")
    good = row.state
    row.state = {**good, "orders": 99}
    row.save()
    report = features_rebuild(repair=False)
    assert report.drifted == 1
    assert report.drift_fields == {"orders": 1}
    assert report.samples == [{"customer_pk": row.customer_id, "fields": ["orders"]}]
    features_rebuild(repair=True)
    row.refresh_from_db()
    assert row.state["orders"] == good["orders"]
    assert features_rebuild(repair=False).drifted == 0


def test_rebuild_fills_features_for_bulk_loaded_events_and_clears_the_backlog(db):
    customer = Customer.objects.create(external_id="bulk")
    Event.objects.create(customer=customer, type="purchase", value=3, occurred_at=T0)
    FeatureBacklog.objects.create(event_pk=Event.objects.get().pk)
    report = features_rebuild(repair=True)
    assert (report.customers, report.drifted) == (1, 1)
    assert FeatureBacklog.objects.count() == 0
    assert CustomerFeatures.objects.get(customer=customer).state["orders"] == 1


def test_rebuild_command_reports(history, capsys):
    call_command("rebuild_features", "--check-only")
    assert capsys.readouterr().out.strip() == "3 customers, 30 events, 0 with drift"
