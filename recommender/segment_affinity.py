"""Affinity segments: the customers most likely to interact with an item, or with the items
matching an attribute expression, scored by the served recommender model and saved as a
MODEL segment (Amazon Personalize's item-affinity and item-attribute-affinity recipes).

`affinity_segment_create` checks the request and queues the build; the Celery task runs
`affinity_segment_build`, which loads the model (recommender.model_files), scores every
customer the model knows in blocks (recommender.algorithms.affinity) with the Job's progress
kept up to date, and saves the top customers through profiles' segment services.

Scoring: an item by its standardised predicted score; an attribute expression by the share
of the customer's predicted score mass on the matching items, and when the matching items
are whole categories (every active item of each category, e.g. `category = "books"`) by the
rank average of that share and the share of the customer's profile affinity
(`CustomerFeatures.state["affinity"]`, decayed views, clicks, carts and purchases) on those
categories. The segment's definition records which (`scoring`).

Model: the first active version of `RECOMMENDER_SERVING_ALGORITHMS` (what serving uses) that
can rank customers; popularity gives everyone the same scores, so when it is the served
model the first active personalized version is used instead, and the segment's definition
records which one (and that it was a fallback).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection, transaction

from marketing.common.errors import ApplicationError
from marketing.models import Job, JobStatus
from marketing.services import job_create, job_finish, job_mark_failed, job_progress, job_start
from profiles.models import Segment, SegmentKind
from profiles.segments.errors import SegmentNameTakenError
from profiles.segments.services import segment_create_static
from recommender.algorithms.affinity import (
    DEFAULT_AGGREGATE,
    ITEM_AGGREGATE,
    PROFILE_PRIOR,
    PROFILE_WEIGHT,
    CannotScoreError,
    affinity_scores,
    profile_share,
    rank_blend,
    select_top,
)
from recommender.algorithms.item_expression import ExpressionError, evaluate, parse
from recommender.model_files import model_for_version
from recommender.models import Algorithm, Item, ModelVersion
from recommender.selectors import modelversion_active_list

logger = logging.getLogger(__name__)

JOB_KIND = "affinity segment"
MAX_TOP_N = 1_000_000
ITEM_COLUMNS = ("external_id", "title", "category", "brand", "price", "in_stock")
PERSONALIZED = (
    Algorithm.HYBRID,
    Algorithm.ALS,
    Algorithm.EASE,
    Algorithm.BPR,
    Algorithm.ITEM_ITEM,
    Algorithm.CONTENT,
)
SCORING_ITEM = "the item's predicted score, standardised over the catalog per customer"
SCORING_SHARE = "share of the customer's predicted score mass on the matching items"
SCORING_BLEND = (
    "rank average of the share of the customer's predicted score mass on the matching items "
    "({model:.0%}) and the share of the customer's profile category affinity (decayed views, "
    "clicks, carts, purchases) on {categories} ({profile:.0%})"
)
SCORED_NOTE = "Only customers known to the model (with events in its training window) are scored."


class AffinityRequestError(ApplicationError):
    """`extra["errors"]` maps each offending field to its message."""

    code = "invalid_affinity_request"


class NoAffinityModelError(ApplicationError):
    code = "no_personalized_model"


@dataclass(frozen=True)
class AffinityRequest:
    """What a marketer asked for; travels to the task as a dict (`asdict`)."""

    name: str
    item_id: str | None = None
    expression: str | None = None
    top_n: int | None = None
    top_percent: float | None = None


@dataclass(frozen=True)
class AffinityTarget:
    source: str  # "item_affinity" or "attribute_affinity"
    item_ids: list[str]  # matching active catalog items (external ids)
    label: str  # `item "<id>"` or the expression


def _error(field: str, message: str) -> AffinityRequestError:
    return AffinityRequestError(message, extra={"errors": {field: message}})


def catalog_fields() -> list[str]:
    """Fields an expression may use: the item columns, then every key of the active items'
    attributes JSON (a column wins over an attribute of the same name)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT jsonb_object_keys(attributes) FROM recommender_item "
            "WHERE is_active AND jsonb_typeof(attributes) = 'object' ORDER BY 1"
        )
        keys = [row[0] for row in cursor.fetchall()]
    return list(ITEM_COLUMNS) + [k for k in keys if k not in ITEM_COLUMNS]


