"""The Celery entry point of CSV imports (re-exported by profiles/tasks.py so the worker
finds it)."""

import logging

from celery import shared_task

from marketing.celery import DefaultTask, Queue

__all__ = ["import_run_task"]

logger = logging.getLogger(__name__)


class ImportTask(DefaultTask):
    """Retries transient errors like every task; when they run out, or on any other
    unexpected error, the import and its job show the failure."""

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        from marketing.imports_services import import_file_mark_failed

        import_file_id = args[0] if args else kwargs.get("import_file_id")
        if import_file_id is not None:
            import_file_mark_failed(
                import_file_id=import_file_id, error=f"{type(exc).__name__}: {exc}"
            )


@shared_task(
    base=ImportTask,
    name="profiles.import_run",
    queue=Queue.RECOMMENDER.value,  # the long-running queue
    soft_time_limit=1800,
    time_limit=1900,
)
def import_run_task(import_file_id: int) -> dict:
    """Run one CSV import. Idempotent: a finished import is a no-op and a redelivered one
    stores nothing twice. Bad input (a wrong header) fails the import without retrying."""
    from marketing.imports_services import import_file_run

    import_file = import_file_run(import_file_id=import_file_id)
    if import_file is None:
        return {}
    result = {
        "import": import_file.pk,
        "status": import_file.status,
        "rows": import_file.rows,
        "imported": import_file.imported,
        "unchanged": import_file.unchanged,
        "rejected": import_file.rejected,
    }
    logger.info("import task finished", extra=result)
    return result
