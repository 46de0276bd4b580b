import logging
from dataclasses import asdict

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(
    name="experiments.exposures_flush",
    soft_time_limit=50,
    time_limit=60,
    # Beat sends one every few seconds: a flush that waited longer than that is superseded.
    expires=30,
)
def exposures_flush_task() -> dict:
    """Copy the exposures the assignment API buffered in Redis into PostgreSQL. Safe to run
    twice or concurrently: one flush holds a lock, and a record stored twice is ignored."""
    from experiments.services import exposures_flush

    return asdict(exposures_flush())


@shared_task(
    name="experiments.audience_build",
    soft_time_limit=240,
    time_limit=300,
)
def audience_build_task(*, segment_id: int) -> int:
    """Build the segment's audience set for the assignment hot path (experiments.audience);
    idempotent: a second run builds the same set again."""
    from experiments.audience import audience_build

    return audience_build(segment_id=segment_id)


@shared_task(
    name="experiments.bandits_reweight",
    soft_time_limit=240,
    time_limit=300,
    # Beat sends one every 10 minutes; a run that waited that long is superseded by the next.
    expires=540,
)
def bandits_reweight_task() -> list[dict]:
    """New weights for every running bandit from its logged outcomes (idempotent: see
    experiment_bandit_reweight)."""
    from experiments.services import bandits_reweight

    results = [asdict(r) for r in bandits_reweight()]
    logger.info(
        "bandits reweighted",
        extra={"experiments": len(results), "changed": sum(r["changed"] for r in results)},
    )
    return results


@shared_task(
    name="experiments.attribution_report_compute",
    soft_time_limit=1800,
    time_limit=1900,
    autoretry_for=(),
    acks_late=False,
)
def attribution_report_compute_task(*, job_id: int, query: dict) -> None:
    """Compute an attribution report that is too big for a request (see
    attribution_report_request). Not retried: a failure is recorded on the job, and asking
    again starts a new one."""
    from experiments.attribution_reports import AttributionQuery, attribution_report_run

    attribution_report_run(job_id=job_id, query=AttributionQuery.from_payload(query))


@shared_task(
    name="experiments.sticky_rebuild",
    soft_time_limit=240,
    time_limit=300,
)
def sticky_rebuild_task(*, experiment_id: int) -> int:
    """Restore a bandit's sticky keys from the exposure table and mark them complete, so its
    first exposures take one Redis round trip again (experiments.sticky); idempotent."""
    from experiments.sticky import sticky_rebuild

    written = sticky_rebuild(experiment_id=experiment_id)
    logger.info("sticky rebuild", extra={"experiment": experiment_id, "keys": written})
    return written
