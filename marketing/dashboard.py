"""What the live dashboard shows, read from the rollups (marketing/rollups.py) only.

A window is a handful of rollup rows: the last hour is 60 minute buckets, the last day 25
hour buckets, the last 30 days 31 day buckets, plus the Redis counters of the minutes the
beat has not flushed yet (so the page is seconds behind the stream, not a minute). Distinct
active customers of the whole window come from a PFCOUNT over its HyperLogLogs (a union,
which no sum of per-bucket counts gives); when Redis lost them, the busiest bucket's count
is shown as a lower bound. Nothing here reads the events table.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from django.db import connection
from django.utils import timezone

from campaigns.models import CampaignStatus
from campaigns.selectors import campaign_list
from experiments.models import ExperimentStatus
from experiments.selectors import experiment_list
from marketing.rollups import (
    DIRTY_KEY,
    SERVED_METRICS,
    STEP,
    floor_epoch,
    hll_key,
    live_key,
    rec_hll_key,
    redis_client,
    redis_name,
)
from marketing.selectors import active_item_count

# window -> (length, grain of its chart, the Redis HLL grain of its distinct count)
WINDOWS: dict[str, tuple[timedelta, str, str]] = {
    "hour": (timedelta(hours=1), "minute", "m"),
    "day": (timedelta(days=1), "hour", "h"),
    "30d": (timedelta(days=30), "day", "d"),
}
WINDOW_LABELS = {"hour": "Last hour", "day": "Last 24 hours", "30d": "Last 30 days"}
GRAIN_SHORT = {"minute": "m", "hour": "h", "day": "d"}
TOP_LIMIT = 8
CHART_METRICS = ("events", "revenue", "conversions", "active", "messages")
READ_METRICS = (*CHART_METRICS, "rec_clicks", *SERVED_METRICS)
# Distinct counts per bucket: a window's figure is a HyperLogLog union, not their sum.
DISTINCT_METRICS = ("active", "rec_distinct")
STAGES = ("sent", "delivered", "opened", "clicked", "converted")


@dataclass
class Dashboard:
    window: str
    grain: str
    since: datetime
    buckets: list[datetime] = field(default_factory=list)
    # metric -> key -> bucket -> value
    series: dict[str, dict[str, dict[datetime, float]]] = field(default_factory=dict)
    totals: dict[str, dict[str, float]] = field(default_factory=dict)
    active_customers: int = 0
    active_exact: bool = True
    top_items: list[tuple[str, float, float]] = field(default_factory=list)
    top_offers: list[tuple[str, float, float, float | None]] = field(default_factory=list)
    rec_distinct_items: int = 0
    rec_distinct_exact: bool = True
    catalog_items: int = 0

    def total(self, metric: str, key: str = "") -> float:
        return self.totals.get(metric, {}).get(key, 0.0)

    @property
    def events_total(self) -> float:
        return sum(self.totals.get("events", {}).values())

    @property
    def offer_ctr(self) -> float | None:
        shown = self.total("events", "offer_shown")
        return self.total("events", "offer_click") / shown if shown else None

    @property
    def conversions(self) -> float:
        return self.total("conversions")

    @property
    def revenue(self) -> float:
        return self.total("revenue")

    @property
    def offers_shown(self) -> float:
        return self.total("events", "offer_shown")

    @property
    def offers_clicked(self) -> float:
        return self.total("events", "offer_click")

    @property
    def rec_lists(self) -> float:
        return self.total("rec_lists")

    @property
    def rec_impressions(self) -> float:
        return self.total("rec_items")

    @property
    def rec_clicks(self) -> float:
        return self.total("rec_clicks")

    @property
    def rec_ctr(self) -> float | None:
        """Clicks on recommended items per recommended item served."""
        return self.rec_clicks / self.rec_impressions if self.rec_impressions else None

    @property
    def rec_diversity(self) -> float | None:
        """Mean intra-list diversity (share of item pairs from different categories)."""
        lists = self.total("rec_ild_lists")
        return self.total("rec_ild") / lists if lists else None

    @property
    def rec_coverage(self) -> float | None:
        """Distinct items recommended in the window / active catalog items."""
        if not self.catalog_items or not self.rec_impressions:
            return None
        return min(self.rec_distinct_items / self.catalog_items, 1.0)

    @property
    def rec_distinct_share(self) -> float | None:
        """Distinct items / items served: how much the lists repeat the same items."""
        if not self.rec_impressions:
            return None
        return min(self.rec_distinct_items / self.rec_impressions, 1.0)

    @property
    def events_by_type(self) -> list[tuple[str, float]]:
        return sorted(self.totals.get("events", {}).items(), key=lambda kv: (-kv[1], kv[0]))

    @property
    def message_rows(self) -> list[tuple[str, list[float]]]:
        """(channel, counts in STAGES order) for the funnel table."""
        return [
            (channel, [stages.get(s, 0.0) for s in STAGES])
            for channel, stages in self.messages_by_channel().items()
        ]

    def messages_by_channel(self) -> dict[str, dict[str, float]]:
        funnel: dict[str, dict[str, float]] = defaultdict(dict)
        for key, value in self.totals.get("messages", {}).items():
            channel, _, stage = key.partition(":")
            funnel[channel][stage] = value
        return dict(sorted(funnel.items()))


def _bucket_floor(at: datetime, grain: str) -> datetime:
    return datetime.fromtimestamp(floor_epoch(at.timestamp(), GRAIN_SHORT[grain]), tz=UTC)


def _live_counters(
    since: datetime, now: datetime, grain: str
) -> list[tuple[datetime, str, str, float]]:
    """Counters of the minutes not flushed yet, as rollup rows of `grain`. Buckets after
    `now` (events a client stamped in the future) wait until their time comes."""
    try:
        client = redis_client()
        minutes = [int(m) for m in client.smembers(redis_name(DIRTY_KEY))]
        minutes = [m for m in minutes if since.timestamp() <= m <= now.timestamp()]
        if not minutes:
            return []
        pipe = client.pipeline(transaction=False)
        for minute in minutes:
            pipe.hgetall(live_key(minute))
        hashes = pipe.execute()
    except redis.RedisError:
        return []
    rows = []
    for minute, fields in zip(minutes, hashes, strict=True):
        bucket = _bucket_floor(datetime.fromtimestamp(minute, tz=UTC), grain)
        for name, value in fields.items():
            metric, _, key = name.decode().partition("|")
            if metric in READ_METRICS:
                rows.append((bucket, metric, key, float(value)))
    return rows


def _active_union(
    since: datetime, now: datetime, hll_grain: str, key_of: Any = hll_key
) -> int | None:
    step = STEP[hll_grain]
    first = floor_epoch(since.timestamp(), hll_grain)
    keys = [key_of(hll_grain, b) for b in range(first, int(now.timestamp()) + 1, step)]
    try:
        return int(redis_client().pfcount(*keys))
    except redis.RedisError:
        return None


_TOP = """
SELECT key, sum(value) FILTER (WHERE metric = %(a)s) AS a,
       sum(value) FILTER (WHERE metric = %(b)s) AS b
