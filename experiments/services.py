"""Every state change of experiments: definition, start and stop, reweighting, and copying
the exposures the assignment path buffered in Redis into PostgreSQL."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import redis
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from campaigns.models import Campaign, CampaignStatus
from experiments import bandits, selectors
from experiments.assignment import shares
from experiments.errors import ExperimentInvalidError, ExperimentStatusError
from experiments.models import (
    Allocation,
    AllocationChange,
    Experiment,
    ExperimentKind,
    ExperimentStatus,
    MetricKind,
    Variant,
)
from experiments.results import Metric, arm_counts
from experiments.serving import (
    EXPOSURE_BUFFER,
    experiment_cache_invalidate,
    redis_client,
    redis_key,
)
from experiments.sticky import sticky_marker_drop, sticky_marker_set, sticky_renamed_store
from profiles.models import Segment
from profiles.services import customers_resolve

logger = logging.getLogger(__name__)

EXPOSURES_FLUSH_BATCH = 5_000
EXPOSURES_FLUSH_MAX_BATCHES = 20
FLUSH_LOCK = "exp:flush-lock"
FLUSH_LOCK_SECONDS = 120
# A reweighting younger than this is not repeated (a redelivered or doubled task is a no-op).
REWEIGHT_MIN_SECONDS = 300


@dataclass(frozen=True)
class VariantSpec:
    key: str
    weight: int = 1
    name: str = ""
    is_control: bool = False
    config: dict = field(default_factory=dict)


@dataclass(frozen=True)
class MetricSpec:
    event_type: str
    window_days: int = 7
    kind: str = MetricKind.CONVERSION


def variants_problems(variants: Sequence[VariantSpec]) -> list[str]:
    """Why these variants cannot make an experiment (empty when they can)."""
    problems = []
    if len(variants) < 2:
        problems.append("An experiment needs at least 2 variants.")
    keys = [v.key for v in variants]
    if duplicates := sorted({k for k in keys if keys.count(k) > 1}):
        problems.append(f"Variant keys must be unique: {', '.join(duplicates)}.")
    if sum(v.is_control for v in variants) > 1:
        problems.append("Only one variant can be the control.")
    if variants and sum(v.weight for v in variants) <= 0:
        problems.append("At least one variant needs a weight above 0.")
    return problems


@transaction.atomic
def experiment_create(
    *,
    key: str,
    variants: Sequence[VariantSpec],
    metric: MetricSpec,
    name: str = "",
    hypothesis: str = "",
    allocation: str = Allocation.FIXED,
    traffic_percent: float = 100.0,
    holdout_percent: float = 0.0,
    audience_segment: Segment | None = None,
    guardrails: Sequence[MetricSpec] = (),
    bandit_burn_in: int = 100,
    bandit_min_share: float = 0.01,
    bandit_epsilon: float = 0.1,
) -> Experiment:
    """A draft experiment. Without a variant marked as control, the first one is."""
    if problems := variants_problems(variants):
        raise ExperimentInvalidError("Invalid input.", extra={"fields": {"variants": problems}})
    if allocation != Allocation.FIXED and bandit_min_share * len(variants) > 1:
        raise ExperimentInvalidError.for_field(
            "allocation_params",
            f"A min_share of {bandit_min_share} for {len(variants)} variants is more than all "
            "the traffic.",
        )
    try:
        with transaction.atomic():
            experiment = Experiment.objects.create(
                key=key,
                name=name or key,
                hypothesis=hypothesis,
                kind=ExperimentKind.AB if allocation == Allocation.FIXED else ExperimentKind.BANDIT,
                allocation=allocation,
                traffic_percent=traffic_percent,
                holdout_percent=holdout_percent,
                audience_segment=audience_segment,
                metric_event_type=metric.event_type,
                metric_window_days=metric.window_days,
                metric_kind=metric.kind,
                guardrails=[_metric_json(g) for g in guardrails],
                bandit_burn_in=bandit_burn_in,
                bandit_min_share=bandit_min_share,
                bandit_epsilon=bandit_epsilon,
            )
    except IntegrityError as exc:
        taken = "key" if Experiment.objects.filter(key=key).exists() else "name"
        raise ExperimentInvalidError.for_field(
            taken, f"An experiment with this {taken} already exists."
        ) from exc
    _variants_create(experiment, variants)
    transaction.on_commit(experiment_cache_invalidate)
    return selectors.experiment_get(key=key) or experiment


def _variants_create(experiment: Experiment, variants: Sequence[VariantSpec]) -> None:
    """Without a variant marked as control, the first one is."""
    control = next((i for i, v in enumerate(variants) if v.is_control), 0)
    Variant.objects.bulk_create(
        Variant(
            experiment=experiment,
            key=v.key,
            name=v.name or v.key,
            weight=v.weight,
            is_control=i == control,
            config=v.config,
        )
        for i, v in enumerate(variants)
    )


EDITABLE_FIELDS = (
    "name",
    "hypothesis",
    "audience_segment",
    "traffic_percent",
    "holdout_percent",
    "allocation",
    "bandit_burn_in",
    "bandit_min_share",
    "bandit_epsilon",
)


def experiment_update(
    *,
    experiment: Experiment,
    fields: dict,
    variants: Sequence[VariantSpec],
    metric: MetricSpec,
    guardrails: Sequence[MetricSpec] = (),
) -> Experiment:
    """Change a draft (a started experiment's variants and metric are fixed: its exposures
    and results refer to them). The variants are replaced by `variants`; the key and salt
    stay."""
    if problems := variants_problems(variants):
        raise ExperimentInvalidError("Invalid input.", extra={"fields": {"variants": problems}})
    with transaction.atomic():
        locked = selectors.experiment_qs_for_update().get(pk=experiment.pk)
        if locked.status != ExperimentStatus.DRAFT:
            raise ExperimentStatusError(
                f"Experiment {locked.key!r} has started; only drafts can be edited."
            )
        for name in EDITABLE_FIELDS:
            if name in fields:
                setattr(locked, name, fields[name])
        if locked.allocation != Allocation.FIXED and locked.bandit_min_share * len(variants) > 1:
            raise ExperimentInvalidError.for_field(
                "bandit_min_share",
                f"A min share of {locked.bandit_min_share} for {len(variants)} variants is more "
                "than all the traffic.",
            )
        locked.kind = (
            ExperimentKind.AB if locked.allocation == Allocation.FIXED else ExperimentKind.BANDIT
        )
        locked.metric_event_type = metric.event_type
        locked.metric_window_days = metric.window_days
        locked.metric_kind = metric.kind
        locked.guardrails = [_metric_json(g) for g in guardrails]
        try:
            with transaction.atomic():
                locked.full_clean(exclude=["salt", "campaign"])
                locked.save()
        except IntegrityError as exc:
            raise ExperimentInvalidError.for_field(
                "name", "An experiment with this name already exists."
            ) from exc
        locked.variants.all().delete()
        _variants_create(locked, variants)
        transaction.on_commit(experiment_cache_invalidate)
    return selectors.experiment_get(key=locked.key) or locked


def _metric_json(metric: MetricSpec) -> dict:
    return {"event_type": metric.event_type, "window_days": metric.window_days, "kind": metric.kind}


def experiment_start(*, experiment: Experiment) -> Experiment:
    """Draft to running: the configured weights come into force and are recorded as the
    first allocation. Starting a running experiment changes nothing; a stopped one stays
    stopped (its exposures and results would mix two runs)."""
    with transaction.atomic():
        locked = selectors.experiment_qs_for_update().get(pk=experiment.pk)
        if locked.status == ExperimentStatus.STOPPED:
            raise ExperimentStatusError(f"Experiment {locked.key!r} was stopped; create a new one.")
        if locked.status == ExperimentStatus.DRAFT:
            now = timezone.now()
            locked.status, locked.started_at = ExperimentStatus.RUNNING, now
            locked.save(update_fields=["status", "started_at", "updated_at"])
            variants = list(locked.variants.order_by("pk"))
            _allocation_apply(
                locked,
                variants,
                shares([float(v.weight) for v in variants]),
                reason="start",
                details={},
                at=now,
            )
            transaction.on_commit(experiment_cache_invalidate)
            if locked.allocation != Allocation.FIXED:  # no exposure yet: Redis holds them all
                pk = locked.pk
                transaction.on_commit(lambda: sticky_marker_set(experiment_id=pk))
    return selectors.experiment_get(key=locked.key) or locked


def experiment_stop(*, experiment: Experiment) -> Experiment:
    """Running to stopped: assignment answers `not_running` everywhere from the next call.
    Stopping a stopped experiment changes nothing; a draft was never started."""
    with transaction.atomic():
        locked = selectors.experiment_qs_for_update().get(pk=experiment.pk)
        if locked.status == ExperimentStatus.DRAFT:
            raise ExperimentStatusError(f"Experiment {locked.key!r} has not started.")
        if locked.status == ExperimentStatus.RUNNING:
            locked.status, locked.stopped_at = ExperimentStatus.STOPPED, timezone.now()
            locked.save(update_fields=["status", "stopped_at", "updated_at"])
            transaction.on_commit(experiment_cache_invalidate)
            pk = locked.pk
            transaction.on_commit(lambda: sticky_marker_drop(experiment_id=pk))
    return selectors.experiment_get(key=locked.key) or locked


def experiment_allocation_set(
    *, experiment: Experiment, weights: dict[str, float], reason: str, details: dict | None = None
) -> AllocationChange:
    """Put new weights (by variant key; normalized here) in force, e.g. from a bandit's
    reweighting, and record them. Customers already exposed keep their variant."""
    with transaction.atomic():
        locked = selectors.experiment_qs_for_update().get(pk=experiment.pk)
        if locked.status != ExperimentStatus.RUNNING:
            raise ExperimentStatusError(f"Experiment {locked.key!r} is not running.")
        variants = list(locked.variants.order_by("pk"))
        if unknown := sorted(set(weights) - {v.key for v in variants}):
            raise ExperimentInvalidError.for_field(
                "weights", f"Unknown variants: {', '.join(unknown)}."
            )
        new = shares([float(weights.get(v.key, 0.0)) for v in variants])
        change = _allocation_apply(
            locked, variants, new, reason=reason, details=details or {}, at=timezone.now()
        )
        transaction.on_commit(experiment_cache_invalidate)
    return change


def _allocation_apply(
    experiment: Experiment,
    variants: list[Variant],
    new: list[float],
    *,
    reason: str,
    details: dict,
    at: datetime,
) -> AllocationChange:
    for variant, share in zip(variants, new, strict=True):
        variant.allocation_weight = share
    Variant.objects.bulk_update(variants, ["allocation_weight"])
    return AllocationChange.objects.create(
        experiment=experiment,
        changed_at=at,
        weights={v.key: share for v, share in zip(variants, new, strict=True)},
        reason=reason,
        details=details,
    )


# Exposures of deleted experiments or variants are dropped; the earliest of a customer's
# records wins, and a customer already stored keeps their first exposure (a redelivered or
# re-run flush inserts nothing twice).
_EXPOSURE_INSERT = """
INSERT INTO experiments_exposure (experiment_id, customer_id, variant_id, exposed_at, propensity)
SELECT x.experiment_id, x.customer_id, x.variant_id, x.exposed_at, x.propensity
FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::timestamptz[], %s::float8[])
    AS x(experiment_id, customer_id, variant_id, exposed_at, propensity)
