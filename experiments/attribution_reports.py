"""Database-backed attribution: touchpoints and conversions from PostgreSQL, credit from the
Django-free models in experiments/attribution (the code `manage.py attribute` runs on CSV).

Touchpoints of a customer are
  * tracked events with a channel and/or a campaign: email opens and clicks, SMS clicks,
    push opens, offer impressions and clicks, and visits (view / click); a visit's channel is
    its traffic source when the storefront sent one (`utm_source` or `source` in the
    properties), else "direct";
  * campaign messages sent (an impression of their channel and campaign).
A conversion is a goal event (default purchase) with its value. The rows of one UNION query go
to a temporary table, then come back sorted by binary COPY straight into numpy arrays (no
Python object per row), already grouped by customer and time, which is the order
`paths_from_touchpoints` checks for in one pass instead of sorting.

A conversion just before the period would otherwise leave its touches to the next purchase in
the period; the touches at or before each customer's last pre-period conversion (within the
lookback) are dropped, as they were credited to that earlier one.

Long computations, both ways: a report is cached in Redis per (period, goal, lookback,
settings) for CACHE_SECONDS, so the page, its reloads and the CSV export compute it once. A
report the planner expects to read at most INLINE_MAX_ROWS rows is computed in the request
(seconds); a bigger one runs as a Celery task with a Job whose progress (reading, then each
model) the page polls, and stays cached JOB_CACHE_SECONDS. Reading the rows costs about
6 us a row (PostgreSQL's scan of the events and the sort, mostly), far more than the models
(benchmarks/attribution_models.py: all models over 1,000,000 paths in well under a minute).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from campaigns.models import Campaign
from experiments.attribution import (
    MODELS,
    AttributionSettings,
    Paths,
    attribute_all,
    paths_from_touchpoints,
)
from experiments.tasks import attribution_report_compute_task
from marketing.models import Job, JobStatus
from marketing.selectors import job_get
from marketing.services import (
    job_create,
    job_finish,
    job_mark_failed,
    job_progress,
    job_start,
)

CACHE_SECONDS = 300
JOB_CACHE_SECONDS = 3600
# Rows (touches + conversions) a request may read itself: about 3 s at ~6 us a row.
INLINE_MAX_ROWS = 500_000
TOUCH_EVENT_TYPES = (
    "email_open", "email_click", "sms_click", "push_open", "offer_shown", "offer_click",
    "click", "view",
)  # fmt: skip
DIRECT = "direct"

# One ordered stream: touch events, messages sent, goal events. Conversion rows sort after
# touches of the same instant (conv last in the ORDER BY), as the path builder expects.
# Touch events, messages sent, goal events: (customer, ts, channel, campaign or -1, conversion,
# value), every column fixed-width and never null, so COPY's binary rows are one numpy dtype.
_ROWS_UNION = """
    SELECT e.customer_id, extract(epoch FROM e.occurred_at)::float8 AS ts,
        CASE
            WHEN coalesce(e.properties->>'utm_source', e.properties->>'source', '') <> ''
                THEN lower(coalesce(nullif(e.properties->>'utm_source', ''),
                                    e.properties->>'source'))
            WHEN e.type IN ('email_open', 'email_click') THEN 'email'
            WHEN e.type = 'sms_click' THEN 'sms'
            WHEN e.type = 'push_open' THEN 'push'
            WHEN e.type IN ('offer_shown', 'offer_click') THEN 'offer'
            WHEN e.campaign_id IS NOT NULL AND e.channel <> '' THEN e.channel
            ELSE %(direct)s
        END AS channel,
        coalesce(e.campaign_id, -1)::bigint AS campaign, false AS conv, 0::float8 AS value
    FROM profiles_event e
    WHERE e.type = ANY(%(touch_types)s) AND e.occurred_at >= %(touch_since)s
      AND e.occurred_at < %(until)s AND (e.channel <> '' OR e.campaign_id IS NOT NULL)
    UNION ALL
    SELECT m.customer_id, extract(epoch FROM m.sent_at)::float8, m.channel,
        m.campaign_id::bigint, false, 0::float8
    FROM campaigns_message m
    WHERE m.sent_at >= %(touch_since)s AND m.sent_at < %(until)s
    UNION ALL
    SELECT e.customer_id, extract(epoch FROM e.occurred_at)::float8, '', -1::bigint, true,
        coalesce(e.value, 0)::float8
    FROM profiles_event e
    WHERE e.type = ANY(%(goals)s) AND e.occurred_at >= %(since)s AND e.occurred_at < %(until)s
