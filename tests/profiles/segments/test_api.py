import pytest

from profiles.models import Segment, SegmentKind
from profiles.segments.services import segment_members_set
from tests.helpers import api_key_client
from tests.profiles.factories import CustomerFactory, EventFactory, SegmentFactory

pytestmark = pytest.mark.django_db

GERMANS = {
    "op": "and",
    "conditions": [{"kind": "profile", "field": "country", "op": "eq", "value": "DE"}],
}
BUYERS = {"op": "and", "conditions": [{"kind": "event", "event_type": "purchase"}]}


@pytest.fixture
def automation():
    return api_key_client("segments:read", "segments:write")


def test_create_a_rule_segment_schedules_its_refresh(
    automation, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = automation.post(
            "/api/v1/segments",
            {"name": "Germans", "description": "Lives in DE", "rules": GERMANS},
            format="json",
        )
    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "Germans"
    assert body["kind"] == "rules"
    assert body["rules"] == GERMANS
    assert body["rules_text"] == "country is DE"
    assert len(callbacks) == 1
    assert Segment.objects.get(pk=body["id"]).rules == GERMANS


def test_invalid_rules_answer_400_naming_the_condition_and_store_nothing(automation):
    rules = {
        "op": "or",
        "conditions": [
            GERMANS["conditions"][0],
            {
                "op": "and",
                "conditions": [
                    {"kind": "feature", "field": "revenue", "op": "gte", "value": "lots"}
                ],
            },
        ],
    }
    response = automation.post("/api/v1/segments", {"name": "Bad", "rules": rules}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_segment_rules"
    assert body["extra"]["errors"] == {
        "conditions.1.conditions.0": "revenue: 'lots' is not a number."
    }
    assert not Segment.objects.exists()


def test_taken_name_is_409(automation):
    SegmentFactory(name="Germans")
    response = automation.post(
        "/api/v1/segments", {"name": "Germans", "rules": GERMANS}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["code"] == "segment_name_taken"
    assert Segment.objects.count() == 1


def test_invalid_update_keeps_the_stored_rules(automation):
    segment = SegmentFactory(name="Germans", rules=GERMANS)
    response = automation.patch(
        f"/api/v1/segments/{segment.pk}",
        {"name": "Renamed", "rules": {"op": "and", "conditions": []}},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["extra"]["errors"] == {
        "": "This group is empty: add a condition or remove the group."
    }
    segment.refresh_from_db()
    assert (segment.name, segment.rules) == ("Germans", GERMANS)


def test_update_and_delete(automation):
    segment = SegmentFactory(name="Germans", rules=GERMANS)
    response = automation.patch(f"/api/v1/segments/{segment.pk}", {"rules": BUYERS}, format="json")
    assert response.status_code == 200
    assert response.json()["rules_text"] == "purchase ≥ 1 time"
    assert automation.delete(f"/api/v1/segments/{segment.pk}").status_code == 204
    assert not Segment.objects.exists()


def test_segment_used_by_another_segment_cannot_be_deleted(automation):
    base = SegmentFactory(name="Germans", rules=GERMANS)
    SegmentFactory(
        name="Users",
        rules={"op": "and", "conditions": [{"kind": "segment", "segment": base.pk, "op": "in"}]},
    )
    response = automation.delete(f"/api/v1/segments/{base.pk}")
    assert response.status_code == 409
    assert response.json()["message"] == "Segment 'Germans' is used by the rules of Users."
    assert Segment.objects.count() == 2


def test_preview_counts_and_samples_without_saving(automation):
    CustomerFactory(external_id="de-1", country="DE")
    CustomerFactory(external_id="de-2", country="DE")
    CustomerFactory(external_id="fr-1", country="FR")
    response = automation.post(
        "/api/v1/segments/preview", {"rules": GERMANS, "sample_size": 1}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert body["sample"] == ["de-2"]
    assert not Segment.objects.exists()


def test_members_are_paged(automation):
    customers = [CustomerFactory(external_id=f"m-{i}") for i in range(3)]
    segment = SegmentFactory(kind=SegmentKind.IMPORTED)
    segment_members_set(segment=segment, customer_ids=[c.pk for c in customers])
    response = automation.get(f"/api/v1/segments/{segment.pk}/members?offset=1&limit=1")
    assert response.status_code == 200
    assert response.json()["members"] == ["m-1"]
    assert response.json()["count"] == 3
    bad = automation.get(f"/api/v1/segments/{segment.pk}/members?limit=lots")
    assert bad.status_code == 400


def test_refresh_only_for_rule_segments(automation, django_capture_on_commit_callbacks):
    rules = SegmentFactory(rules=GERMANS)
    imported = SegmentFactory(kind=SegmentKind.IMPORTED)
    with django_capture_on_commit_callbacks() as callbacks:
        assert automation.post(f"/api/v1/segments/{rules.pk}/refresh").status_code == 202
    assert len(callbacks) == 1
    assert automation.post(f"/api/v1/segments/{imported.pk}/refresh").status_code == 400


def test_scopes_and_roles_are_enforced(analyst_client):
    reader = api_key_client("segments:read")
    assert reader.get("/api/v1/segments").status_code == 200
    response = reader.post("/api/v1/segments", {"name": "X", "rules": GERMANS}, format="json")
    assert response.status_code == 403
    assert api_key_client("profiles:read").get("/api/v1/segments").status_code == 403
    assert analyst_client.get("/api/v1/segments").status_code == 200
    response = analyst_client.post(
        "/api/v1/segments", {"name": "X", "rules": GERMANS}, content_type="application/json"
    )
    assert response.status_code == 403
    assert not Segment.objects.exists()


def test_customer_segments_are_evaluated_in_real_time():
    alice = CustomerFactory(external_id="alice", country="DE")
    CustomerFactory(external_id="bob", country="FR")
    germans = SegmentFactory(name="Germans", rules=GERMANS)
    buyers = SegmentFactory(name="Buyers", rules=BUYERS)
    listed = SegmentFactory(name="Listed", kind=SegmentKind.IMPORTED)
    segment_members_set(segment=listed, customer_ids=[alice.pk])
    client = api_key_client("segments:read")
    response = client.get("/api/v1/customers/alice/segments")
    assert response.status_code == 200
    assert [s["name"] for s in response.json()["segments"]] == ["Germans", "Listed"]
    # No refresh in between: a purchase puts her in Buyers at once.
    EventFactory(customer=alice, type="purchase")
    names = [s["id"] for s in client.get("/api/v1/customers/alice/segments").json()["segments"]]
    assert names == [buyers.pk, germans.pk, listed.pk]
    assert client.get("/api/v1/customers/bob/segments").json()["segments"] == []
    assert client.get("/api/v1/customers/nobody/segments").status_code == 404
    assert (
        api_key_client("profiles:read").get("/api/v1/customers/alice/segments").status_code == 403
    )


def test_customer_segments_is_one_query_for_any_number_of_segments(django_assert_num_queries):
    CustomerFactory(external_id="alice", country="DE")
    for i in range(6):
        SegmentFactory(name=f"S{i}", rules=GERMANS if i % 2 else BUYERS)
    client = api_key_client("segments:read")
    client.get("/api/v1/customers/alice/segments")  # warm the key cache
    # The customer (with its endpoints and aliases), the segments, one evaluation query.
    with django_assert_num_queries(5):
        response = client.get("/api/v1/customers/alice/segments")
    assert len(response.json()["segments"]) == 3
