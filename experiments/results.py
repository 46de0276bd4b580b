"""The results of an experiment: per-variant sufficient statistics read from the exposures and
the customers' events in one aggregate query per metric, fed to `experiments.stats`.

- Outcome of an exposed customer: the metric's events in the `window_days` after their
  exposure (conversion: any, 0/1; revenue: the sum of the event values; click-through: the
  number of events). The pre-period covariate for CUPED is the same metric in the
  `window_days` before exposure (0 for customers without history), from the same join.
- One query per metric groups by (variant, exposure day), so the totals and the cumulative
  time series (customers exposed up to each day, with their outcomes so far) come from the
  same rows; Python only sums days, never customers.
- Bandits: the configured weights changed along the way, so the per-variant means mix
  periods; the inverse propensity weighted estimates (bandits.ipw_estimate, on the
  propensities logged with each exposure) are reported next to them, and the SRM check is
  skipped (there is no fixed expected split).
- Sequential test: each look stores the always-valid p-value per variant and day
  (SequentialLook); the next look starts from the smallest stored value, so the figure shown
  only goes down however often the page is read.

The whole result is cached for CACHE_SECONDS: the page and the API share it, and a busy page
costs one computation per minute.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from experiments import stats
from experiments.bandits import ipw_estimate
from experiments.models import Allocation, Experiment, MetricKind, SequentialLook, Variant

CACHE_SECONDS = 60
PRIMARY = "primary"
# Guardrail events whose increase is the harm (for the others, a drop is).
HARMFUL_EVENTS = frozenset({"unsubscribe"})

# The per-customer outcome `y` and pre-period covariate `x` of each metric kind, from the
# counts and value sums of the events after (`a`) and before (`b`) exposure.
_OUTCOME: dict[str, tuple[str, str]] = {
    MetricKind.CONVERSION: ("(a_count > 0)::int::float8", "(b_count > 0)::int::float8"),
    MetricKind.REVENUE: ("a_sum", "b_sum"),
    MetricKind.CLICK_THROUGH: ("a_count::float8", "b_count::float8"),
}

_PER_CUSTOMER = """
WITH windowed AS (
    SELECT e.variant_id, e.propensity, (e.exposed_at AT TIME ZONE 'UTC')::date AS day,
        COUNT(ev.id) FILTER (WHERE ev.occurred_at >= e.exposed_at) AS a_count,
        COALESCE(SUM(ev.value::float8) FILTER (WHERE ev.occurred_at >= e.exposed_at), 0) AS a_sum,
        COUNT(ev.id) FILTER (WHERE ev.occurred_at < e.exposed_at) AS b_count,
        COALESCE(SUM(ev.value::float8) FILTER (WHERE ev.occurred_at < e.exposed_at), 0) AS b_sum
    FROM experiments_exposure e
    LEFT JOIN profiles_event ev
        ON ev.customer_id = e.customer_id AND ev.type = %(event_type)s
        AND ev.occurred_at >= e.exposed_at - %(window)s * interval '1 day'
        AND ev.occurred_at < e.exposed_at + %(window)s * interval '1 day'
    WHERE e.experiment_id = %(experiment)s
    GROUP BY e.id
), per_customer AS (
    SELECT variant_id, propensity, day, {y} AS y, {x} AS x FROM windowed
)
"""

_SUMS_SQL = """
SELECT variant_id, day, COUNT(*), SUM(y), SUM(y * y), SUM(x), SUM(x * x), SUM(x * y)
FROM per_customer GROUP BY variant_id, day ORDER BY day
"""

# Per customer, but as three arrays straight into numpy (no Python loop over customers).
_IPW_SQL = """
SELECT COALESCE(array_agg(variant_id), '{{}}'), COALESCE(array_agg(propensity), '{{}}'),
    COALESCE(array_agg(y), '{{}}')
