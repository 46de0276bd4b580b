import pytest

from profiles.models import Segment, SegmentKind, SegmentMembership, SegmentSnapshot
from profiles.privacy import customer_erase, privacy_export
from profiles.segments.errors import InvalidSegmentRulesError, SegmentKindError
from profiles.segments.services import (
    segment_create,
    segment_members_set,
    segment_refresh,
    segment_update,
    segments_refresh_all,
)
from profiles.segments.tasks import segment_refresh_task, segments_refresh_all_task
from tests.profiles.factories import CustomerFactory, SegmentFactory

pytestmark = pytest.mark.django_db

GERMANS = {
    "op": "and",
    "conditions": [{"kind": "profile", "field": "country", "op": "eq", "value": "DE"}],
}


def _member_ids(segment) -> set[int]:
    return set(
        SegmentMembership.objects.filter(segment=segment).values_list("customer_id", flat=True)
    )


def test_refresh_materializes_the_rules_and_records_the_change():
    de = CustomerFactory(country="DE")
    fr = CustomerFactory(country="FR")
    segment = segment_create(name="Germans", rules=GERMANS, refresh=False)
    change = segment_refresh(segment=segment)
    assert (change.size, change.entered, change.left) == (1, 1, 0)
    assert _member_ids(segment) == {de.pk}
    fr.country = "DE"
    fr.save()
    de.country = "AT"
    de.save()
    change = segment_refresh(segment=segment)
    assert (change.size, change.entered, change.left) == (1, 1, 1)
    assert _member_ids(segment) == {fr.pk}
    segment.refresh_from_db()
    assert segment.member_count == 1
    assert SegmentSnapshot.objects.filter(segment=segment).count() == 2


def test_refresh_task_run_twice_changes_membership_once():
    de = CustomerFactory(country="DE")
    segment = segment_create(name="Germans", rules=GERMANS, refresh=False)
    assert segment_refresh_task(segment.pk) == {"size": 1, "entered": 1, "left": 0}
    assert segment_refresh_task(segment.pk) == {"size": 1, "entered": 0, "left": 0}
    assert _member_ids(segment) == {de.pk}
    assert segment_refresh_task(987654) is None


def test_create_and_rule_update_schedule_a_refresh(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        segment = segment_create(name="Germans", rules=GERMANS)
    assert len(callbacks) == 1
    with django_capture_on_commit_callbacks() as callbacks:
        segment_update(segment=segment, description="DE only")
    assert callbacks == []
    with django_capture_on_commit_callbacks() as callbacks:
        segment_update(segment=segment, rules={**GERMANS, "op": "or"})
    assert len(callbacks) == 1


def test_invalid_update_changes_nothing():
    segment = segment_create(name="Germans", rules=GERMANS, refresh=False)
    bad = {"op": "and", "conditions": [{"kind": "profile", "field": "nope", "op": "eq"}]}
    with pytest.raises(InvalidSegmentRulesError):
        segment_update(segment=segment, name="Renamed", rules=bad)
    segment.refresh_from_db()
    assert (segment.name, segment.rules) == ("Germans", GERMANS)


def test_list_segments_have_no_rules_to_change_or_refresh():
    segment = SegmentFactory(kind=SegmentKind.IMPORTED)
    with pytest.raises(SegmentKindError):
        segment_update(segment=segment, rules=GERMANS)
    with pytest.raises(SegmentKindError):
        segment_refresh(segment=segment)


def test_scheduled_refresh_enqueues_every_rule_segment(monkeypatch):
    rules = [segment_create(name=f"S{i}", rules=GERMANS, refresh=False) for i in range(2)]
    SegmentFactory(kind=SegmentKind.IMPORTED)
    sent = []
    monkeypatch.setattr(segment_refresh_task, "delay", sent.append)
    assert segments_refresh_all() == 2
    assert segments_refresh_all_task() == 2
    assert sorted(sent) == sorted([s.pk for s in rules] * 2)


def test_erasure_removes_memberships_and_the_export_lists_them():
    customer = CustomerFactory()
    segment = SegmentFactory(name="Listed", kind=SegmentKind.IMPORTED)
    segment_members_set(segment=segment, customer_ids=[customer.pk])
    assert privacy_export(customer=customer)["segments"] == ["Listed"]
    erasure = customer_erase(customer=customer, source="api")
    assert erasure.removed["segment_memberships"] == 1
    assert not SegmentMembership.objects.exists()
    assert Segment.objects.get(pk=segment.pk).name == "Listed"
