"""The rule segment builder: form fields <-> rule tree, its buttons, the live preview
endpoint, and saving (create / edit) with errors shown at the offending condition."""

import datetime as dt

import pytest
from django.utils import timezone
from pytest_django.asserts import assertContains, assertNotContains

from profiles.forms_segment_builder import (
    errors_by_path,
    fields_to_rules,
    rules_apply_action,
    rules_to_fields,
)
from profiles.models import Customer, Segment, SegmentKind
from profiles.segments.rules import MAX_DEPTH, RuleCatalog, rules_validate
from profiles.segments.services import segment_create
from tests.profiles.factories import CustomerFactory, EventFactory, SegmentFactory
from tests.recommender.factories import ItemFactory

BUILDER = "/segments/builder/"
CREATE = "/segments/new/"

NESTED = {
    "op": "and",
    "conditions": [
        {"kind": "profile", "field": "country", "op": "in", "value": ["DE", "AT"]},
        {
            "op": "or",
            "conditions": [
                {
                    "kind": "event",
                    "event_type": "purchase",
                    "aggregate": "count",
                    "category": "Shoes",
                    "within_days": 30,
                    "op": "gte",
                    "value": 2,
                },
                {"kind": "feature", "field": "revenue", "op": "between", "value": [10, 200]},
                {
                    "op": "and",
                    "conditions": [
                        {"kind": "profile", "field": "attributes.tier", "op": "eq",
                         "value": "gold"},
                        {"kind": "feature", "field": "affinity", "category": "Bags", "op": "gte",
                         "value": 0.5},
                        {"kind": "consent", "purpose": "sms", "op": "not_granted"},
                        {"kind": "reachable", "channel": "email", "op": "is"},
                        {"kind": "profile", "field": "email", "op": "exists"},
                    ],
                },
            ],
        },
        {"kind": "event", "event_type": "email_open", "aggregate": "count", "within_days": 60,
         "op": "eq", "value": 0},
    ],
}  # fmt: skip


# --- pure: fields <-> tree, actions, error paths ---------------------------------------------


def test_fields_round_trip_a_nested_tree():
    fields = rules_to_fields(NESTED)
    assert fields["g-0-op"] == "and"
    assert fields["c-0.0-field"] == "profile:country"
    assert fields["c-0.0-value"] == "DE, AT"
    assert fields["g-0.1-op"] == "or"
    assert fields["c-0.1.1-value"] == "10"
    assert fields["c-0.1.1-value2"] == "200"
    assert fields["c-0.1.2.0-field"] == "profile:attributes."
    assert fields["c-0.1.2.0-key"] == "tier"
    assert fields["c-0.2-field"] == "event"
    # "exactly 0 times" reads "not at all", without a count to type.
    assert fields["c-0.2-op"] == "never"
    assert "c-0.2-value" not in fields
    catalog = RuleCatalog()
    assert rules_validate(fields_to_rules(fields), catalog) == rules_validate(NESTED, catalog)


def test_fields_order_children_by_index_and_ignore_other_fields():
    fields = {
        "name": "x",
        "csrfmiddlewaretoken": "t",
        "g-0-op": "or",
        "c-0.10-field": "profile:country",
        "c-0.10-op": "eq",
        "c-0.10-value": "FR",
        "c-0.2-field": "feature:orders",
        "c-0.2-op": "gte",
        "c-0.2-value": " 3 ",
        "c-0.5.0-field": "reachable",
        "c-0.5.0-channel": "sms",
        "c-0.5.0-op": "is_not",
    }
    assert fields_to_rules(fields) == {
        "op": "or",
        "conditions": [
            {"kind": "feature", "field": "orders", "op": "gte", "value": "3"},
            {"op": "and", "conditions": [{"kind": "reachable", "channel": "sms", "op": "is_not"}]},
            {"kind": "profile", "field": "country", "op": "eq", "value": "FR"},
        ],
    }