FROM per_customer WHERE variant_id IS NOT NULL
"""


@dataclass(frozen=True)
class Metric:
    event_type: str
    window_days: int
    kind: str

    @property
    def label(self) -> str:
        return f"{self.event_type}:{self.window_days}d:{self.kind}"

    def to_dict(self) -> dict:
        return {"event_type": self.event_type, "window_days": self.window_days, "kind": self.kind}


@dataclass
class Sums:
    n: int = 0
    sum_y: float = 0.0
    sum_y2: float = 0.0
    sum_x: float = 0.0
    sum_x2: float = 0.0
    sum_xy: float = 0.0

    def add(self, row: tuple) -> None:
        self.n += row[0]
        self.sum_y += row[1]
        self.sum_y2 += row[2]
        self.sum_x += row[3]
        self.sum_x2 += row[4]
        self.sum_xy += row[5]

    def moments(self) -> stats.SampleMoments:
        return stats.SampleMoments.from_sums(n=self.n, total=self.sum_y, total_sq=self.sum_y2)

    def binomial(self) -> stats.BinomialStats:
        return stats.BinomialStats(n=self.n, successes=round(self.sum_y))

    def cuped(self) -> stats.CupedSums:
        return stats.CupedSums(
            self.n, self.sum_y, self.sum_y2, self.sum_x, self.sum_x2, self.sum_xy
        )


def _params(experiment: Experiment, metric: Metric) -> dict:
    return {
        "experiment": experiment.pk,
        "event_type": metric.event_type,
        "window": metric.window_days,
    }


def _prefix(metric: Metric) -> str:
    y, x = _OUTCOME.get(metric.kind, _OUTCOME[MetricKind.CONVERSION])
    return _PER_CUSTOMER.format(y=y, x=x)


def metric_daily_sums(
    *, experiment: Experiment, metric: Metric
) -> dict[int | None, dict[date, tuple]]:
    """variant id (None = held out) -> exposure day -> (n, Σy, Σy², Σx, Σx², Σxy)."""
    with connection.cursor() as cursor:
        cursor.execute(_prefix(metric) + _SUMS_SQL, _params(experiment, metric))
        rows = cursor.fetchall()
    out: dict[int | None, dict[date, tuple]] = defaultdict(dict)
    for variant_id, day, *sums in rows:
        out[variant_id][day] = tuple(float(v or 0) if i else int(v) for i, v in enumerate(sums))
    return out


def arm_counts(
    *, experiment: Experiment, metric: Metric, variants: list[Variant]
) -> dict[str, tuple[int, int]]:
    """Per variant key: (exposed customers, customers with the metric's event in the window)."""
    daily = metric_daily_sums(experiment=experiment, metric=metric)
    totals = {v.key: _totals(daily.get(v.pk, {})) for v in variants}
    return {key: (s.n, round(s.sum_y)) for key, s in totals.items()}


def metric_ipw(*, experiment: Experiment, metric: Metric, variants: list[Variant]) -> dict:
    """Per variant key: the inverse propensity weighted mean outcome (bandits.ipw_estimate)."""
    with connection.cursor() as cursor:
        cursor.execute(_prefix(metric) + _IPW_SQL.format(), _params(experiment, metric))
        variant_ids, propensities, outcomes = cursor.fetchone()
    index = {v.pk: i for i, v in enumerate(variants)}
    arms = np.array([index[v] for v in variant_ids], dtype=np.int64)
    estimate = ipw_estimate(arms, propensities, outcomes, n_arms=len(variants)).to_dict()
    return {
        v.key: stats.base.jsonable({name: values[i] for name, values in estimate.items()})
        for i, v in enumerate(variants)
    }


def _totals(daily: dict[date, tuple]) -> Sums:
    total = Sums()
    for row in daily.values():
        total.add(row)
    return total


def _analyze(
    metric: Metric,
    sums: dict[str, Sums],
    *,
    control: str,
    weights: dict[str, float] | None,
    previous: dict[str, float] | None = None,
) -> stats.Analysis | None:
    if min(s.n for s in sums.values()) < 2:
        return None
    if metric.kind == MetricKind.CONVERSION:
        return stats.analyze_conversions(
            {k: s.binomial() for k, s in sums.items()},
            control=control,
            weights=weights,
            previous_sequential_p=previous,
        )
    return stats.analyze_means(
        {k: s.moments() for k, s in sums.items()},
        control=control,
        weights=weights,
        previous_sequential_p=previous,
    )


def _previous_p(experiment: Experiment, label: str) -> dict[str, float]:
    rows = SequentialLook.objects.filter(experiment=experiment, metric=label).values_list(
        "variant__key", "p_value"
    )
    best: dict[str, float] = {}
    for key, p in rows:
        best[key] = min(p, best.get(key, 1.0))
    return best


def _store_looks(
    experiment: Experiment, label: str, analysis: stats.Analysis, variants: dict[str, Variant]
) -> None:
    """Today's look per variant; the value is already the minimum over the earlier looks
    (msprt_test starts from them), so overwriting today's row never raises it."""
    users = {v.variant: v.n for v in analysis.variants}
    today = timezone.now().date()
    SequentialLook.objects.bulk_create(
        [
            SequentialLook(
                experiment=experiment,
                variant=variants[c.variant],
                metric=label,
                day=today,
                p_value=min(max(c.sequential.p_value, 0.0), 1.0),
                users=users[c.variant],
            )
            for c in analysis.comparisons
        ],
        update_conflicts=True,
        unique_fields=["experiment", "variant", "metric", "day"],
        update_fields=["p_value", "users"],
    )


def _timeline(
    metric: Metric,
    daily: dict[int | None, dict[date, tuple]],
    variants: list[Variant],
    control: str,
) -> dict:
    """Cumulative users and metric per variant at the end of each exposure day, and each
    variant's lift over control with its interval (the fixed-horizon one at that day)."""
    days = sorted({d for v in variants for d in daily.get(v.pk, {})})
    running = {v.key: Sums() for v in variants}
    series: dict[str, dict[str, list]] = {
        v.key: {"users": [], "value": [], "lower": [], "upper": []} for v in variants
    }
    lift: dict[str, dict[str, list]] = {
        v.key: {"estimate": [], "lower": [], "upper": []} for v in variants if v.key != control
    }
    for day in days:
        for v in variants:
            if row := daily.get(v.pk, {}).get(day):
                running[v.key].add(row)
        analysis = _analyze(metric, running, control=control, weights=None)
        summaries = {s.variant: s for s in analysis.variants} if analysis else {}
        for v in variants:
            point = summaries[v.key].value if v.key in summaries else None
            series[v.key]["users"].append(running[v.key].n)
            series[v.key]["value"].append(point.estimate if point else None)
            series[v.key]["lower"].append(point.lower if point else None)
            series[v.key]["upper"].append(point.upper if point else None)
        comparisons = {c.variant: c.absolute_lift for c in analysis.comparisons} if analysis else {}
        for key, values in lift.items():
            interval = comparisons.get(key)
            values["estimate"].append(interval.estimate if interval else None)
            values["lower"].append(interval.lower if interval else None)
            values["upper"].append(interval.upper if interval else None)
    return stats.base.jsonable(
        {"days": [d.isoformat() for d in days], "variants": series, "lift": lift}
    )


def _guardrail(
    experiment: Experiment,
    metric: Metric,
    variants: list[Variant],
    control: str,
    weights: dict[str, float] | None,
) -> dict:
    """A guardrail is breached by a variant significantly worse than control on it: the
    Holm-adjusted z / Welch p-value below alpha, with a lift in the harmful direction (up
    for HARMFUL_EVENTS such as unsubscribes, down for the rest). It is an alarm, so it uses
    the more sensitive fixed-horizon test rather than the sequential gate of the verdict
    (whose default mixture is narrow for large harms): a false alarm costs a look, a missed
    harm costs customers."""
    daily = metric_daily_sums(experiment=experiment, metric=metric)
    sums = {v.key: _totals(daily.get(v.pk, {})) for v in variants}
    label = f"guardrail:{metric.label}"[:80]
    analysis = _analyze(
        metric, sums, control=control, weights=weights, previous=_previous_p(experiment, label)
    )
    if analysis is not None:
        _store_looks(experiment, label, analysis, {v.key: v for v in variants})
    harm = 1 if metric.event_type in HARMFUL_EVENTS else -1
    breached = [
        c.variant
        for c in (analysis.comparisons if analysis else [])
        if c.p_value_adjusted < analysis.alpha and harm * c.absolute_lift.estimate > 0  # type: ignore[union-attr]
    ]
    return {
        "metric": metric.to_dict(),
        "analysis": analysis.to_dict() if analysis else None,
        "breached": breached,
    }


def _sequential_history(experiment: Experiment) -> dict[str, list[dict]]:
    history: dict[str, list[dict]] = defaultdict(list)
    looks = SequentialLook.objects.filter(experiment=experiment, metric=PRIMARY).values_list(
        "variant__key", "day", "p_value", "users"
    )
    for key, day, p, users in looks.order_by("variant", "day"):
        history[key].append({"day": day.isoformat(), "p_value": p, "users": users})
    return dict(history)


def experiment_results_compute(*, experiment: Experiment) -> dict[str, Any]:
    """Every statistic of the experiment as JSON-ready data (see the module docstring).
    Writes today's sequential looks."""
    variants = list(experiment.variants.order_by("pk"))
    control = next((v.key for v in variants if v.is_control), variants[0].key)
    bandit = experiment.allocation != Allocation.FIXED
    weights = None if bandit else {v.key: float(v.weight) for v in variants}
    primary = Metric(
        experiment.metric_event_type, experiment.metric_window_days, experiment.metric_kind
    )
    daily = metric_daily_sums(experiment=experiment, metric=primary)
    sums = {v.key: _totals(daily.get(v.pk, {})) for v in variants}
    held_out = _totals(daily.get(None, {}))

    analysis = _analyze(
        primary,
        sums,
        control=control,
        weights=weights,
        previous=_previous_p(experiment, PRIMARY),
    )
    if analysis is not None:
        _store_looks(experiment, PRIMARY, analysis, {v.key: v for v in variants})
        decision = analysis.decision.to_dict()
    else:
        decision = stats.Decision(
            "keep_running",
            f"Keep running: every variant needs exposed users (no verdict before "
            f"{stats.AnalysisConfig().min_users} users per variant)",
        ).to_dict()

    cuped = None
    if analysis is not None and any(s.sum_x2 > 0 for s in sums.values()):
        adjusted = stats.cuped_adjust({k: s.cuped() for k, s in sums.items()})
        cuped = {
            "theta": adjusted.theta,
            "variance_reduction": adjusted.variance_reduction,
            "analysis": stats.analyze_means(
                adjusted.adjusted, control=control, weights=weights
            ).to_dict(),
        }

    guardrails = [
        _guardrail(
            experiment,
            Metric(g["event_type"], int(g.get("window_days", 7)), g.get("kind", "conversion")),
            variants,
            control,
            weights,
        )
        for g in experiment.guardrails
    ]
    return stats.base.jsonable(
        {
            "experiment": {
                "key": experiment.key,
                "name": experiment.name,
                "status": experiment.status,
                "allocation": experiment.allocation,
                "metric": primary.to_dict(),
                "control": control,
            },
            "computed_at": timezone.now().isoformat(),
            "variants": [
                {
                    "key": v.key,
                    "name": v.name,
                    "is_control": v.is_control,
                    "weight": v.weight,
                    "allocation_weight": v.allocation_weight,
                    "users": sums[v.key].n,
                    "total": sums[v.key].sum_y,
                    "mean": sums[v.key].sum_y / sums[v.key].n if sums[v.key].n else math.nan,
                }
                for v in variants
            ],
            "holdout": (
                {"users": held_out.n, "mean": held_out.sum_y / held_out.n} if held_out.n else None
            ),
            "analysis": analysis.to_dict() if analysis else None,
            "decision": decision,
            "cuped": cuped,
            "ipw": metric_ipw(experiment=experiment, metric=primary, variants=variants)
            if bandit
            else None,
            "guardrails": guardrails,
            "timeline": _timeline(primary, daily, variants, control),
            "sequential_history": _sequential_history(experiment),
        }
    )


def experiment_results(*, experiment: Experiment, fresh: bool = False) -> dict[str, Any]:
    """The results, from the cache when computed less than CACHE_SECONDS ago (keyed by the
    experiment's last change, so an edit shows at once)."""
    key = f"exp:results:{experiment.pk}:{experiment.updated_at.timestamp()}"
    if not fresh and (cached := cache.get(key)) is not None:
        return cached
    results = experiment_results_compute(experiment=experiment)
    cache.set(key, results, timeout=CACHE_SECONDS)
    return results