def affinity_target_resolve(
    *, item_id: str | None = None, expression: str | None = None
) -> AffinityTarget:
    """The active catalog items a request is about; AffinityRequestError names the field."""
    if bool(item_id) == bool(expression):
        raise _error("expression", "Give either an item or an attribute expression, not both.")
    if item_id:
        if not Item.objects.filter(external_id=item_id, is_active=True).exists():
            raise _error("item_id", f"No active catalog item has the id '{item_id}'.")
        return AffinityTarget("item_affinity", [item_id], f'item "{item_id}"')
    assert expression is not None  # noqa: S101  (checked above)
    fields = catalog_fields()
    try:
        node = parse(expression, fields=fields)
    except ExpressionError as exc:
        raise _error("expression", str(exc)) from exc
    items = list(
        Item.objects.filter(is_active=True).order_by("pk").values(*ITEM_COLUMNS, "attributes")
    )
    rows: list[dict[str, Any]] = []
    for item in items:
        attributes = item.pop("attributes")
        row = dict(attributes) if isinstance(attributes, dict) else {}
        row.update(item)
        row["price"] = None if item["price"] is None else float(item["price"])
        rows.append(row)
    mask = evaluate(node, rows) if rows else np.zeros(0, dtype=bool)
    matching = [row["external_id"] for row, hit in zip(rows, mask.tolist(), strict=True) if hit]
    if not matching:
        raise _error("expression", "No active catalog item matches this expression.")
    return AffinityTarget("attribute_affinity", matching, expression.strip())


def whole_categories(item_ids: list[str]) -> list[str] | None:
    """The categories the items make up when they are every active item of each (so the
    profile affinity kept per category describes the same thing), else None."""
    matching = set(item_ids)
    categories = set(
        Item.objects.filter(external_id__in=matching, is_active=True).values_list(
            "category", flat=True
        )
    )
    if not categories or "" in categories:
        return None
    in_categories = set(
        Item.objects.filter(is_active=True, category__in=categories).values_list(
            "external_id", flat=True
        )
    )
    return sorted(categories) if in_categories == matching else None


def profile_affinities(customer_ids: list[int], categories: list[str]) -> tuple[np.ndarray, ...]:
    """(affinity on `categories`, total affinity) per customer from CustomerFeatures.state,
    0 for customers without features; both decayed to the customer's own last event, which
    does not change their ratio."""
    target = np.zeros(len(customer_ids), dtype=np.float64)
    total = np.zeros(len(customer_ids), dtype=np.float64)
    position = {c: i for i, c in enumerate(customer_ids)}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT f.customer_id, "
            "COALESCE(SUM(a.value::float8) FILTER (WHERE a.key = ANY(%s)), 0), "
            "COALESCE(SUM(a.value::float8), 0) "
            "FROM profiles_customerfeatures f "
            "CROSS JOIN LATERAL jsonb_each_text(CASE WHEN jsonb_typeof(f.state->'affinity') "
            "= 'object' THEN f.state->'affinity' ELSE '{}'::jsonb END) a "
            "GROUP BY f.customer_id",
            [categories],
        )
        for customer_id, on_target, all_ in cursor.fetchall():
            i = position.get(customer_id)
            if i is not None:
                target[i], total[i] = on_target, all_
    return target, total


