"""Rule compilation checked against PostgreSQL: each rule's members, in both the set-based
form (counts, refresh) and the per-customer form (real-time evaluation)."""

import datetime as dt

import pytest
from django.utils import timezone

from profiles.models import Consent, Customer, CustomerFeatures, Segment, SegmentKind
from profiles.segments.compiler import segment_rules_q, segment_rules_queryset
from profiles.segments.errors import InvalidSegmentRulesError
from profiles.segments.selectors import segment_rules_clean
from profiles.segments.services import segment_members_set
from profiles.services import features_recompute
from tests.profiles.factories import (
    ChannelEndpointFactory,
    CustomerFactory,
    EventFactory,
    SegmentFactory,
)
from tests.recommender.factories import ItemFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def _ago(days: float) -> dt.datetime:
    return NOW - dt.timedelta(days=days)


@pytest.fixture
def store():
    ItemFactory(external_id="shoe-1", category="Shoes")
    ItemFactory(external_id="shoe-2", category="Shoes")
    ItemFactory(external_id="bag-1", category="Bags")
    alice = CustomerFactory(
        external_id="alice",
        country="DE",
        attributes={"tier": "gold", "points": 120},
        birth_date=dt.date(1990, 5, 1),
    )
    bob = CustomerFactory(
        external_id="bob", country="FR", attributes={"tier": "silver", "points": "80"}
    )
    carol = CustomerFactory(external_id="carol", country="DE", email="", phone="+4917000")
    erased = CustomerFactory(external_id="gone", country="DE", erased_at=_ago(1))
    for days, item, value in ((2, "shoe-1", 50), (5, "shoe-2", 70), (9, "shoe-1", 30)):
        EventFactory(
            customer=alice,
            type="purchase",
            item_external_id=item,
            value=value,
            occurred_at=_ago(days),
        )
    EventFactory(
        customer=alice, type="email_open", item_external_id="", channel="email", occurred_at=_ago(5)
    )
    EventFactory(
        customer=bob, type="purchase", item_external_id="shoe-1", value=20, occurred_at=_ago(10)
    )
    EventFactory(
        customer=bob, type="purchase", item_external_id="bag-1", value=200, occurred_at=_ago(45)
    )
    EventFactory(customer=bob, type="view", item_external_id="bag-1", occurred_at=_ago(1))
    EventFactory(
        customer=erased, type="purchase", item_external_id="shoe-1", value=10, occurred_at=_ago(3)
    )
    for customer in (alice, bob):
        CustomerFeatures.objects.create(
            customer=customer, state=features_recompute(customer=customer)
        )
    for customer in (alice, bob):
        Consent.objects.create(
            customer=customer, purpose="marketing_email", granted=True, source="api", changed_at=NOW
        )
    ChannelEndpointFactory(customer=alice, channel="email", address="alice@example.com")
    ChannelEndpointFactory(customer=bob, channel="email", address="bob@example.com", opted_out=True)
    ChannelEndpointFactory(customer=carol, channel="sms", address="+4917000")
    return {"alice": alice, "bob": bob, "carol": carol, "erased": erased}


def _group(*conditions, op="and"):
    return {"op": op, "conditions": list(conditions)}


def _names(rules) -> set[str]:
    clean = segment_rules_clean(rules)
    members = set(segment_rules_queryset(clean, now=NOW).values_list("external_id", flat=True))
    # The per-customer form, used by real-time evaluation, must agree with the set form.
    correlated = set(
        Customer.objects.filter(erased_at__isnull=True)
        .filter(segment_rules_q(clean, now=NOW, correlated=True))
        .values_list("external_id", flat=True)
    )
    assert correlated == members
    return members


