"""Online learning and offline evaluation of the offer ranker.

`offer_policy_learn` (every 15 s from beat, and soon after rewards arrive) applies the
rewarded decisions the served state does not include yet, in reward order, to the policy
and publishes it under the next version. Exactly once without a two-phase commit: the rows
are stamped `learned_version = V + 1` in PostgreSQL first, then the state goes to Redis as
version V + 1. A crash between the two leaves Redis at V with rows stamped V + 1; the next
run loads V and applies those rows again, so the published state includes every reward
once. A PostgreSQL snapshot every SNAPSHOT_SECONDS bounds what a lost Redis costs (rows
stamped after the snapshot's version are replayed the same way).

The popularity prior (each offer's smoothed reward when shown first, last 7 days) is
refreshed with the snapshot; the catalog picks it up on its next rebuild.
"""

import json
import logging
import math
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from marketing.models import Job, JobStatus
from marketing.services import job_create, job_finish, job_mark_failed, job_progress, job_start
from recommender.contextual import (
    ApprenticePolicy,
    LoggedDecision,
    PolicyConfig,
)
from recommender.contextual.evaluation import (
    evaluate_logged_policy,
    evaluate_policy,
    evaluate_uniform,
    reward_model_predictions,
)
from recommender.contextual.features import ACTION, CONTEXT
from recommender.models import OfferDecision, OfferPolicySnapshot
from recommender.offers_policy import (
    POPULARITY_KEY,
    VERSION_KEY,
    Ranker,
    configured_policy_config,
    ranker_learner,
    ranker_load_stored,
    ranker_publish,
    ranker_reconfigure,
    ranker_to_bytes,
    redis_client,
    redis_key,
)
from recommender.selectors_offers import decisions_for_evaluation, offer_popularity

logger = logging.getLogger(__name__)

LEARN_BATCH_SIZE = 20_000
LEARN_LOCK = 7_300_022
SNAPSHOT_SECONDS = 300
SNAPSHOTS_KEPT = 20
POPULARITY_DAYS = 7
EVALUATION_DECISIONS = 20_000

_FIELDS = ("context", "customer_features", "candidates", "chosen_index", "probability", "reward")


@dataclass(frozen=True)
class LearnResult:
    version: int
    learned: int
    locked_out: bool = False
    snapshot: bool = False


def _apply(ranker: Ranker, rows: list[OfferDecision]) -> None:
    learner = ranker_learner(ranker)
    for row in rows:
        batch = learner.featurize(
            context=row.context, customer=row.customer_features, actions=list(row.candidates)
        )
        reward = float(row.reward)  # type: ignore[arg-type]
        if isinstance(ranker, ApprenticePolicy):
            ranker.update(batch, row.chosen_index, reward, probability=row.probability)
        else:
            ranker.update(batch, row.chosen_index, reward)


def _config_signature(ranker: Ranker) -> tuple[PolicyConfig, bool]:
    return ranker_learner(ranker).config, isinstance(ranker, ApprenticePolicy)