"""
_ROWS = "SELECT * FROM (" + _ROWS_UNION + ") AS rows"  # noqa: S608 - constants

# Conversion rows sort after touches of the same instant (conv last), as the path builder
# expects; channels become their index in the list of distinct channels.
_ROWS_COPY = """
COPY (SELECT customer_id, ts, coalesce(array_position(%s::text[], channel), 0) - 1, campaign,
             conv, value
      FROM attribution_rows ORDER BY customer_id, ts, conv) TO STDOUT (FORMAT binary)
"""
_COPY_ROW = np.dtype(
    [("n", ">i2"), ("l0", ">i4"), ("customer", ">i8"), ("l1", ">i4"), ("ts", ">f8"),
     ("l2", ">i4"), ("channel", ">i4"), ("l3", ">i4"), ("campaign", ">i8"), ("l4", ">i4"),
     ("conv", "?"), ("l5", ">i4"), ("value", ">f8")]
)  # fmt: skip
_COPY_HEADER = 19  # signature, flags, header extension length
_COPY_TRAILER = 2

_EARLIER_CONVERSIONS = """
SELECT customer_id, extract(epoch FROM max(occurred_at)) FROM profiles_event
WHERE type = ANY(%(goals)s) AND occurred_at >= %(touch_since)s AND occurred_at < %(since)s
GROUP BY customer_id
"""


@dataclass(frozen=True)
class AttributionQuery:
    since: datetime
    until: datetime
    goal_types: tuple[str, ...] = ("purchase",)
    lookback_days: float = 30.0
    settings: AttributionSettings = field(default_factory=AttributionSettings)

    def as_payload(self) -> dict[str, Any]:
        """JSON for the Celery task."""
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "goals": list(self.goal_types),
            "lookback": self.lookback_days,
            "settings": asdict(self.settings),
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> AttributionQuery:
        return cls(
            since=datetime.fromisoformat(payload["since"]),
            until=datetime.fromisoformat(payload["until"]),
            goal_types=tuple(payload["goals"]),
            lookback_days=float(payload["lookback"]),
            settings=AttributionSettings(**payload["settings"]),
        )

    def cache_key(self) -> str:
        body = json.dumps(self.as_payload(), sort_keys=True)
        return "experiments:attribution:" + hashlib.sha256(body.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class CampaignCredit:
    campaign_id: int
    name: str
    cost: float | None
    credit: dict[str, float]

    def roi(self, model: str) -> float | None:
        """Credited revenue per unit of cost (None when no cost is entered)."""
        return self.credit.get(model, 0.0) / self.cost if self.cost else None


@dataclass(frozen=True)
class AttributionReport:
    models: list[str]
    channels: list[str]
    credit: dict[str, dict[str, float]]  # model -> channel -> credited value
    conversions: dict[str, dict[str, float]]  # model -> channel -> credited conversions
    campaigns: list[CampaignCredit]
    skipped: dict[str, str]
    n_paths: int
    n_touches: int
    n_conversions: float
    total_value: float
    unattributed_conversions: float
    unattributed_value: float
    computed_at: str

    def channel_rows(self) -> list[tuple[str, list[float]]]:
        return [(c, [self.credit[m].get(c, 0.0) for m in self.models]) for c in self.channels]

    def campaign_rows(self) -> list[tuple[CampaignCredit, list[tuple[float, float | None]]]]:
        return [
            (c, [(c.credit.get(m, 0.0), c.roi(m)) for m in self.models]) for c in self.campaigns
        ]


@dataclass(frozen=True)
class _Columns:
    customer: np.ndarray
    ts: np.ndarray
    channel: np.ndarray  # index into channel_names, -1 on conversion rows
    channel_names: tuple[str, ...]
    campaign: np.ndarray  # campaign pk or -1
    conv: np.ndarray
    value: np.ndarray


def _columns_load(params: dict[str, Any]) -> _Columns:
    """The rows as numpy columns: stored once in a temporary table (to list the distinct
    channels), then sent sorted by binary COPY and viewed as one structured array, with no
    Python object per row (about 10x faster than fetching tuples)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE attribution_rows ON COMMIT DROP AS " + _ROWS_UNION, params
        )
        cursor.execute("SELECT DISTINCT channel FROM attribution_rows WHERE channel <> ''")
        names = sorted(row[0] for row in cursor.fetchall())
        data = bytearray()
        with cursor.cursor.copy(_ROWS_COPY, [names]) as copy:
            for block in copy:
                data += block
        cursor.execute("DROP TABLE attribution_rows")
    rows = np.frombuffer(
        bytes(data[_COPY_HEADER : len(data) - _COPY_TRAILER]) if len(data) > 21 else b"",
        dtype=_COPY_ROW,
    )
    return _Columns(
        customer=rows["customer"].astype(np.int64),
        ts=rows["ts"].astype(np.float64),
        channel=rows["channel"].astype(np.int64),
        channel_names=tuple(names),
        campaign=rows["campaign"].astype(np.int64),
        conv=rows["conv"].astype(bool),
        value=rows["value"].astype(np.float64),
    )