FROM marketing_metricrollup
WHERE grain = %(grain)s AND metric IN (%(a)s, %(b)s) AND bucket >= %(since)s
  AND bucket <= %(now)s
GROUP BY key ORDER BY 2 DESC NULLS LAST, 1 LIMIT %(limit)s
"""


def _top(
    grain: str, since: datetime, now: datetime, a: str, b: str
) -> list[tuple[str, float, float]]:
    params: dict[str, Any] = {
        "grain": grain,
        "since": since,
        "now": now,
        "a": a,
        "b": b,
        "limit": TOP_LIMIT,
    }
    with connection.cursor() as cursor:
        cursor.execute(_TOP, params)
        return [(key, float(x or 0), float(y or 0)) for key, x, y in cursor.fetchall()]


def dashboard_for_window(*, window: str, now: datetime | None = None) -> Dashboard:
    """The figures, series and top lists of one window (a key of WINDOWS)."""
    now = now or timezone.now()
    length, grain, hll_grain = WINDOWS[window]
    since = _bucket_floor(now - length, grain)
    if grain == "minute":
        since += timedelta(minutes=1)  # 60 buckets, the current one included
    board = Dashboard(window=window, grain=grain, since=since)
    step = timedelta(seconds=STEP[GRAIN_SHORT[grain]])
    at = since
    while at <= now:
        board.buckets.append(at)
        at += step
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT bucket, metric, key, value FROM marketing_metricrollup
               WHERE grain = %s AND metric = ANY(%s) AND bucket >= %s AND bucket <= %s""",
            [grain, list(READ_METRICS), since, now],
        )
        rows = cursor.fetchall()
    rows += _live_counters(since, now, grain)
    series: dict[str, dict[str, dict[datetime, float]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(float))
    )
    for bucket, metric, key, value in rows:
        series[metric][key][bucket] += value
    board.series = series
    board.totals = {
        metric: {key: sum(values.values()) for key, values in keys.items()}
        for metric, keys in series.items()
        if metric not in DISTINCT_METRICS
    }
    union = _active_union(since, now, hll_grain)
    busiest = max(series.get("active", {}).get("", {}).values(), default=0.0)
    if union:
        board.active_customers = union
    else:
        board.active_customers, board.active_exact = int(busiest), False
    if board.rec_impressions:
        rec_union = _active_union(since, now, hll_grain, rec_hll_key)
        rec_busiest = max(series.get("rec_distinct", {}).get("", {}).values(), default=0.0)
        if rec_union:
            board.rec_distinct_items = rec_union
        else:
            board.rec_distinct_items, board.rec_distinct_exact = int(rec_busiest), False
        board.catalog_items = active_item_count()
    # Items and offers keep hour and day buckets only (see rollups.HOURLY_ONLY).
    top_grain = "day" if grain == "day" else "hour"
    top_since = _bucket_floor(now - length, top_grain)
    board.top_items = _top(top_grain, top_since, now, "item_view", "item_purchase")
    board.top_offers = [
        (key, shown, clicked, clicked / shown if shown else None)
        for key, shown, clicked in _top(top_grain, top_since, now, "offer_shown", "offer_click")
    ]
    return board