def offer_policy_learn(*, limit: int = LEARN_BATCH_SIZE) -> LearnResult:
    """One learning step; a second worker returns at once (session advisory lock)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [LEARN_LOCK])
        if not cursor.fetchone()[0]:
            return LearnResult(version=0, learned=0, locked_out=True)
        try:
            return _learn(limit=limit)
        finally:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [LEARN_LOCK])


def _learn(*, limit: int) -> LearnResult:
    version, ranker = ranker_load_stored()
    before = _config_signature(ranker)
    ranker = ranker_reconfigure(ranker)
    reconfigured = before != _config_signature(ranker)
    replay = list(
        OfferDecision.objects.filter(learned_version__gt=version)
        .only(*_FIELDS)
        .order_by("learned_version", "rewarded_at", "pk")
    )
    fresh = list(
        OfferDecision.objects.filter(reward__isnull=False, learned_version__isnull=True)
        .only(*_FIELDS)
        .order_by("rewarded_at", "pk")[: max(0, limit - len(replay))]
    )
    rows = replay + fresh
    published = redis_client().exists(redis_key(VERSION_KEY))
    if not rows and not reconfigured and published:
        return LearnResult(version=version, learned=0)
    _apply(ranker, rows)
    new_version = version + 1
    with transaction.atomic():
        OfferDecision.objects.filter(
            Q(pk__in=[r.pk for r in fresh]) | Q(learned_version__gt=version)
        ).update(learned_version=new_version)
    ranker_publish(version=new_version, ranker=ranker)
    snapshot = _snapshot_if_due(version=new_version, ranker=ranker)
    logger.info(
        "offer policy learned",
        extra={"version": new_version, "learned": len(rows), "replayed": len(replay)},
    )
    return LearnResult(version=new_version, learned=len(rows), snapshot=snapshot)


def _snapshot_if_due(*, version: int, ranker: Ranker) -> bool:
    now = timezone.now()
    last = OfferPolicySnapshot.objects.order_by("-version").only("created_at").first()
    if last is not None and now - last.created_at < timedelta(seconds=SNAPSHOT_SECONDS):
        return False
    stats: dict[str, Any] = {"updates": ranker_learner(ranker).updates}
    if isinstance(ranker, ApprenticePolicy):
        advantage = ranker.advantage()
        stats.update(
            graduated=ranker.graduated,
            advantage=advantage.value,
            advantage_stderr=None if math.isnan(advantage.stderr) else advantage.stderr,
        )
    OfferPolicySnapshot.objects.update_or_create(
        version=version,
        defaults={
            "state": ranker_to_bytes(ranker),
            "config": ranker_learner(ranker).config.to_dict(),
            "stats": stats,
        },
    )
    old = OfferPolicySnapshot.objects.order_by("-version").values_list("pk", flat=True)[
        SNAPSHOTS_KEPT:
    ]
    OfferPolicySnapshot.objects.filter(pk__in=list(old)).delete()
    popularity = offer_popularity(since=now - timedelta(days=POPULARITY_DAYS))
    redis_client().set(redis_key(POPULARITY_KEY), json.dumps(popularity))
    return True


# --- offline evaluation ------------------------------------------------------------------------


def evaluation_settings(base: PolicyConfig) -> dict[str, PolicyConfig]:
    """The candidate settings the Learning page compares: exploration shares, learning
    rates, feature sets, and the other policy kinds."""
    out = {"current": base}
    for epsilon in (0.05, 0.1, 0.3):
        if epsilon != base.epsilon:
            out[f"exploration {epsilon:.0%}"] = base.with_(epsilon=epsilon)
    for rate in (base.learning_rate / 2, base.learning_rate * 2, base.learning_rate * 4):
        out[f"learning rate {rate:g}"] = base.with_(learning_rate=rate)
    spec = base.features
    out["no customer features"] = base.with_(
        features=replace(spec, interactions=((CONTEXT, ACTION),), matches=())
    )
    out["no segments"] = base.with_(features=replace(spec, ignore=spec.ignore | {"segments"}))
    out["no per-customer crosses"] = base.with_(features=replace(spec, ignore=spec.ignore | {"id"}))
    out["category shares as tokens"] = base.with_(features=replace(spec, match_only=frozenset()))
    out["no id crosses"] = base.with_(features=replace(spec, cross_ids=False))
    out["linucb"] = base.with_(kind="linucb")
    out["thompson"] = base.with_(kind="thompson")
    return out


EVALUATION_JOB_KIND = "offer_evaluation"


def offer_evaluation_start(*, user=None) -> Job:
    """A job for the offline evaluation, run by a task after the commit."""
    from recommender.tasks import offer_evaluation_run_task

    with transaction.atomic():
        job = job_create(kind=EVALUATION_JOB_KIND, user=user)
        transaction.on_commit(lambda: offer_evaluation_run_task.delay(job_id=job.pk))
    return job


def offer_evaluation_run(*, job_id: int, limit: int = EVALUATION_DECISIONS) -> None:
    """Replay the logged decisions for each candidate setting (IPS, SNIPS, DR), recording
    progress after each. Only a pending job runs (a redelivered task does nothing)."""
    claimed = Job.objects.filter(pk=job_id, status=JobStatus.PENDING).update(
        status=JobStatus.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return
    try:
        rows = decisions_for_evaluation(limit=limit)
        log = [
            LoggedDecision(
                context=r.context,
                customer=r.customer_features,
                actions=r.candidates,
                chosen=r.chosen_index,
                probability=r.probability,
                reward=float(r.reward),  # type: ignore[arg-type]
            )
            for r in rows
        ]
        if not log:
            raise ValueError("No rewarded decisions to evaluate yet.")
        candidates = evaluation_settings(configured_policy_config())
        job_start(job_id=job_id, total=len(candidates) + 2, message=f"{len(log)} logged decisions")
        predictions = reward_model_predictions(log)
        results: dict[str, Any] = {"logged": {"dr": evaluate_logged_policy(log).as_dict()}}
        job_progress(job_id=job_id, done=1, message="reward model trained")
        for n, (name, config) in enumerate(candidates.items(), start=2):
            evaluation = evaluate_policy(log, config, predicted_rewards=predictions)
            results[name] = {**evaluation.as_dict(), "config": _config_summary(config)}
            job_progress(job_id=job_id, done=n, message=name)
        results["uniform"] = evaluate_uniform(log, predicted_rewards=predictions).as_dict()
        job_finish(
            job_id=job_id,
            result={"decisions": len(log), "settings": _finite(results)},
            message=f"{len(log)} logged decisions",
        )
    except Exception as exc:
        logger.exception("offer evaluation failed", extra={"job": job_id})
        job_mark_failed(job_id=job_id, error=str(exc))


def _config_summary(config: PolicyConfig) -> dict[str, Any]:
    return {
        "kind": config.kind,
        "epsilon": config.epsilon,
        "learning_rate": config.learning_rate,
        "interactions": [f"{a}x{b}" for a, b in config.features.interactions],
        "ignore": sorted(config.features.ignore),
    }


def _finite(value: Any) -> Any:
    """NaN standard errors (one event) as null: JSON has no NaN."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value
