"""The segment condition on social posts: "mentioned a brand negatively in the last N days"
(kind `mention`): validation, compilation (set and per-customer forms), words and builder."""

import datetime as dt

import pytest
from django.utils import timezone
from pytest_django.asserts import assertContains

from profiles.forms_segment_builder import fields_to_rules, rules_to_fields
from profiles.models import Customer
from profiles.segment_builder_context import field_choices
from profiles.segments.compiler import segment_rules_q, segment_rules_queryset
from profiles.segments.rules import RuleCatalog, RulesInvalid, rules_describe, rules_validate
from profiles.segments.selectors import segment_rules_clean
from tests.insights.factories import BrandFactory, PostFactory
from tests.profiles.factories import CustomerFactory

NOW = timezone.now()
NEGATIVE_30 = {
    "kind": "mention",
    "sentiment": "negative",
    "within_days": 30,
    "op": "gte",
    "value": 1,
}


def _ago(days: float) -> dt.datetime:
    return NOW - dt.timedelta(days=days)


def _rules(*conditions) -> dict:
    return {"op": "and", "conditions": list(conditions)}


@pytest.fixture
def listening(db):
    acme = BrandFactory(name="Acme")
    globex = BrandFactory(name="Globex", is_own=False)
    ann, ben, cat, dan = (CustomerFactory(external_id=n) for n in ("ann", "ben", "cat", "dan"))
    PostFactory(customer=ann, brands=[acme], sentiment=-0.8, posted_at=_ago(2))
    PostFactory(customer=ann, brands=[acme, globex], sentiment=-0.6, posted_at=_ago(10))
    PostFactory(customer=ben, brands=[globex], sentiment=-0.7, posted_at=_ago(5))
    PostFactory(customer=ben, brands=[acme], sentiment=0.9, posted_at=_ago(1))
    PostFactory(customer=cat, brands=[acme], sentiment=-0.9, posted_at=_ago(45))
    PostFactory(customer=cat, sentiment=-0.9, posted_at=_ago(1))  # mentions no brand
    PostFactory(brands=[acme], sentiment=-0.9, posted_at=_ago(1))  # not a known customer
    return {"acme": acme, "globex": globex, "dan": dan}


def _members(rules) -> set[str]:
    clean = segment_rules_clean(rules)
    members = set(segment_rules_queryset(clean, now=NOW).values_list("external_id", flat=True))
    correlated = set(
        Customer.objects.filter(segment_rules_q(clean, now=NOW, correlated=True)).values_list(
            "external_id", flat=True
        )
    )
    assert correlated == members
    return members


def test_validation_normalizes_and_names_the_brand():
    catalog = RuleCatalog(brands={7: "Acme"})
    clean = rules_validate(
        _rules({"kind": "mention", "brand": "7", "within_days": "30", "value": "2"}), catalog
    )
    assert clean["conditions"] == [
        {
            "kind": "mention",
            "sentiment": "negative",
            "op": "gte",
            "value": 2,
            "within_days": 30,
            "brand": 7,
            "brand_name": "Acme",
        }
    ]


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ({"sentiment": "angry"}, "Unknown sentiment 'angry'"),
        ({"brand": 8}, "Brand 8 does not exist."),
        ({"value": -1}, "The count cannot be negative."),
        ({"within_days": 0}, "within_days must be between 1 and 3650."),
        ({"op": "between"}, "Compare the number of posts with one of"),
    ],
)
def test_validation_errors_name_the_condition(condition, message):
    with pytest.raises(RulesInvalid) as exc:
        rules_validate(_rules({"kind": "mention", **condition}), RuleCatalog(brands={7: "Acme"}))
    assert message in exc.value.errors["conditions.0"]


def test_negative_mention_in_the_last_30_days(listening):
    assert _members(_rules(NEGATIVE_30)) == {"ann", "ben"}


def test_a_brand_a_sentiment_a_count_and_never(listening):
    acme = listening["acme"].pk
    assert _members(_rules({**NEGATIVE_30, "brand": acme})) == {"ann"}
    assert _members(_rules({**NEGATIVE_30, "brand": acme, "value": 2})) == {"ann"}
    assert _members(_rules({**NEGATIVE_30, "value": 3})) == set()
    assert _members(_rules({"kind": "mention", "sentiment": "positive"})) == {"ben"}
    assert _members(_rules({"kind": "mention", "sentiment": "any", "brand": acme})) == {
        "ann",
        "ben",
        "cat",
    }
    assert _members(_rules({**NEGATIVE_30, "op": "eq", "value": 0})) == {"cat", "dan"}
    assert _members(_rules({**NEGATIVE_30, "op": "lt", "value": 2})) == {"ben", "cat", "dan"}


def test_rule_in_words():
    assert rules_describe(_rules(NEGATIVE_30)) == (
        "mentioned a brand negatively in the last 30 days"
    )
    clean = rules_validate(
        _rules({**NEGATIVE_30, "brand": 7, "op": "eq", "value": 0}), RuleCatalog(brands={7: "Acme"})
    )
    assert rules_describe(clean) == "did not mention Acme negatively in the last 30 days"
    assert rules_describe(
        _rules({"kind": "mention", "sentiment": "any", "op": "gte", "value": 3})
    ) == ("mentioned a brand in ≥ 3 posts")


def test_builder_fields_round_trip_and_field_list():
    rules = _rules({**NEGATIVE_30, "brand": 7, "op": "eq", "value": 0})
    fields = rules_to_fields(rules)
    assert fields["c-0.0-field"] == "mention"
    assert fields["c-0.0-op"] == "never"
    assert fields["c-0.0-brand"] == "7"
    catalog = RuleCatalog(brands={7: "Acme"})
    assert rules_validate(fields_to_rules(fields), catalog) == rules_validate(rules, catalog)
    behaviour = dict(field_choices())["Behaviour, consent, segments"]
    assert ("mention", "Mentioned a brand…") in behaviour


def test_choosing_the_mention_field_starts_with_negative_in_30_days():
    fields = {"g-0-op": "and", "c-0.0-field": "mention", "c-0.0-prev": "feature:orders"}
    assert fields_to_rules(fields)["conditions"] == [
        {"kind": "mention", "sentiment": "negative", "op": "gte", "value": "1", "within_days": "30"}
    ]


def test_builder_counts_and_shows_the_condition(marketer_client, listening):
    fields = rules_to_fields(_rules({**NEGATIVE_30, "brand": listening["acme"].pk}))
    response = marketer_client.post("/segments/builder/", fields, HTTP_HX_REQUEST="true")
    assert response["X-Segment-Count"] == "1"
    assertContains(response, '<option value="mention" selected>Mentioned a brand…</option>')
    assertContains(response, f'<option value="{listening["acme"].pk}" selected>Acme</option>')
    assertContains(response, '<option value="negative" selected>negatively</option>')


def test_builder_shows_an_unknown_brand_at_its_condition(marketer_client, listening):
    fields = rules_to_fields(_rules({**NEGATIVE_30, "brand": 999999}))
    response = marketer_client.post("/segments/builder/", fields, HTTP_HX_REQUEST="true")
    assertContains(response, "Brand 999999 does not exist.")