WHERE EXISTS (SELECT 1 FROM experiments_experiment e WHERE e.id = x.experiment_id)
  AND (x.variant_id IS NULL
       OR EXISTS (SELECT 1 FROM experiments_variant v WHERE v.id = x.variant_id))
ORDER BY x.exposed_at
ON CONFLICT (experiment_id, customer_id) DO NOTHING
"""

_UNLOCK_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class FlushResult:
    read: int = 0
    stored: int = 0
    customers_created: int = 0
    skipped: bool = False  # another flush holds the lock


def exposures_flush(*, batch_size: int = EXPOSURES_FLUSH_BATCH) -> FlushResult:
    """Copy buffered exposures into PostgreSQL, creating unknown customers as event
    ingestion does (anonymous profiles, aliases resolved).

    A batch is read, stored, and only then trimmed from the list, so a crash in between
    stores it again next time (a no-op: one row per experiment and customer). One flush at a
    time (a Redis lock): two would trim each other's batches."""
    client = redis_client()
    token = secrets.token_hex(8)
    if not client.set(redis_key(FLUSH_LOCK), token, nx=True, ex=FLUSH_LOCK_SECONDS):
        return FlushResult(skipped=True)
    read = stored = created = 0
    try:
        for _ in range(EXPOSURES_FLUSH_MAX_BATCHES):
            raw = client.lrange(redis_key(EXPOSURE_BUFFER), 0, batch_size - 1)
            if not raw:
                break
            batch_stored, batch_created = _exposures_store(raw)
            client.ltrim(redis_key(EXPOSURE_BUFFER), len(raw), -1)
            read, stored, created = read + len(raw), stored + batch_stored, created + batch_created
            if len(raw) < batch_size:
                break
    finally:
        try:
            client.eval(_UNLOCK_LUA, 1, redis_key(FLUSH_LOCK), token)
        except redis.RedisError:
            logger.warning("flush lock not released; it expires on its own")
    if read:
        logger.info(
            "exposures flushed",
            extra={"read": read, "stored": stored, "customers_created": created},
        )
    return FlushResult(read=read, stored=stored, customers_created=created)