def _blend_with_profiles(
    scores: np.ndarray, user_ids: np.ndarray, categories: list[str]
) -> tuple[np.ndarray, dict[str, Any]]:
    """Rank-average the model's scores with the profile affinity share on `categories`."""
    on_target, total = profile_affinities([int(u) for u in user_ids.tolist()], categories)
    n_categories = (
        Item.objects.filter(is_active=True).exclude(category="").values("category").distinct()
    ).count()
    shares = profile_share(
        on_target, total, n_categories=n_categories, n_target_categories=len(categories)
    )
    return rank_blend(scores, shares), {
        "scoring": SCORING_BLEND.format(
            model=1 - PROFILE_WEIGHT, profile=PROFILE_WEIGHT, categories=", ".join(categories)
        ),
        "profile_categories": categories,
        "profile_weight": PROFILE_WEIGHT,
        "profile_prior_events": PROFILE_PRIOR,
        "customers_with_profile_affinity": int((total > 0).sum()),
    }


def affinity_model_version() -> tuple[ModelVersion, bool]:
    """(the version to score with, whether it is a fallback from the served model)."""
    active = {algorithm: pk for pk, algorithm in modelversion_active_list()}
    served = next((a for a in settings.RECOMMENDER_SERVING_ALGORITHMS if a in active), None)
    order = [a for a in settings.RECOMMENDER_SERVING_ALGORITHMS if a in PERSONALIZED]
    order += [a for a in PERSONALIZED if a not in order]
    chosen = next((a for a in order if a in active), None)
    if chosen is None:
        raise NoAffinityModelError(
            "No personalized model is served, so customers cannot be ranked (a popularity "
            "model scores everyone alike). Train a hybrid model on the Recommendations page."
        )
    return ModelVersion.objects.get(pk=active[chosen]), chosen != served


def _check_size(top_n: int | None, top_percent: float | None) -> None:
    if (top_n is None) == (top_percent is None):
        raise _error("top_n", "Give either a number of customers or a percentage, not both.")
    if top_n is not None and not 1 <= top_n <= MAX_TOP_N:
        raise _error("top_n", f"The number of customers must be between 1 and {MAX_TOP_N:,}.")
    if top_percent is not None and not 0 < top_percent <= 100:
        raise _error("top_percent", "The percentage must be more than 0 and at most 100.")


def affinity_segment_create(
    *,
    name: str,
    item_id: str | None = None,
    expression: str | None = None,
    top_n: int | None = None,
    top_percent: float | None = None,
    user=None,
) -> Job:
    """Check the request (name free, target matches items, size, a model exists), then
    queue the build on commit; returns the Job the page polls."""
    from recommender.tasks import affinity_segment_build_task

    name = name.strip()
    if not name:
        raise _error("name", "Give the segment a name.")
    if Segment.objects.filter(name=name).exists():
        raise SegmentNameTakenError.for_name(name)
    _check_size(top_n, top_percent)
    affinity_target_resolve(item_id=item_id, expression=expression)
    affinity_model_version()
    request = AffinityRequest(
        name=name,
        item_id=item_id or None,
        expression=expression or None,
        top_n=top_n,
        top_percent=top_percent,
    )
    with transaction.atomic():
        job = job_create(kind=JOB_KIND, total=100, user=user)
        transaction.on_commit(
            lambda: affinity_segment_build_task.delay(
                job_id=job.pk, request=asdict(request), user_id=getattr(user, "pk", None)
            )
        )
    return job


def affinity_segment_build(*, job_id: int, request: AffinityRequest, user=None) -> Segment | None:
    """The task's body. Idempotent: a job that already made its segment (redelivery) is
    finished with that segment; a finished or failed job is left alone."""
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        return None
    existing = Segment.objects.filter(definition__job=job_id).first()
    if existing is not None:
        if job.status != JobStatus.DONE:
            _finish(job_id, existing)
        return existing
    if job.status in (JobStatus.DONE, JobStatus.FAILED):
        return None
    job_start(job_id=job_id, total=100, message="loading the model")
    try:
        segment = _build(job_id=job_id, request=request, user=user)
    except ApplicationError as exc:
        job_mark_failed(job_id=job_id, error=exc.message)
        return None
    except Exception as exc:
        job_mark_failed(job_id=job_id, error=f"{type(exc).__name__}: {exc}")
        raise
    _finish(job_id, segment)
    return segment


