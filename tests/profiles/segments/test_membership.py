import pytest

from profiles.models import SegmentKind, SegmentMembership, SegmentSnapshot
from profiles.segments.errors import SegmentKindError, SegmentNameTakenError
from profiles.segments.services import segment_create_static, segment_members_set
from tests.profiles.factories import CustomerFactory, SegmentFactory

pytestmark = pytest.mark.django_db


def _members(segment) -> dict[int, float | None]:
    return dict(
        SegmentMembership.objects.filter(segment=segment).values_list("customer_id", "score")
    )


def test_static_segment_keeps_known_customers_with_scores_and_drops_unknown_ids():
    a, b = CustomerFactory(), CustomerFactory()
    segment = segment_create_static(
        name="Top fans",
        kind=SegmentKind.MODEL,
        customer_ids=[a.pk, b.pk, a.pk, 99_999_999],
        scores={a.pk: 0.9, b.pk: 0.4},
        definition={"source": "test"},
    )
    assert _members(segment) == {a.pk: 0.9, b.pk: 0.4}
    assert segment.member_count == 2
    assert segment.counted_at is not None
    snapshot = SegmentSnapshot.objects.get(segment=segment)
    assert (snapshot.size, snapshot.entered, snapshot.left) == (2, 2, 0)


def test_members_set_records_who_entered_and_left():
    a, b, c = CustomerFactory(), CustomerFactory(), CustomerFactory()
    segment = SegmentFactory(kind=SegmentKind.IMPORTED)
    segment_members_set(segment=segment, customer_ids=[a.pk, b.pk])
    change = segment_members_set(segment=segment, customer_ids=[b.pk, c.pk])
    assert (change.size, change.entered, change.left) == (2, 1, 1)
    assert set(_members(segment)) == {b.pk, c.pk}
    assert list(
        SegmentSnapshot.objects.filter(segment=segment)
        .order_by("taken_at")
        .values_list("size", "entered", "left")
    ) == [(2, 2, 0), (2, 1, 1)]


def test_erased_customers_never_become_members():
    kept, erased = CustomerFactory(), CustomerFactory(erased_at="2026-01-01T00:00:00Z")
    segment = SegmentFactory(kind=SegmentKind.IMPORTED)
    change = segment_members_set(segment=segment, customer_ids=[kept.pk, erased.pk])
    assert change.size == 1
    assert set(_members(segment)) == {kept.pk}


def test_static_segment_name_taken_and_rules_kind_are_refused_without_side_effects():
    SegmentFactory(name="Taken")
    with pytest.raises(SegmentNameTakenError):
        segment_create_static(name="Taken", kind=SegmentKind.IMPORTED, customer_ids=[])
    with pytest.raises(SegmentKindError):
        segment_create_static(name="New", kind=SegmentKind.RULES, customer_ids=[])
    assert not SegmentMembership.objects.exists()
    assert not SegmentSnapshot.objects.exists()
