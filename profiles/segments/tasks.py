"""Celery entry points for rule segments (imported by profiles/tasks.py for discovery)."""

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="profiles.segment_refresh", soft_time_limit=600, time_limit=900)
def segment_refresh_task(segment_id: int) -> dict | None:
    """Materialize one rule segment. Idempotent: it sets the members to what the rules say
    now, so a redelivery only adds one more snapshot of the same size."""
    from profiles.models import Segment, SegmentKind
    from profiles.segments.services import segment_refresh

    segment = Segment.objects.filter(pk=segment_id, kind=SegmentKind.RULES).first()
    if segment is None:
        return None
    change = segment_refresh(segment=segment)
    logger.info(
        "segment refreshed",
        extra={"segment": segment_id, "size": change.size, "ms": change.duration_ms},
    )
    return {"size": change.size, "entered": change.entered, "left": change.left}


@shared_task(name="profiles.segments_refresh_all", soft_time_limit=60, time_limit=120)
def segments_refresh_all_task() -> int:
    from profiles.segments.services import segments_refresh_all

    return segments_refresh_all()
