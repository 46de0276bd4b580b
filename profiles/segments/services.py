"""Every state change of segments: create, update, and the membership they materialize."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.utils import timezone

from profiles.models import Segment, SegmentKind, SegmentSnapshot
from profiles.segments.errors import SegmentInUseError, SegmentKindError, SegmentNameTakenError
from profiles.segments.selectors import (
    SET_BASED_PLANNING,
    segment_member_ids_sql,
    segment_rule_users,
    segment_rules_clean,
)
from profiles.services._db import bulk_cursor

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MembershipChange:
    size: int
    entered: int
    left: int
    duration_ms: int


def segment_create_static(
    *,
    name: str,
    kind: str,
    customer_ids: Iterable[int],
    scores: Mapping[int, float] | None = None,
    description: str = "",
    definition: dict | None = None,
    user=None,
) -> Segment:
    """A segment whose members are a fixed list (an imported file, a cluster, an affinity
    model's top customers). Unknown or erased customer ids are dropped."""
    if kind == SegmentKind.RULES:
        raise SegmentKindError("A rule segment is made from rules, not from a list of members.")
    with transaction.atomic():
        try:
            with transaction.atomic():
                segment = Segment.objects.create(
                    name=name,
                    kind=kind,
                    description=description,
                    definition=definition or {},
                    created_by=user,
                )
        except IntegrityError as exc:
            raise SegmentNameTakenError.for_name(name) from exc
        segment_members_set(segment=segment, customer_ids=customer_ids, scores=scores)
    segment.refresh_from_db()
    return segment


def segment_members_set(
    *,
    segment: Segment,
    customer_ids: Iterable[int],
    scores: Mapping[int, float] | None = None,
) -> MembershipChange:
    """Make the segment's members exactly `customer_ids` (set-based: COPY into a stage table,
    then one DELETE and one INSERT), record the change as a snapshot."""
    started = time.monotonic()
    scores = scores or {}
    with transaction.atomic(), bulk_cursor() as cursor:
        _stage_create(cursor)
        with cursor.copy("COPY profiles_segment_stage (customer_id, score) FROM STDIN") as copy:
            for pk in dict.fromkeys(customer_ids):
                copy.write_row((pk, scores.get(pk)))
        return _members_apply(cursor, segment=segment, started=started)


def segment_members_set_from_sql(*, segment: Segment, sql: str, params) -> MembershipChange:
    """Like `segment_members_set`, with the members given by a query returning customer ids
    (and optionally a score): rule segments never bring their members into Python."""
    started = time.monotonic()
    with transaction.atomic(), bulk_cursor() as cursor:
        _stage_create(cursor)
        cursor.execute(SET_BASED_PLANNING)
        cursor.execute(f"INSERT INTO profiles_segment_stage (customer_id) {sql}", params)  # noqa: S608
        return _members_apply(cursor, segment=segment, started=started)


def _stage_create(cursor) -> None:
    cursor.execute(
        "CREATE TEMP TABLE IF NOT EXISTS profiles_segment_stage "
        "(customer_id bigint PRIMARY KEY, score float8) ON COMMIT DELETE ROWS"
    )
    cursor.execute("TRUNCATE profiles_segment_stage")


def _members_apply(cursor, *, segment: Segment, started: float) -> MembershipChange:
    # One refresh of a segment at a time: the row lock orders concurrent refreshes.
    cursor.execute("SELECT id FROM profiles_segment WHERE id = %s FOR NO KEY UPDATE", [segment.pk])
    now = timezone.now()
    cursor.execute("ANALYZE profiles_segment_stage")
    cursor.execute(
        """
        DELETE FROM profiles_segmentmembership m WHERE m.segment_id = %s AND NOT EXISTS (
            SELECT 1 FROM profiles_segment_stage s
            JOIN profiles_customer c ON c.id = s.customer_id AND c.erased_at IS NULL
            WHERE s.customer_id = m.customer_id)
        """,
        [segment.pk],
    )
    left = cursor.rowcount
    cursor.execute(
        """
        UPDATE profiles_segmentmembership m SET score = s.score FROM profiles_segment_stage s
        WHERE m.segment_id = %s AND m.customer_id = s.customer_id
          AND m.score IS DISTINCT FROM s.score
        """,
        [segment.pk],
    )
    cursor.execute(
        """
        INSERT INTO profiles_segmentmembership (segment_id, customer_id, score, added_at)
        SELECT %s, s.customer_id, s.score, %s FROM profiles_segment_stage s
        JOIN profiles_customer c ON c.id = s.customer_id AND c.erased_at IS NULL
        ON CONFLICT (segment_id, customer_id) DO NOTHING
        """,
        [segment.pk, now],
    )
    entered = cursor.rowcount
    cursor.execute(
        "SELECT count(*) FROM profiles_segmentmembership WHERE segment_id = %s", [segment.pk]
    )
    size = cursor.fetchone()[0]
    duration_ms = int((time.monotonic() - started) * 1000)
    Segment.objects.filter(pk=segment.pk).update(member_count=size, counted_at=now)
    SegmentSnapshot.objects.create(
        segment=segment,
        taken_at=now,
        size=size,
        entered=entered,
        left=left,
        duration_ms=duration_ms,
    )
    logger.info(
        "segment members set",
        extra={"segment": segment.pk, "size": size, "entered": entered, "left": left},
    )
    return MembershipChange(size=size, entered=entered, left=left, duration_ms=duration_ms)


def segment_create(
    *, name: str, rules, description: str = "", user=None, refresh: bool = True
) -> Segment:
    """A rule segment. Its membership is materialized by a Celery task after the commit."""
    clean = segment_rules_clean(rules)
    try:
        with transaction.atomic():
            segment = Segment.objects.create(
                name=name,
                kind=SegmentKind.RULES,
                description=description,
                rules=clean,
                created_by=user,
            )
    except IntegrityError as exc:
        raise SegmentNameTakenError.for_name(name) from exc
    if refresh:
        segment_refresh_schedule(segment=segment)
    return segment


def segment_update(
    *,
    segment: Segment,
    name: str | None = None,
    description: str | None = None,
    rules=None,
) -> Segment:
    """Change what was given; rules only on a rule segment. Invalid rules change nothing."""
    fields: dict = {}
    if rules is not None:
        if segment.kind != SegmentKind.RULES:
            raise SegmentKindError("Only a rule segment has rules; this one is a fixed list.")
        fields["rules"] = segment_rules_clean(rules, segment_id=segment.pk)
    if name is not None:
        fields["name"] = name
    if description is not None:
        fields["description"] = description
    try:
        with transaction.atomic():
            locked = Segment.objects.select_for_update(no_key=True).get(pk=segment.pk)
            for key, value in fields.items():
                setattr(locked, key, value)
            locked.save(update_fields=[*fields, "updated_at"])
    except IntegrityError as exc:
        raise SegmentNameTakenError.for_name(name) from exc
    if "rules" in fields:
        segment_refresh_schedule(segment=locked)
    return locked


def segment_delete(*, segment: Segment) -> None:
    """Refused while a campaign uses the segment (the foreign key protects it) or another
    rule segment refers to it."""
    users = [other.name for other in segment_rule_users(segment=segment)]
    if users:
        raise SegmentInUseError(
            f"Segment {segment.name!r} is used by the rules of {', '.join(sorted(users))}."
        )
    try:
        segment.delete()
    except ProtectedError as exc:
        raise SegmentInUseError(
            f"Segment {segment.name!r} is the audience of a campaign or experiment."
        ) from exc


def segment_refresh(*, segment: Segment) -> MembershipChange:
    """Materialize a rule segment's members now (one INSERT … SELECT of the compiled rules)."""
    if segment.kind != SegmentKind.RULES:
        raise SegmentKindError("Only rule segments are refreshed; the others are fixed lists.")
    sql, params = segment_member_ids_sql(segment=segment)
    return segment_members_set_from_sql(segment=segment, sql=sql, params=params)


def segment_refresh_schedule(*, segment: Segment) -> None:
    from profiles.segments.tasks import segment_refresh_task

    transaction.on_commit(lambda: segment_refresh_task.delay(segment.pk))


def segments_refresh_all() -> int:
    """The scheduled refresh: every rule segment, one task each."""
    from profiles.segments.tasks import segment_refresh_task

    ids = list(Segment.objects.filter(kind=SegmentKind.RULES).values_list("pk", flat=True))
    for pk in ids:
        segment_refresh_task.delay(pk)
    return len(ids)


def segments_refresh_now() -> list[tuple[str, MembershipChange]]:
    """Every rule segment, refreshed in this process (the demo and the command use it)."""
    return [
        (segment.name, segment_refresh(segment=segment))
        for segment in Segment.objects.filter(kind=SegmentKind.RULES).order_by("name")
    ]