def _exposures_store(raw: list[bytes | str]) -> tuple[int, int]:
    records = []
    for line in raw:
        try:
            experiment_id, customer_id, variant_id, propensity, at = json.loads(line)
            records.append((int(experiment_id), str(customer_id), variant_id, propensity, at))
        except (ValueError, TypeError):
            logger.warning("unreadable exposure record dropped", extra={"record": line[:200]})
    if not records:
        return 0, 0
    with transaction.atomic():
        pks, created = customers_resolve(external_ids=[r[1] for r in records])
        with connection.cursor() as cursor:
            cursor.execute(
                _EXPOSURE_INSERT,
                [
                    [r[0] for r in records],
                    [pks[r[1]] for r in records],
                    [r[2] for r in records],
                    [datetime.fromtimestamp(r[4], tz=UTC) for r in records],
                    [min(1.0, max(1e-9, float(r[3]))) for r in records],
                ],
            )
            stored = cursor.rowcount
    sticky_renamed_store(
        experiment_ids=[r[0] for r in records],
        customer_ids=[pks[r[1]] for r in records],
        sent_ids=[r[1] for r in records],
    )
    return stored, created


def exposure_buffer_size() -> int:
    """Exposures waiting for the flush (the health of the pipeline)."""
    return int(redis_client().llen(redis_key(EXPOSURE_BUFFER)))


