"""The Celery entry point of clustering runs (re-exported by profiles/tasks.py so the worker
finds it)."""

import logging

from celery import shared_task

from marketing.celery import DefaultTask, Queue

__all__ = ["cluster_run_task"]

logger = logging.getLogger(__name__)


class ClusterRunTask(DefaultTask):
    """Retries transient errors like every task; when they run out, or on any other
    unexpected error, the run's job shows the failure."""

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        from marketing.services import job_mark_failed

        if "job_id" in kwargs:
            job_mark_failed(job_id=kwargs["job_id"], error=f"{type(exc).__name__}: {exc}")


@shared_task(
    base=ClusterRunTask,
    name="profiles.cluster_run",
    queue=Queue.RECOMMENDER.value,  # the long-running queue
    soft_time_limit=1800,
    time_limit=1900,
)
def cluster_run_task(*, run_id: int, job_id: int) -> dict:
    """Execute one clustering run. Idempotent: a finished or failed run is a no-op."""
    from profiles.segments.clusters import cluster_run_execute

    run = cluster_run_execute(run_id=run_id, job_id=job_id)
    result = {"run": run_id, "k": run.k if run else None}
    logger.info("cluster run task finished", extra=result)
    return result