def _labelled_line(name: str, x: list[str], y: list[float]) -> dict:
    """A line named at its right end (direct label, no legend to hunt through)."""
    return {
        "type": "scatter",
        "mode": "lines+text",
        "name": name,
        "x": x,
        "y": y,
        "text": [""] * (len(x) - 1) + [name],
        "textposition": "middle right",
        "cliponaxis": False,
        "showlegend": False,
        "hovertemplate": f"{name}: %{{y:,.0f}}<extra></extra>",
    }


def dashboard_charts(board: Dashboard) -> dict[str, list[dict]]:
    """Plotly traces of the page: events per bucket by type, revenue and conversions, and the
    message funnel per channel (bars labelled with channel and count)."""
    x = [b.isoformat() for b in board.buckets]
    events = board.series.get("events", {})
    ranked = sorted(events, key=lambda t: -sum(events[t].values()))
    charts: dict[str, list[dict]] = {
        "events": [
            _labelled_line(t, x, [events[t].get(b, 0.0) for b in board.buckets]) for t in ranked
        ]
    }
    revenue = board.series.get("revenue", {}).get("", {})
    charts["revenue"] = (
        [
            {
                "type": "bar",
                "name": "revenue",
                "x": x,
                "y": [round(revenue.get(b, 0.0), 2) for b in board.buckets],
                "showlegend": False,
                "hovertemplate": "%{x}: %{y:,.2f}<extra></extra>",
            }
        ]
        if revenue
        else []
    )
    funnel = board.messages_by_channel()
    charts["messages"] = [
        {
            "type": "bar",
            "name": channel,
            "x": [s for s in STAGES if s in stages],
            "y": [stages[s] for s in STAGES if s in stages],
            "text": [f"{channel} {stages[s]:,.0f}" for s in STAGES if s in stages],
            "textposition": "auto",
            "showlegend": False,
        }
        for channel, stages in funnel.items()
    ]
    return charts


@dataclass(frozen=True)
class Panels:
    campaigns_running: list
    campaigns_recent: list
    campaigns_running_count: int
    experiments_running: list
    experiments_running_count: int


PANEL_LIMIT = 5


def dashboard_panels() -> Panels:
    """Campaigns sending or scheduled, the latest campaigns, running experiments (four small
    indexed queries; the home page composes the apps, it owns none of these rows)."""
    running = campaign_list().filter(status__in=[CampaignStatus.SENDING, CampaignStatus.SCHEDULED])
    experiments = experiment_list(filters={"status": ExperimentStatus.RUNNING})
    return Panels(
        campaigns_running=list(running[:PANEL_LIMIT]),
        campaigns_recent=list(campaign_list()[:PANEL_LIMIT]),
        campaigns_running_count=running.count(),
        experiments_running=list(experiments.prefetch_related(None)[:PANEL_LIMIT]),
        experiments_running_count=experiments.count(),
    )