def _finish(job_id: int, segment: Segment) -> None:
    job_finish(
        job_id=job_id,
        result={"segment": segment.pk, "members": segment.member_count},
        message=f"Segment '{segment.name}' saved with {segment.member_count:,} customers",
    )


def _build(*, job_id: int, request: AffinityRequest, user) -> Segment:
    started = time.perf_counter()
    item_id, expression = request.item_id, request.expression
    top_n, top_percent = request.top_n, request.top_percent
    target = affinity_target_resolve(item_id=item_id, expression=expression)
    version, fallback = affinity_model_version()
    loaded = model_for_version(version)
    job_progress(job_id=job_id, done=10, message="scoring customers")
    index = {item: i for i, item in enumerate(loaded.item_ids.tolist())}
    targets = np.array([index[i] for i in target.item_ids if i in index], dtype=np.int64)
    if not len(targets):
        raise _error(
            "expression" if expression else "item_id",
            f"The model ({version}) has never seen the {len(target.item_ids)} matching "
            "item(s): nobody interacted with them in its training window.",
        )
    n_users = len(loaded.user_ids)

    def progress(done: int, total: int) -> None:
        job_progress(
            job_id=job_id,
            done=10 + int(80 * done / max(total, 1)),
            message=f"scored {done:,} of {total:,} customers",
        )

    single = target.source == "item_affinity"
    try:
        scores = affinity_scores(
            loaded.model,
            targets,
            n_users=n_users,
            aggregate=ITEM_AGGREGATE if single else DEFAULT_AGGREGATE,
            progress=progress,
        )
    except CannotScoreError as exc:
        raise NoAffinityModelError(str(exc)) from exc
    scoring: dict[str, Any] = {"scoring": SCORING_ITEM if single else SCORING_SHARE}
    categories = None if single else whole_categories(target.item_ids)
    if categories:
        job_progress(job_id=job_id, done=90, message="reading profile affinities")
        scores, scoring = _blend_with_profiles(scores, loaded.user_ids, categories)
    selection = select_top(scores, top_n=top_n, top_percent=top_percent)
    customer_ids = [int(loaded.user_ids[u]) for u in selection.users]
    job_progress(job_id=job_id, done=92, message="saving the segment")
    size = {"top_n": top_n} if top_n is not None else {"top_percent": top_percent}
    definition = {
        "source": target.source,
        ("item" if target.source == "item_affinity" else "expression"): (
            item_id if target.source == "item_affinity" else target.label
        ),
        **size,
        "matched_items": len(target.item_ids),
        "scored_items": len(targets),
        "model_version": version.pk,
        "algorithm": version.algorithm,
        "model_source": loaded.source,
        "fallback_from_served_model": fallback,
        **scoring,
        "customers_scored": selection.scored,
        "scored_note": SCORED_NOTE,
        "seconds": round(time.perf_counter() - started, 2),
        "job": job_id,
    }
    how_many = (
        f"Top {top_n:,} customers" if top_n is not None else f"Top {top_percent:g}% of customers"
    )
    segment = segment_create_static(
        name=request.name,
        kind=SegmentKind.MODEL,
        customer_ids=customer_ids,
        scores=dict(zip(customer_ids, selection.scores.tolist(), strict=True)),
        description=(
            f"{how_many} by affinity for {target.label}, scored by {version} "
            f"({selection.scored:,} customers known to the model)."
        ),
        definition=definition,
        user=user,
    )
    logger.info(
        "affinity segment built",
        extra={"segment": segment.pk, "members": segment.member_count, "version": version.pk},
    )
    return segment
