"""Database-backed attribution: touchpoints and conversions from PostgreSQL, credit from the
Django-free models in experiments/attribution (the code `manage.py attribute` runs on CSV).

Touchpoints of a customer are
  * tracked events with a channel and/or a campaign: email opens and clicks, SMS clicks,
    push opens, offer impressions and clicks, and visits (view / click); a visit's channel is
    its traffic source when the storefront sent one (`utm_source` or `source` in the
    properties), else "direct";
  * campaign messages sent (an impression of their channel and campaign).
A conversion is a goal event (default purchase) with its value. Rows are read in one ordered
query through a server-side cursor, in chunks, straight into numpy arrays (no model objects),
already grouped by customer and time, which is the order `paths_from_touchpoints` checks for
in one pass instead of sorting.

A conversion just before the period would otherwise leave its touches to the next purchase in
the period; the touches at or before each customer's last pre-period conversion (within the
lookback) are dropped, as they were credited to that earlier one.

Results are cached in Redis for CACHE_SECONDS per (period, goal, lookback, settings): the
page, its refreshes and the CSV export of the same report compute it once. All models over
the paths of a month of a mid-size store take seconds (benchmarks/attribution_models.py: all
models over 1,000,000 paths in well under a minute), which a request can afford once per
cache period; a store much larger than that would move this into a Celery task with a Job.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from campaigns.models import Campaign
from experiments.attribution import (
    AttributionSettings,
    Paths,
    attribute_all,
    paths_from_touchpoints,
)

CACHE_SECONDS = 300
FETCH_CHUNK = 50_000
TOUCH_EVENT_TYPES = (
    "email_open", "email_click", "sms_click", "push_open", "offer_shown", "offer_click",
    "click", "view",
)  # fmt: skip
DIRECT = "direct"

# One ordered stream: touch events, messages sent, goal events. Conversion rows sort after
# touches of the same instant (conv last in the ORDER BY), as the path builder expects.
_ROWS = """
SELECT customer_id, ts, channel, campaign, conv, value FROM (
    SELECT e.customer_id, extract(epoch FROM e.occurred_at) AS ts,
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
        coalesce(e.campaign_id::text, '') AS campaign, false AS conv, 0::float8 AS value
    FROM profiles_event e
    WHERE e.type = ANY(%(touch_types)s) AND e.occurred_at >= %(touch_since)s
      AND e.occurred_at < %(until)s AND (e.channel <> '' OR e.campaign_id IS NOT NULL)
    UNION ALL
    SELECT m.customer_id, extract(epoch FROM m.sent_at), m.channel, m.campaign_id::text,
        false, 0::float8
    FROM campaigns_message m
    WHERE m.sent_at >= %(touch_since)s AND m.sent_at < %(until)s
    UNION ALL
    SELECT e.customer_id, extract(epoch FROM e.occurred_at), '', '', true,
        coalesce(e.value, 0)::float8
    FROM profiles_event e
    WHERE e.type = ANY(%(goals)s) AND e.occurred_at >= %(since)s AND e.occurred_at < %(until)s
) AS rows
ORDER BY customer_id, ts, conv
"""

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

    def cache_key(self) -> str:
        body = json.dumps(
            {
                "since": self.since.isoformat(),
                "until": self.until.isoformat(),
                "goals": self.goal_types,
                "lookback": self.lookback_days,
                "settings": asdict(self.settings),
            },
            sort_keys=True,
        )
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


def _fetch(sql: str, params: dict) -> list[tuple]:
    """All rows of `sql` through a server-side cursor, FETCH_CHUNK at a time."""
    rows: list[tuple] = []
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while chunk := cursor.fetchmany(FETCH_CHUNK):
            rows.extend(chunk)
    return rows


def attribution_paths_load(*, query: AttributionQuery) -> Paths:
    """The paths of the period, built by the same code as the CSV command."""
    params: dict[str, Any] = {
        "since": query.since,
        "until": query.until,
        "touch_since": query.since - timedelta(days=query.lookback_days),
        "goals": list(query.goal_types),
        "touch_types": list(TOUCH_EVENT_TYPES),
        "direct": DIRECT,
    }
    rows = _fetch(_ROWS, params)
    if rows:
        customer, ts, channel, campaign, conv, value = (
            np.array(c) for c in zip(*rows, strict=True)
        )
        customer = customer.astype(np.int64)
        ts = ts.astype(np.float64)
        conv = conv.astype(bool)
        with connection.cursor() as cursor:
            cursor.execute(_EARLIER_CONVERSIONS, params)
            earlier = dict(cursor.fetchall())
        if earlier:
            ids = np.fromiter(earlier.keys(), dtype=np.int64)
            cutoffs = np.fromiter((float(v) for v in earlier.values()), dtype=np.float64)
            order = np.argsort(ids)
            ids, cutoffs = ids[order], cutoffs[order]
            pos = np.clip(np.searchsorted(ids, customer), 0, len(ids) - 1)
            before = (ids[pos] == customer) & (ts <= cutoffs[pos]) & ~conv
            keep = ~before
            customer, ts, channel, campaign, conv, value = (
                a[keep] for a in (customer, ts, channel, campaign, conv, value)
            )
    else:
        customer = ts = value = np.zeros(0)
        channel = campaign = np.zeros(0, dtype=str)
        conv = np.zeros(0, dtype=bool)
    return paths_from_touchpoints(
        journey_ids=customer,
        timestamps=ts,
        channels=channel.astype(str),
        conversions=conv,
        values=value.astype(np.float64),
        campaigns=campaign.astype(str),
        lookback_days=query.lookback_days,
    )


def attribution_report_compute(*, query: AttributionQuery) -> AttributionReport:
    paths = attribution_paths_load(query=query)
    results, skipped = attribute_all(paths, settings=query.settings) if paths.n_paths else ([], {})
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


def attribution_report(*, query: AttributionQuery) -> tuple[AttributionReport, bool]:
    """The report, from the Redis cache when the same one was computed less than
    CACHE_SECONDS ago; (report, whether it came from the cache)."""
    key = query.cache_key()
    cached = cache.get(key)
    if cached is not None:
        return cached, True
    report = attribution_report_compute(query=query)
    cache.set(key, report, timeout=CACHE_SECONDS)
    return report, False


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