def _params(query: AttributionQuery) -> dict[str, Any]:
    return {
        "since": query.since,
        "until": query.until,
        "touch_since": query.since - timedelta(days=query.lookback_days),
        "goals": list(query.goal_types),
        "touch_types": list(TOUCH_EVENT_TYPES),
        "direct": DIRECT,
    }


def attribution_paths_load(*, query: AttributionQuery) -> Paths:
    """The paths of the period, built by the same code as the CSV command."""
    params = _params(query)
    cols = _columns_load(params)
    keep = np.ones(len(cols.customer), dtype=bool)
    with connection.cursor() as cursor:
        cursor.execute(_EARLIER_CONVERSIONS, params)
        earlier = dict(cursor.fetchall())
    if earlier and len(keep):
        ids = np.fromiter(earlier.keys(), dtype=np.int64)
        cutoffs = np.fromiter((float(v) for v in earlier.values()), dtype=np.float64)
        order = np.argsort(ids)
        ids, cutoffs = ids[order], cutoffs[order]
        pos = np.clip(np.searchsorted(ids, cols.customer), 0, len(ids) - 1)
        keep = ~((ids[pos] == cols.customer) & (cols.ts <= cutoffs[pos]) & ~cols.conv)
    # Only the channels and campaigns of the rows kept (a dropped touch names none).
    channel = cols.channel[keep]
    used = np.unique(channel[channel >= 0])
    channel = np.where(channel >= 0, np.searchsorted(used, channel), -1)
    campaign = cols.campaign[keep]
    campaign_ids, campaign_codes = np.unique(campaign, return_inverse=True)
    campaign_codes = campaign_codes.ravel().astype(np.int64)
    if len(campaign_ids) and campaign_ids[0] == -1:
        campaign_ids, campaign_codes = campaign_ids[1:], campaign_codes - 1
    return paths_from_touchpoints(
        journey_ids=cols.customer[keep],
        timestamps=cols.ts[keep],
        channels=channel,
        channel_names=tuple(cols.channel_names[i] for i in used),
        conversions=cols.conv[keep],
        values=cols.value[keep],
        campaigns=campaign_codes,
        campaign_names=tuple(str(c) for c in campaign_ids),
        lookback_days=query.lookback_days,
    )


def attribution_report_compute(
    *, query: AttributionQuery, progress: Callable[[int, str], None] | None = None
) -> AttributionReport:
    """Load the paths, run every model; `progress(step, message)` is told of each of the
    len(MODELS) + 1 steps (the load, then each model)."""
    report_progress = progress or (lambda step, message: None)
    report_progress(0, "Reading touchpoints and conversions")
    paths = attribution_paths_load(query=query)
    results, skipped = [], {}
    for step, model in enumerate(MODELS if paths.n_paths else (), start=1):
        report_progress(step, f"{paths.n_paths:,} paths; running {model.replace('_', ' ')}")
        found, missed = attribute_all(paths, models=[model], settings=query.settings)
        results += found
        skipped.update(missed)
    models = [r.model for r in results]
    credit = {r.model: r.credit_by_channel() for r in results}
    conversions = {r.model: r.conversions_by_channel() for r in results}
    totals = {c: sum(credit[m].get(c, 0.0) for m in models) for c in paths.channels}
    channels = sorted(paths.channels, key=lambda c: (-totals[c], c))
    campaign_ids = [int(c) for c in paths.campaigns if c.isdigit()]
    known = {
        c.pk: c for c in Campaign.objects.filter(pk__in=campaign_ids).only("pk", "name", "cost")
    }
    campaigns = []
    for index, name in enumerate(paths.campaigns):
        if not name.isdigit():
            continue
        pk = int(name)
        row = known.get(pk)
        campaigns.append(
            CampaignCredit(
                campaign_id=pk,
                name=row.name if row else f"campaign {pk} (deleted)",
                cost=float(row.cost) if row and row.cost is not None else None,
                credit={r.model: float(r.campaign_credit[index]) for r in results},
            )
        )
    campaigns.sort(key=lambda c: (-max(c.credit.values(), default=0.0), c.name))
    return AttributionReport(
        models=models,
        channels=channels,
        credit=credit,
        conversions=conversions,
        campaigns=campaigns,
        skipped=skipped,
        n_paths=paths.n_paths,
        n_touches=paths.n_touches,
        n_conversions=float(paths.conversions.sum()),
        total_value=float(paths.value.sum()),
        unattributed_conversions=paths.unattributed_conversions,
        unattributed_value=paths.unattributed_value,
        computed_at=timezone.now().isoformat(),
    )