PURCHASE_SHOES_2_IN_30 = {
    "kind": "event",
    "event_type": "purchase",
    "category": "Shoes",
    "within_days": 30,
    "op": "gte",
    "value": 2,
}
NO_EMAIL_OPEN_60 = {
    "kind": "event",
    "event_type": "email_open",
    "within_days": 60,
    "op": "eq",
    "value": 0,
}


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        (
            _group({"kind": "profile", "field": "country", "op": "eq", "value": "DE"}),
            {"alice", "carol"},
        ),
        (_group({"kind": "profile", "field": "country", "op": "neq", "value": "DE"}), {"bob"}),
        (_group({"kind": "profile", "field": "country", "op": "in", "value": "FR, AT"}), {"bob"}),
        (
            _group({"kind": "profile", "field": "email", "op": "eq", "value": "ALICE@example.com"}),
            {"alice"},
        ),
        (
            _group({"kind": "profile", "field": "email", "op": "contains", "value": "ALICE"}),
            {"alice"},
        ),
        (_group({"kind": "profile", "field": "email", "op": "not_exists"}), {"carol"}),
        (
            _group(
                {"kind": "profile", "field": "birth_date", "op": "before", "value": "2000-01-01"}
            ),
            {"alice"},
        ),
        (_group({"kind": "profile", "field": "birth_date", "op": "exists"}), {"alice"}),
        (
            _group({"kind": "profile", "field": "attributes.tier", "op": "eq", "value": "gold"}),
            {"alice"},
        ),
        (
            _group({"kind": "profile", "field": "attributes.tier", "op": "neq", "value": "gold"}),
            {"bob", "carol"},
        ),
        (
            _group({"kind": "profile", "field": "attributes.points", "op": "gte", "value": "100"}),
            {"alice"},
        ),
        # "80" is stored as text: still compared as a number.
        (
            _group(
                {
                    "kind": "profile",
                    "field": "attributes.points",
                    "op": "between",
                    "value": [50, 90],
                }
            ),
            {"bob"},
        ),
        (
            _group({"kind": "profile", "field": "attributes.points", "op": "eq", "value": 80}),
            {"bob"},
        ),
        (_group({"kind": "profile", "field": "attributes.tier", "op": "exists"}), {"alice", "bob"}),
        (
            _group(
                {"kind": "profile", "field": "attributes.tier", "op": "contains", "value": "ILV"}
            ),
            {"bob"},
        ),
        (
            _group({"kind": "feature", "field": "revenue", "op": "gte", "value": 150}),
            {"alice", "bob"},
        ),
        (
            _group({"kind": "feature", "field": "revenue", "op": "lt", "value": 160}),
            {"alice", "carol"},
        ),
        (_group({"kind": "feature", "field": "orders", "op": "eq", "value": 3}), {"alice"}),
        (
            _group({"kind": "feature", "field": "average_order_value", "op": "gt", "value": 60}),
            {"bob"},
        ),
        (
            _group({"kind": "feature", "field": "last_purchase", "op": "in_last_days", "value": 7}),
            {"alice"},
        ),
        (
            _group({"kind": "feature", "field": "last_seen", "op": "not_in_last_days", "value": 3}),
            {"carol"},
        ),
        (
            _group(
                {"kind": "feature", "field": "affinity", "category": "Bags", "op": "gt", "value": 0}
            ),
            {"bob"},
        ),
        (_group({"kind": "feature", "field": "rfm_monetary", "op": "eq", "value": 5}), {"bob"}),
        (_group(PURCHASE_SHOES_2_IN_30), {"alice"}),
        (_group({**PURCHASE_SHOES_2_IN_30, "op": "lte", "value": 1}), {"bob", "carol"}),
        (_group({**PURCHASE_SHOES_2_IN_30, "op": "eq", "value": 1}), {"bob"}),
        (_group({**PURCHASE_SHOES_2_IN_30, "op": "lt", "value": 1}), {"carol"}),
        (_group({**PURCHASE_SHOES_2_IN_30, "op": "gt", "value": 2}), {"alice"}),
        (
            _group({"kind": "event", "event_type": "purchase", "op": "gte", "value": 1}),
            {"alice", "bob"},
        ),
        (
            _group(
                {
                    "kind": "event",
                    "event_type": "purchase",
                    "aggregate": "sum",
                    "op": "gte",
                    "value": 200,
                }
            ),
            {"bob"},
        ),
        (
            _group(
                {
                    "kind": "event",
                    "event_type": "purchase",
                    "aggregate": "sum",
                    "op": "lt",
                    "value": 200,
                    "within_days": 30,
                }
            ),
            {"alice", "bob", "carol"},
        ),
        (_group({"kind": "event", "event_type": "purchase", "item": "bag-1"}), {"bob"}),
        (_group(NO_EMAIL_OPEN_60), {"bob", "carol"}),
        (
            _group({"kind": "consent", "purpose": "marketing_email", "op": "granted"}),
            {"alice", "bob"},
        ),
        (_group({"kind": "consent", "purpose": "marketing_email", "op": "not_granted"}), {"carol"}),
        (_group({"kind": "reachable", "channel": "email", "op": "is"}), {"alice"}),
        (_group({"kind": "reachable", "channel": "sms", "op": "is"}), set()),
        (_group({"kind": "reachable", "channel": "email", "op": "is_not"}), {"bob", "carol"}),
        # Nested AND / OR.
        (
            _group(
                {"kind": "profile", "field": "country", "op": "eq", "value": "DE"},
                _group(PURCHASE_SHOES_2_IN_30, NO_EMAIL_OPEN_60, op="or"),
            ),
            {"alice", "carol"},
        ),
        (_group(PURCHASE_SHOES_2_IN_30, NO_EMAIL_OPEN_60, op="or"), {"alice", "bob", "carol"}),
        (_group(PURCHASE_SHOES_2_IN_30, NO_EMAIL_OPEN_60), set()),
    ],
)
def test_rule_selects_exactly_its_members(store, rules, expected):
    assert _names(rules) == expected