@dataclass(frozen=True)
class ReweightResult:
    experiment: str
    changed: bool
    reason: str  # reweighted, burn_in, unchanged, too_soon, not_running, fixed
    weights: dict[str, float] = field(default_factory=dict)


def experiment_bandit_reweight(*, experiment: Experiment) -> ReweightResult:
    """The next weights of a running bandit from its logged outcomes: per arm, the exposed
    customers and those who converted (the metric's event within its window; a bandit's
    reward is Bernoulli whatever the reported metric), through `bandits.allocate` with the
    experiment's burn-in, minimum share and epsilon, put in force by
    `experiment_allocation_set` (which logs the AllocationChange the propensities refer to).

    Idempotent: nothing is written during burn-in, when the weights would not move, or when
    the last reweighting is less than REWEIGHT_MIN_SECONDS old. Thompson sampling is seeded
    with the number of earlier changes, so a run is reproducible and successive runs draw
    afresh."""
    if experiment.status != ExperimentStatus.RUNNING:
        return ReweightResult(experiment.key, False, "not_running")
    if experiment.allocation == Allocation.FIXED:
        return ReweightResult(experiment.key, False, "fixed")
    last = experiment.allocation_changes.order_by("-changed_at", "-pk").first()
    now = timezone.now()
    if (
        last
        and last.reason == "bandit"
        and (now - last.changed_at).total_seconds() < (REWEIGHT_MIN_SECONDS)
    ):
        return ReweightResult(experiment.key, False, "too_soon")
    variants = list(experiment.variants.order_by("pk"))
    counts = arm_counts(
        experiment=experiment,
        metric=Metric(experiment.metric_event_type, experiment.metric_window_days, "conversion"),
        variants=variants,
    )
    n = [counts[v.key][0] for v in variants]
    successes = [counts[v.key][1] for v in variants]
    rules = bandits.AllocationRules(
        burn_in=experiment.bandit_burn_in,
        min_share=experiment.bandit_min_share,
        epsilon=experiment.bandit_epsilon,
    )
    if min(n) < rules.burn_in:
        return ReweightResult(experiment.key, False, "burn_in")
    weights = bandits.allocate(
        experiment.allocation,
        n,
        successes,
        initial_weights=[float(v.weight) for v in variants],
        rules=rules,
        seed=experiment.allocation_changes.count(),
    )
    new = {v.key: float(w) for v, w in zip(variants, weights, strict=True)}
    current = shares(
        [v.weight if v.allocation_weight is None else v.allocation_weight for v in variants]
    )
    if all(abs(new[v.key] - c) < 1e-6 for v, c in zip(variants, current, strict=True)):
        return ReweightResult(experiment.key, False, "unchanged", new)
    experiment_allocation_set(
        experiment=experiment,
        weights=new,
        reason="bandit",
        details={
            "n": dict(zip(new, n, strict=True)),
            "successes": dict(zip(new, successes, strict=True)),
        },
    )
    logger.info("bandit reweighted", extra={"experiment": experiment.key, "weights": new})
    return ReweightResult(experiment.key, True, "reweighted", new)