def test_changing_the_field_resets_op_and_value_to_fit():
    fields = {
        "g-0-op": "and",
        "c-0.0-prev": "profile:country",
        "c-0.0-field": "feature:last_seen",
        "c-0.0-op": "in",
        "c-0.0-value": "DE",
        "c-0.1-prev": "profile:country",
        "c-0.1-field": "event",
        "c-0.1-op": "in",
        "c-0.1-value": "DE",
    }
    assert fields_to_rules(fields)["conditions"] == [
        {"kind": "feature", "field": "last_seen", "op": "in_last_days", "value": ""},
        {
            "kind": "event",
            "event_type": "purchase",
            "aggregate": "count",
            "op": "gte",
            "value": "1",
            "within_days": "30",
        },
    ]


def test_add_and_remove_actions():
    tree = {"op": "and", "conditions": [{"kind": "reachable", "channel": "sms", "op": "is"}]}
    added = rules_apply_action(tree, "add-group:0")
    assert added["conditions"][1] == {
        "op": "or",
        "conditions": [{"kind": "feature", "field": "orders", "op": "gte", "value": 1}],
    }
    added = rules_apply_action(added, "add-condition:0.1")
    assert len(added["conditions"][1]["conditions"]) == 2
    removed = rules_apply_action(added, "remove:0.1.0")
    assert removed["conditions"][1]["conditions"] == [
        {"kind": "feature", "field": "orders", "op": "gte", "value": 1}
    ]
    assert rules_apply_action(removed, "remove:0.1") == tree
    # The input tree is not changed; nonsense and the root are ignored.
    assert len(added["conditions"][1]["conditions"]) == 2
    for action in ("remove:0", "remove:0.7", "add-condition:0.0", "explode:0", ""):
        assert rules_apply_action(tree, action) == tree


def test_groups_nest_at_most_max_depth():
    tree: dict = {"op": "and", "conditions": [{"kind": "reachable", "channel": "sms", "op": "is"}]}
    path = "0"
    for _ in range(MAX_DEPTH - 1):
        tree = rules_apply_action(tree, f"add-group:{path}")
        path += ".1"
    assert rules_apply_action(tree, f"add-group:{path}") == tree
    rules_validate(tree, RuleCatalog())


def test_errors_map_to_builder_paths():
    assert errors_by_path(
        {"": "empty", "conditions.1.conditions.0": "bad", "conditions.2": "x"}
    ) == {
        "0": "empty",
        "0.1.0": "bad",
        "0.2": "x",
    }


# --- views -------------------------------------------------------------------------------------


@pytest.fixture
def shop(db):
    ItemFactory(external_id="shoe-1", category="Shoes")
    ItemFactory(external_id="bag-1", category="Bags")
    now = timezone.now()
    ann = CustomerFactory(external_id="ann", email="ann@example.com", country="DE")
    bob = CustomerFactory(external_id="bob", email="bob@example.com", country="FR")
    CustomerFactory(external_id="cy", email="cy@example.com", country="AT")
    for days in (2, 5):
        EventFactory(
            customer=bob,
            type="purchase",
            item_external_id="shoe-1",
            occurred_at=now - dt.timedelta(days=days),
        )
    EventFactory(
        customer=ann,
        type="purchase",
        item_external_id="shoe-1",
        occurred_at=now - dt.timedelta(days=3),
    )
    return {"ann": ann, "bob": bob}


DE_OR_SHOES = {
    "op": "or",
    "conditions": [
        {"kind": "profile", "field": "country", "op": "eq", "value": "DE"},
        {
            "kind": "event",
            "event_type": "purchase",
            "category": "Shoes",
            "within_days": 30,
            "op": "gte",
            "value": 2,
        },
    ],
}


def _post(client, url, rules, **extra):
    return client.post(url, {**rules_to_fields(rules), **extra}, HTTP_HX_REQUEST="true")