def test_erased_customers_are_never_members(store):
    assert "gone" not in _names(_group({"kind": "event", "event_type": "purchase"}))


def test_membership_of_rule_and_list_segments(store):
    germans = SegmentFactory(
        name="Germans",
        rules=_group({"kind": "profile", "field": "country", "op": "eq", "value": "DE"}),
    )
    listed = SegmentFactory(name="Listed", kind=SegmentKind.IMPORTED)
    segment_members_set(segment=listed, customer_ids=[store["bob"].pk, store["carol"].pk])
    assert _names(_group({"kind": "segment", "segment": germans.pk, "op": "in"})) == {
        "alice",
        "carol",
    }
    assert _names(_group({"kind": "segment", "segment": listed.pk, "op": "not_in"})) == {"alice"}
    both = _group(
        {"kind": "segment", "segment": germans.pk}, {"kind": "segment", "segment": listed.pk}
    )
    assert _names(both) == {"carol"}


def test_three_condition_behavioural_segment_is_counted_in_one_query(
    store, django_assert_num_queries
):
    rules = segment_rules_clean(
        _group(
            PURCHASE_SHOES_2_IN_30,
            {**NO_EMAIL_OPEN_60, "op": "gte", "value": 1},
            {"kind": "feature", "field": "revenue", "op": "gte", "value": 100},
        )
    )
    qs = segment_rules_queryset(rules, now=NOW)
    with django_assert_num_queries(1):
        assert qs.count() == 1


@pytest.mark.parametrize(
    ("rules", "errors"),
    [
        (
            {"op": "and", "conditions": []},
            {"": "This group is empty: add a condition or remove the group."},
        ),
        (
            _group({"kind": "profile", "field": "shoe_size", "op": "eq", "value": 1}),
            {"conditions.0": "Unknown profile field 'shoe_size'"},
        ),
        (
            _group(
                {"kind": "profile", "field": "country", "op": "eq", "value": "DE"},
                _group({"kind": "feature", "field": "revenue", "op": "gte", "value": "lots"}),
            ),
            {"conditions.1.conditions.0": "revenue: 'lots' is not a number."},
        ),
        (_group(_group(op="or")), {"conditions.0": "This group is empty"}),
        (
            _group({"kind": "event", "event_type": "purchase", "category": "Hats"}),
            {"conditions.0": "Unknown category 'Hats'"},
        ),
        (
            _group({"kind": "event", "event_type": "teleport"}),
            {"conditions.0": "Unknown event type 'teleport'"},
        ),
        (
            _group({"kind": "event", "event_type": "purchase", "within_days": 0}),
            {"conditions.0": "within_days must be between 1 and 3650."},
        ),
        (
            _group({"kind": "profile", "field": "country", "op": "gt", "value": "DE"}),
            {"conditions.0": "'country' cannot be compared with 'gt'"},
        ),
        (
            _group({"kind": "feature", "field": "revenue", "op": "between", "value": [5, 1]}),
            {"conditions.0": "revenue: the low end 5 is above the high end 1."},
        ),
        (
            _group({"kind": "segment", "segment": 987654}),
            {"conditions.0": "Segment 987654 does not exist."},
        ),
        (
            _group({"kind": "profile", "field": "attributes.a__b", "op": "exists"}),
            {"conditions.0": "Unknown profile field 'attributes.a__b'"},
        ),
        ("not a rule", {"": "A rule must be a group"}),
    ],
)
def test_invalid_rules_name_the_offending_condition(store, rules, errors):
    with pytest.raises(InvalidSegmentRulesError) as info:
        segment_rules_clean(rules)
    found = info.value.extra["errors"]
    assert set(found) == set(errors)
    for path, message in errors.items():
        assert found[path].startswith(message)


def test_segments_referring_to_each_other_in_a_circle_are_refused(store):
    a = SegmentFactory(
        name="A", rules=_group({"kind": "feature", "field": "orders", "op": "gte", "value": 1})
    )
    b = SegmentFactory(name="B", rules=_group({"kind": "segment", "segment": a.pk}))
    with pytest.raises(InvalidSegmentRulesError) as info:
        segment_rules_clean(_group({"kind": "segment", "segment": b.pk}), segment_id=a.pk)
    assert "circle" in info.value.message
    with pytest.raises(InvalidSegmentRulesError):
        segment_rules_clean(_group({"kind": "segment", "segment": a.pk}), segment_id=a.pk)
    assert Segment.objects.get(pk=a.pk).rules["conditions"][0]["field"] == "orders"
