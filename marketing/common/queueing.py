"""Queueing a Celery task from a request or a service without making the caller fail."""

import logging

from django.db import transaction

logger = logging.getLogger(__name__)


def delay_on_commit(task, *, what: str, **kwargs) -> None:
    """`task.delay(**kwargs)` once the current transaction commits (at once outside one). A
    broker that refuses it is logged, not raised: the callers queue work whose loss only costs
    the slower path until the next time it is asked for (a cache build, a rebuild)."""

    def enqueue() -> None:
        try:
            task.delay(**kwargs)
        except Exception as exc:  # noqa: BLE001 - see the docstring
            logger.warning(
                f"{what} not queued",
                extra={**kwargs, "error": f"{type(exc).__name__}: {exc}"[:300]},
            )

    transaction.on_commit(enqueue)