@pytest.mark.django_db
def test_builder_shows_count_and_sample(marketer_client, shop):
    response = _post(marketer_client, BUILDER, DE_OR_SHOES)
    assert response.status_code == 200
    assert response["X-Segment-Count"] == "2"
    html = response.content.decode()
    assertContains(response, '<div class="stat" id="segment-count"><b>2</b> customers</div>')
    assert f'href="/customers/{shop["bob"].pk}/">bob</a>' in html
    assert f'href="/customers/{shop["ann"].pk}/">ann@example.com</a>' in html
    assert ">cy<" not in html
    assert 'id="segment-builder"' in html
    assert "<html" not in html


@pytest.mark.django_db
def test_did_not_is_a_choice_without_a_count(marketer_client, shop):
    rules = {
        "op": "and",
        "conditions": [
            {"kind": "event", "event_type": "purchase", "within_days": 30, "op": "eq", "value": 0}
        ],
    }
    response = _post(marketer_client, BUILDER, rules)
    html = response.content.decode()
    assert '<option value="never" selected>not at all</option>' in html
    assert 'name="c-0.0-value"' not in html
    assert response["X-Segment-Count"] == str(
        Customer.objects.exclude(events__type="purchase").count()
    )


@pytest.mark.django_db
def test_builder_applies_the_button_and_rerenders_fitting_widgets(marketer_client, shop):
    response = _post(marketer_client, BUILDER, DE_OR_SHOES, action="add-group:0")
    html = response.content.decode()
    assert 'name="g-0.2-op"' in html
    assert 'name="c-0.2.0-field"' in html
    assert '<option value="feature:orders" selected>Orders</option>' in html
    # The event condition reads as a sentence with the category select.
    assert '<option value="Shoes" selected>Shoes</option>' in html
    assert '<option value="gte" selected>at least</option>' in html
    assert response["X-Segment-Count"] == "2"


@pytest.mark.django_db
def test_builder_shows_an_error_at_the_offending_condition(marketer_client, shop):
    rules = {
        "op": "and",
        "conditions": [
            {"kind": "profile", "field": "country", "op": "eq", "value": "DE"},
            {
                "op": "or",
                "conditions": [
                    {"kind": "event", "event_type": "purchase", "within_days": 30, "op": "gte",
                     "value": -2},
                    {"kind": "profile", "field": "country", "op": "eq", "value": "FR"},
                ],
            },
            {"op": "and", "conditions": []},
        ],
    }  # fmt: skip
    response = _post(marketer_client, BUILDER, rules)
    assert response.status_code == 200
    assert "X-Segment-Count" not in response
    assertContains(
        response,
        '<p class="error" role="alert" id="error-0.1.0">The count cannot be negative.</p>',
    )
    assertContains(
        response,
        '<p class="error" role="alert" id="error-0.2">'
        "This group is empty: add a condition or remove the group.</p>",
    )
    assertContains(response, 'id="c-0.1.0-value" value="-2"')
    assertContains(response, 'id="segment-preview-invalid"')
    assertNotContains(response, 'id="segment-count"')
    assertNotContains(response, "error-0.0")


@pytest.mark.django_db
def test_builder_query_count_is_pinned(marketer_client, shop, django_assert_num_queries):
    SegmentFactory(name="VIP")
    data = rules_to_fields(DE_OR_SHOES)
    # session, user, role check (view), role check (context processor), item categories
    # (select and validation), segments (select, validation), then in a savepoint the
    # planner settings and the count with its sample (savepoint, settings, query, release).
    with django_assert_num_queries(12):
        response = marketer_client.post(BUILDER, data, HTTP_HX_REQUEST="true")
    assert response["X-Segment-Count"] == "2"


