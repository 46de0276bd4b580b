"""The Celery entry point of big segment imports (re-exported by profiles/tasks.py so the
worker finds it)."""

import logging

from celery import shared_task

from marketing.celery import DefaultTask, Queue

__all__ = ["segment_import_task"]

logger = logging.getLogger(__name__)


class SegmentImportTask(DefaultTask):
    """Retries transient errors like every task; when they run out, or on any other
    unexpected error, the job shows the failure."""

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        from profiles.segments.imports import segment_import_mark_failed

        if "job_id" in kwargs:
            segment_import_mark_failed(
                job_id=kwargs["job_id"],
                stored=kwargs["stored"],
                error=f"{type(exc).__name__}: {exc}",
            )


@shared_task(
    base=SegmentImportTask,
    name="profiles.segment_import_run",
    queue=Queue.RECOMMENDER.value,  # the long-running queue
    soft_time_limit=1800,
    time_limit=1900,
)
def segment_import_task(**kwargs) -> dict:
    """Import one uploaded segment file; the keyword arguments are those of
    `segment_import_run` (primitive values only). Idempotent: a finished job is a no-op."""
    from profiles.segments.imports import segment_import_run

    job = segment_import_run(**kwargs)
    if job is None:
        return {}
    result = {"job": job.pk, "status": job.status, "segment": job.result.get("segment")}
    logger.info("segment import task finished", extra=result)
    return result