@dataclass(frozen=True)
class AttributionRequest:
    """What the page shows: the report (computed now or cached), or the job computing it."""

    report: AttributionReport | None
    cached: bool = False
    job: Job | None = None


def attribution_rows_estimate(*, query: AttributionQuery) -> int:
    """The planner's estimate of the rows the report reads (planning only, no execution)."""
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + _ROWS, _params(query))
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


def attribution_report(*, query: AttributionQuery) -> tuple[AttributionReport, bool]:
    """The report, from the Redis cache when the same one was computed less than
    CACHE_SECONDS ago, else computed now; (report, whether it came from the cache)."""
    cached = cache.get(query.cache_key())
    if cached is not None:
        return cached, True
    report = attribution_report_compute(query=query)
    cache.set(query.cache_key(), report, timeout=CACHE_SECONDS)
    return report, False


def attribution_report_request(
    *, query: AttributionQuery, user=None, inline_max_rows: int | None = None
) -> AttributionRequest:
    """The cached report; else the report computed in the request when the planner expects
    at most INLINE_MAX_ROWS rows (a few seconds); else a Celery job computing it, one per
    query however many people ask (the page polls its progress and reloads when done)."""
    key = query.cache_key()
    cached = cache.get(key)
    if cached is not None:
        return AttributionRequest(report=cached, cached=True)
    limit = INLINE_MAX_ROWS if inline_max_rows is None else inline_max_rows
    if attribution_rows_estimate(query=query) <= limit:
        report, was_cached = attribution_report(query=query)
        return AttributionRequest(report=report, cached=was_cached)
    running = cache.get(f"{key}:job")
    job = job_get(pk=running) if running else None
    if job is None or job.status in (JobStatus.DONE, JobStatus.FAILED):
        job = job_create(kind="attribution", total=len(MODELS) + 1, user=user)
        cache.set(f"{key}:job", job.pk, timeout=JOB_CACHE_SECONDS)
        payload = query.as_payload()
        transaction.on_commit(
            lambda: attribution_report_compute_task.delay(job_id=job.pk, query=payload)
        )
    return AttributionRequest(report=None, job=job)


def attribution_report_run(*, job_id: int, query: AttributionQuery) -> None:
    """The Celery job: compute with progress, keep the report in the cache for
    JOB_CACHE_SECONDS (it took a while), finish the job. Running it twice recomputes."""
    job_start(job_id=job_id, total=len(MODELS) + 1)
    try:
        report = attribution_report_compute(
            query=query,
            progress=lambda step, message: job_progress(job_id=job_id, done=step, message=message),
        )
    except Exception as exc:
        job_mark_failed(job_id=job_id, error=f"{type(exc).__name__}: {exc}")
        raise
    cache.set(query.cache_key(), report, timeout=JOB_CACHE_SECONDS)
    job_finish(
        job_id=job_id,
        result={"paths": report.n_paths, "conversions": report.n_conversions},
        message=f"{report.n_paths:,} paths, {report.n_conversions:,.0f} conversions",
    )


def attribution_report_csv(report: AttributionReport) -> str:
    """One row per (level, name, model): credited value and conversions, cost and ROI."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["level", "name", "model", "credit", "conversions", "cost", "roi"])
    for channel in report.channels:
        for model in report.models:
            writer.writerow(
                ["channel", channel, model, round(report.credit[model].get(channel, 0.0), 4),
                 round(report.conversions[model].get(channel, 0.0), 4), "", ""]
            )  # fmt: skip
    for campaign in report.campaigns:
        for model in report.models:
            roi = campaign.roi(model)
            writer.writerow(
                ["campaign", campaign.name, model, round(campaign.credit.get(model, 0.0), 4), "",
                 "" if campaign.cost is None else campaign.cost,
                 "" if roi is None else round(roi, 4)]
            )  # fmt: skip
    return out.getvalue()


def attribution_chart(report: AttributionReport) -> list[dict]:
    """Grouped bars: credited value per channel, one bar per model, value printed on it."""
    return [
        {
            "type": "bar",
            "name": model.replace("_", " "),
            "x": report.channels,
            "y": [round(report.credit[model].get(c, 0.0), 2) for c in report.channels],
            "hovertemplate": f"{model}: %{{y:,.2f}}<extra>%{{x}}</extra>",
        }
        for model in report.models
    ]