@pytest.mark.django_db
def test_create_page_and_save(marketer_client, marketer, shop):
    page = marketer_client.get(CREATE)
    assert page.status_code == 200
    assertContains(page, 'hx-post="/segments/builder/"')
    assertContains(page, "<b>0</b> customers")  # "orders ≥ 1": no features computed here

    response = _post(
        marketer_client, CREATE, DE_OR_SHOES, name="Germans or shoe lovers", description="d"
    )
    segment = Segment.objects.get()
    assert response.status_code == 200
    assert response["HX-Redirect"] == f"/segments/{segment.pk}/"
    assert segment.name == "Germans or shoe lovers"
    assert segment.description == "d"
    assert segment.kind == SegmentKind.RULES
    assert segment.created_by == marketer
    assert segment.rules["conditions"][1]["value"] == 2
    assert segment.rules["conditions"][0] == DE_OR_SHOES["conditions"][0]


@pytest.mark.django_db
def test_create_with_a_taken_name_keeps_the_form(marketer_client, shop):
    SegmentFactory(name="Taken")
    response = _post(marketer_client, CREATE, DE_OR_SHOES, name="Taken")
    assert response.status_code == 200
    assertContains(
        response,
        '<p class="error" role="alert" id="name-error">'
        "A segment with this name already exists.</p>",
    )
    assertContains(response, 'id="c-0.0-value" value="DE"')
    assert Segment.objects.count() == 1


@pytest.mark.django_db
def test_create_with_invalid_rules_stores_nothing(marketer_client, shop):
    rules = {"op": "and", "conditions": [{"kind": "feature", "field": "orders", "op": "gte",
                                          "value": "many"}]}  # fmt: skip
    response = _post(marketer_client, CREATE, rules, name="Bad")
    assert response.status_code == 200
    assertContains(response, "error-0.0")
    assertContains(response, "orders: &#x27;many&#x27; is not a number.")
    assert Segment.objects.count() == 0


@pytest.mark.django_db
def test_edit_loads_the_stored_rules_and_saves(marketer_client, shop):
    segment = segment_create(name="Shoes", rules=DE_OR_SHOES, description="old", refresh=False)
    page = marketer_client.get(f"/segments/{segment.pk}/edit/")
    assert page.status_code == 200
    assertContains(page, 'id="c-0.0-value" value="DE"')
    assertContains(page, 'id="c-0.1-within_days" value="30"')
    assertContains(page, f'<input type="hidden" name="segment" value="{segment.pk}">')

    changed = {**DE_OR_SHOES, "op": "and"}
    response = _post(
        marketer_client, f"/segments/{segment.pk}/edit/", changed, name="Shoes 2", description=""
    )
    assert response["HX-Redirect"] == f"/segments/{segment.pk}/"
    segment.refresh_from_db()
    assert (segment.name, segment.description, segment.rules["op"]) == ("Shoes 2", "", "and")


@pytest.mark.django_db
def test_invalid_edit_keeps_the_stored_rules(marketer_client, shop):
    segment = segment_create(name="Shoes", rules=DE_OR_SHOES, refresh=False)
    stored = segment.rules
    broken = {"op": "and", "conditions": [{"kind": "profile", "field": "nope", "op": "eq",
                                           "value": "x"}]}  # fmt: skip
    response = _post(marketer_client, f"/segments/{segment.pk}/edit/", broken, name="Renamed")
    assert response.status_code == 200
    assertContains(response, 'id="error-0.0"')
    segment.refresh_from_db()
    assert segment.rules == stored
    assert segment.name == "Shoes"


@pytest.mark.django_db
def test_only_rule_segments_are_edited_here(marketer_client):
    imported = SegmentFactory(kind=SegmentKind.IMPORTED, rules={})
    response = marketer_client.get(f"/segments/{imported.pk}/edit/")
    assert response.status_code == 302
    assert response["Location"] == f"/segments/{imported.pk}/"
    assert marketer_client.get("/segments/999999/edit/").status_code == 404


