from dataclasses import dataclass

from django.db import connection

from marketing.models import Job


@dataclass(frozen=True)
class PlatformCounts:
    customers: int
    events: int
    items: int
    campaigns: int
    experiments: int
    segments: int


def _estimated_or_exact(table: str) -> int:
    """Exact count for small tables; the planner's estimate for big ones (events, and
    customers past 100,000: an exact count of a million rows costs the home page 40-100 ms)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = %s", [table])
        row = cursor.fetchone()
        estimate = int(row[0]) if row else -1
        if estimate > 100_000:
            return estimate
        cursor.execute(f'SELECT count(*) FROM "{table}"')  # noqa: S608 - table names are ours
        return int(cursor.fetchone()[0])


def platform_counts() -> PlatformCounts:
    return PlatformCounts(
        customers=_estimated_or_exact("profiles_customer"),
        events=_estimated_or_exact("profiles_event"),
        items=_estimated_or_exact("recommender_item"),
        campaigns=_estimated_or_exact("campaigns_campaign"),
        experiments=_estimated_or_exact("experiments_experiment"),
        segments=_estimated_or_exact("profiles_segment"),
    )


def job_get(*, pk: int) -> Job | None:
    return Job.objects.filter(pk=pk).first()


def job_list_recent(*, limit: int = 5) -> list[Job]:
    return list(Job.objects.order_by("-created_at")[:limit])


def active_item_count() -> int:
    """Active catalog items (what recommendations choose from), for the dashboard's coverage:
    one count over the catalog, small beside the events."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM recommender_item WHERE is_active")
        return int(cursor.fetchone()[0])