def bandits_reweight() -> list[ReweightResult]:
    """Reweight every running bandit (the Celery task every 10 minutes)."""
    running = Experiment.objects.filter(status=ExperimentStatus.RUNNING).exclude(
        allocation=Allocation.FIXED
    )
    return [experiment_bandit_reweight(experiment=e) for e in running.order_by("pk")]


def campaign_experiment_create(
    *,
    campaign: Campaign,
    allocation: str = Allocation.FIXED,
    holdout_percent: float = 0.0,
    bandit_burn_in: int = 100,
    bandit_min_share: float = 0.01,
) -> Experiment:
    """Run a campaign as an experiment (an A/B/n test or a bandit over its variants) and
    start it: dispatch then picks each recipient's variant through assignment (sticky, the
    exposure logged with its propensity) instead of the campaign's own weights. Variants
    carry their campaign variant's id in `config`; the first is the control; the metric is
    the campaign's goal (purchase by default) within its window, in whole days."""
    if campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
        # Dispatch keeps the variant of a recipient's existing message; an experiment
        # started mid-send would assign them another one, and its results would count
        # recipients who never saw the variant they were assigned.
        raise ExperimentInvalidError.for_field(
            "campaign",
            "Only a draft or scheduled campaign can run as an experiment: this one has "
            "started sending.",
        )
    variants = list(campaign.variants.order_by("pk"))
    if len(variants) < 2:
        raise ExperimentInvalidError.for_field(
            "variants", "The campaign needs at least 2 variants to run as an experiment."
        )
    if Experiment.objects.filter(campaign=campaign).exists():
        raise ExperimentInvalidError.for_field(
            "campaign", "This campaign already runs as an experiment."
        )
    key = f"campaign-{campaign.pk}"
    with transaction.atomic():
        experiment = experiment_create(
            key=key,
            name=f"Campaign: {campaign.name}"[:200],
            hypothesis=f"Which variant of the campaign {campaign.name!r} reaches its goal most.",
            variants=[
                VariantSpec(
                    key=f"v{v.pk}",
                    name=v.name,
                    weight=v.weight,
                    config={"campaign_variant_id": v.pk},
                )
                for v in variants
            ],
            metric=MetricSpec(
                event_type=campaign.goal_event_type or "purchase",
                window_days=max(1, -(-campaign.goal_window_hours // 24)),
            ),
            allocation=allocation,
            holdout_percent=holdout_percent,
            bandit_burn_in=bandit_burn_in,
            bandit_min_share=bandit_min_share,
        )
        Experiment.objects.filter(pk=experiment.pk).update(campaign=campaign)
        return experiment_start(experiment=experiment)