@pytest.mark.django_db
def test_analysts_cannot_build_or_save(analyst_client, shop):
    segment = segment_create(name="Shoes", rules=DE_OR_SHOES, refresh=False)
    stored = segment.rules
    assert analyst_client.get(CREATE).status_code == 403
    assert analyst_client.get(f"/segments/{segment.pk}/edit/").status_code == 403
    assert _post(analyst_client, BUILDER, DE_OR_SHOES).status_code == 403
    assert _post(analyst_client, CREATE, DE_OR_SHOES, name="New").status_code == 403
    changed = {"op": "and", "conditions": DE_OR_SHOES["conditions"][:1]}
    assert (
        _post(analyst_client, f"/segments/{segment.pk}/edit/", changed, name="x").status_code == 403
    )
    assert list(Segment.objects.values_list("name", flat=True)) == ["Shoes"]
    segment.refresh_from_db()
    assert segment.rules == stored


@pytest.mark.django_db
def test_segment_list_links_to_the_builder(client, marketer, analyst):
    client.force_login(marketer)
    assertContains(client.get("/segments/"), f'<a class="button" href="{CREATE}">New segment</a>')
    client.force_login(analyst)
    assertNotContains(client.get("/segments/"), f'href="{CREATE}"')


@pytest.mark.django_db
def test_new_segment_starts_from_a_starter(marketer_client, shop):
    page = marketer_client.get(CREATE + "?starter=bought-twice")
    assertContains(page, '<option value="purchase" selected>purchase</option>')
    assertContains(page, '<option value="Bags" selected>Bags</option>')
    assertContains(page, 'id="c-0.0-value" value="2"')
    page = marketer_client.get(CREATE + "?starter=no-email-open")
    assertContains(page, '<option value="email_open" selected>open an email</option>')
    assertContains(
        page, 'href="/segments/new/?starter=lapsed-high-spenders">Lapsed high spenders</a>'
    )


@pytest.mark.django_db
def test_an_empty_number_asks_for_one(marketer_client, shop):
    rules = {"op": "and", "conditions": [{"kind": "feature", "field": "orders", "op": "gte",
                                          "value": ""}]}  # fmt: skip
    response = _post(marketer_client, CREATE, rules, name="Empty")
    assertContains(
        response,
        '<p class="error" role="alert" id="error-0.0">orders: enter a number.</p>',
        html=False,
    )
    assert Segment.objects.count() == 0


@pytest.mark.django_db
def test_after_new_rules_the_page_polls_until_the_worker_counted_them(marketer_client, shop):
    from urllib.parse import quote

    from profiles.segments.services import segment_refresh

    segment = segment_create(name="Shoes", rules=DE_OR_SHOES, refresh=False)
    segment_refresh(segment=segment)
    segment.refresh_from_db()
    since = segment.counted_at.isoformat()

    renamed = _post(marketer_client, f"/segments/{segment.pk}/edit/", DE_OR_SHOES, name="Shoes 2")
    assert renamed["HX-Redirect"] == f"/segments/{segment.pk}/"

    changed = {**DE_OR_SHOES, "op": "and"}
    response = _post(marketer_client, f"/segments/{segment.pk}/edit/", changed, name="Shoes 2")
    url = f"/segments/{segment.pk}/?since={quote(since, safe='')}"
    assert response["HX-Redirect"] == url
    assertContains(marketer_client.get(url), "refreshing…")

    segment_refresh(segment=segment)
    assertNotContains(marketer_client.get(url), "refreshing…")


@pytest.mark.django_db
def test_consent_and_reachability_rows_read_as_words(marketer_client, shop):
    rules = {"op": "and", "conditions": [
        {"kind": "consent", "purpose": "marketing_email", "op": "granted"},
        {"kind": "reachable", "channel": "sms", "op": "is"},
    ]}  # fmt: skip
    response = _post(marketer_client, "/segments/builder/", rules)
    assertContains(response, '<option value="marketing_email" selected>marketing email</option>')
    assertContains(response, '<option value="reachable" selected>Reachability</option>')
