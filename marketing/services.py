"""Platform-level services: health checks, API keys, job progress."""

import logging
from dataclasses import dataclass

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from marketing.celery import app as celery_app
from marketing.common.errors import ApplicationError
from marketing.models import ApiKey, Job, JobStatus, Scope

logger = logging.getLogger(__name__)

BEAT_HEARTBEAT_KEY = "beat:heartbeat"


@dataclass(frozen=True)
class HealthReport:
    database: bool
    redis: bool
    celery: bool
    workers: list[str]
    beat_last_seen: str | None

    @property
    def ok(self) -> bool:
        return self.database and self.redis and self.celery


def health_check(*, celery_timeout: float = 1.0) -> HealthReport:
    database = redis_ok = celery_ok = False
    workers: list[str] = []
    beat_last_seen = None
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            database = cursor.fetchone() == (1,)
    except Exception:
        logger.exception("health: database check failed")
    try:
        # the redis client behind Django's RedisCache
        client = cache._cache.get_client(write=True)  # type: ignore[attr-defined]
        redis_ok = bool(client.ping())
        beat_last_seen = cache.get(BEAT_HEARTBEAT_KEY)
    except Exception:
        logger.exception("health: redis check failed")
    try:
        replies = celery_app.control.ping(timeout=celery_timeout) or []
        workers = sorted(name for reply in replies for name in reply)
        celery_ok = bool(workers)
    except Exception:
        logger.exception("health: celery check failed")
    return HealthReport(
        database=database,
        redis=redis_ok,
        celery=celery_ok,
        workers=workers,
        beat_last_seen=beat_last_seen,
    )


def beat_heartbeat_record() -> str:
    now = timezone.now().isoformat()
    cache.set(BEAT_HEARTBEAT_KEY, now, timeout=None)
    return now


class InvalidScopeError(ApplicationError):
    code = "invalid_scope"


def api_key_create(*, name: str, scopes: list[str], rate_limit: str = "") -> tuple[ApiKey, str]:
    """Create a key and return it with the raw secret, which is shown once and never stored."""
    unknown = sorted(set(scopes) - set(Scope.values))
    if unknown:
        raise InvalidScopeError(
            f"Unknown scope(s): {', '.join(unknown)}. Known: {', '.join(Scope.values)}",
            extra={"unknown": unknown},
        )
    if rate_limit:
        from marketing.throttling import ApiKeyRateThrottle

        try:
            ApiKeyRateThrottle().parse_rate(rate_limit)
        except (ValueError, KeyError) as exc:
            raise ApplicationError(
                f"Invalid rate limit {rate_limit!r}; use e.g. '6000/min'.", code="invalid_rate"
            ) from exc
    with transaction.atomic():
        key, raw = ApiKey.objects.create_key(
            name=name, scopes=sorted(set(scopes)), rate_limit=rate_limit
        )
    return key, raw  # type: ignore[return-value]


def job_create(*, kind: str, total: int = 0, user=None) -> Job:
    return Job.objects.create(kind=kind, total=total, created_by=user)


def job_start(*, job_id: int, total: int | None = None, message: str = "") -> None:
    fields = {"status": JobStatus.RUNNING, "started_at": timezone.now(), "message": message}
    if total is not None:
        fields["total"] = total
    Job.objects.filter(pk=job_id).update(**fields)


def job_progress(*, job_id: int, done: int, message: str = "") -> None:
    """Recorded outside any surrounding transaction's effects: a plain UPDATE of one row."""
    Job.objects.filter(pk=job_id).update(done=done, message=message)


def job_finish(*, job_id: int, result: dict | None = None, message: str = "") -> None:
    Job.objects.filter(pk=job_id).update(
        status=JobStatus.DONE,
        done=F("total"),
        finished_at=timezone.now(),
        result=result or {},
        message=message,
    )


def job_mark_failed(*, job_id: int, error: str) -> None:
    Job.objects.filter(pk=job_id).update(
        status=JobStatus.FAILED, finished_at=timezone.now(), error=error[:10000]
    )
