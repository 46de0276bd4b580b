"""Training recommendation models on the stored events (the Django side of the algorithms).

One training: load the event window and the catalog, measure the model on a time-based
holdout (each customer's latest 20% of events), fit it on everything, precompute every
customer's top-100 (and, for item-to-item and content models, every item's top-20 related
items), store them for serving, and record a ModelVersion with parameters, data window,
training time and metrics. The new version is served when it is at least as good as the one
it would replace (or when nothing is served yet); a marketer can activate or roll back any
version on the Recommendations page.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import orjson
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from marketing.services import job_finish, job_mark_failed, job_progress, job_start
from recommender.algorithms.base import CatalogTooLarge, Recommender
from recommender.algorithms.data import (
    DEFAULT_TYPE_WEIGHTS,
    InteractionData,
    Interactions,
    ItemFeatures,
    item_text,
)
from recommender.algorithms.evaluation import (
    CONTENT_WEIGHT_IN_HYBRID,
    HYBRID_WEIGHTS,
    HYBRID_WEIGHTS_LARGE_CATALOG,
    default_specs,
    evaluate_time_holdout,
)
from recommender.algorithms.hybrid import HybridRecommender
from recommender.algorithms.itemknn import similar_for_items
from recommender.errors import TrainingDataError
from recommender.model_files import model_file_save
from recommender.models import Algorithm, ModelStatus, ModelVersion
from recommender.selectors import modelversion_get_active
from recommender.serving import similar_cache_drop
from recommender.serving_services import (
    modelversion_activate,
    recommendation_lists_store,
    similar_lists_store,
)

logger = logging.getLogger(__name__)

LIST_LENGTH = 100
SIMILAR_LENGTH = 20
HOLDOUT_RATIO = 0.2
# An algorithm's models, by the names the evaluation uses.
COMPONENTS: dict[str, list[str]] = {
    Algorithm.ALS: ["als"],
    Algorithm.BPR: ["bpr"],
    Algorithm.ITEM_ITEM: ["itemknn"],
    Algorithm.CONTENT: ["content"],
    Algorithm.EASE: ["ease"],
    Algorithm.HYBRID: ["ease", "als", "itemknn", "content"],
}
WITH_SIMILAR_ITEMS = {Algorithm.ITEM_ITEM, Algorithm.CONTENT}

Progress = Callable[[int, str], None]


@dataclass(frozen=True)
class TrainingData:
    interactions: Interactions
    items: ItemFeatures
    item_pks: dict[str, int]
    window_from: float
    window_to: float
    last_event_pk: int


def training_data_load(*, window_days: int) -> TrainingData:
    """Events of the last `window_days` (counted back from the newest event) on active
    catalog items, and the active catalog's text for the content model."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH last AS (SELECT max(occurred_at) AS t FROM profiles_event)
            SELECT e.customer_id::text, e.item_external_id, e.type, e.value::float8,
                   extract(epoch FROM e.occurred_at)::float8
            FROM profiles_event e
            JOIN recommender_item i ON i.external_id = e.item_external_id AND i.is_active
            CROSS JOIN last
            WHERE e.item_external_id <> ''
              AND e.occurred_at > last.t - make_interval(days => %s)
            """,
            [window_days],
        )
        rows = cursor.fetchall()
        cursor.execute("SELECT coalesce(max(id), 0) FROM profiles_event")
        last_event_pk = int(cursor.fetchone()[0])
        cursor.execute(
            "SELECT id, external_id, title, category, brand, description, attributes::text "
            "FROM recommender_item WHERE is_active"
        )
        catalog = cursor.fetchall()
    if not rows:
        raise TrainingDataError("No events on active catalog items in the training window.")
    columns = list(zip(*rows, strict=True))
    values = np.array([np.nan if v is None else v for v in columns[3]], dtype=np.float64)
    interactions = Interactions.from_columns(
        user_ids=columns[0],
        item_ids=columns[1],
        event_types=columns[2],
        values=values,
        timestamps=columns[4],
    )
    texts = [
        item_text(
            {
                "TITLE": title,
                "CATEGORY": category,
                "BRAND": brand,
                "DESCRIPTION": description,
                **_flat_attributes(attributes),
            }
        )
        for _, _, title, category, brand, description, attributes in catalog
    ]
    items = ItemFeatures(item_ids=np.array([row[1] for row in catalog], dtype=object), texts=texts)
    stamps = interactions.timestamps
    return TrainingData(
        interactions=interactions,
        items=items,
        item_pks={row[1]: row[0] for row in catalog},
        window_from=float(stamps.min()),
        window_to=float(stamps.max()),
        last_event_pk=last_event_pk,
    )


def _flat_attributes(raw: str | None) -> dict[str, str]:
    attributes = orjson.loads(raw) if raw else {}
    flat = {}
    for key, value in attributes.items():
        if isinstance(value, list):
            flat[key.upper()] = "|".join(str(v) for v in value)
        elif isinstance(value, str | int | float):
            flat[key.upper()] = str(value)
    return flat


def _type_weights() -> dict[str, float]:
    return {**DEFAULT_TYPE_WEIGHTS, **settings.RECOMMENDER_EVENT_WEIGHTS}


def _half_life() -> float | None:
    return settings.RECOMMENDER_RECENCY_HALF_LIFE_DAYS or None


def _specs_for(algorithm: str):
    wanted = set(COMPONENTS[algorithm])
    return [spec for spec in default_specs() if spec.name in wanted]


def _fit(algorithm: str, data: InteractionData, items: ItemFeatures) -> Recommender:
    """Fit the model on all the data, the same way the holdout evaluation built it."""
    fitted: dict[str, Recommender] = {}
    for spec in _specs_for(algorithm):
        model = spec.build()
        try:
            model.fit(data, items)
        except CatalogTooLarge:
            continue
        fitted[spec.name] = model
    if algorithm != Algorithm.HYBRID:
        name = COMPONENTS[algorithm][0]
        if name not in fitted:
            raise TrainingDataError(f"{algorithm} cannot be trained on this catalog.")
        return fitted[name]
    weights = dict(HYBRID_WEIGHTS if "ease" in fitted else HYBRID_WEIGHTS_LARGE_CATALOG)
    if "content" in fitted:
        weights["content"] = CONTENT_WEIGHT_IN_HYBRID
    return HybridRecommender(
        [(fitted[name], w) for name, w in weights.items() if name in fitted], fitted=True
    ).fit(data, items)


def model_train(
    *,
    algorithm: str,
    job_id: int | None = None,
    window_days: int | None = None,
    activate: str = "if_better",
) -> ModelVersion:
    """Train one algorithm end to end; see the module docstring. `activate` is "if_better",
    "always" or "never"."""
    if algorithm == Algorithm.POPULARITY:
        return _popularity_train(window_days=window_days)
    if algorithm not in COMPONENTS:
        raise TrainingDataError(f"Unknown algorithm '{algorithm}'.")
    window_days = window_days or settings.RECOMMENDER_TRAINING_WINDOW_DAYS
    progress = _progress(job_id)
    started = time.perf_counter()
    progress(5, "loading events")
    loaded = training_data_load(window_days=window_days)  # no version when there is no data
    params = {
        "window_days": window_days,
        "event_weights": _type_weights(),
        "recency_half_life_days": _half_life(),
        "holdout": f"each customer's latest {int(HOLDOUT_RATIO * 100)}% of events",
        "components": COMPONENTS[algorithm],
        "list_length": LIST_LENGTH,
        "last_event_pk": loaded.last_event_pk,
        **({"job_id": job_id} if job_id is not None else {}),
    }
    with _training_locked(algorithm=algorithm, params=params) as version:
        return _model_train_version(
            version,
            algorithm=algorithm,
            loaded=loaded,
            progress=progress,
            started=started,
            activate=activate,
        )


def _model_train_version(
    version: ModelVersion,
    *,
    algorithm: str,
    loaded: TrainingData,
    progress: Progress,
    started: float,
    activate: str,
) -> ModelVersion:
    try:
        progress(15, f"evaluating on a time-based holdout ({len(loaded.interactions):,} events)")
        evaluation = evaluate_time_holdout(
            loaded.interactions,
            test_ratio=HOLDOUT_RATIO,
            k=10,
            items=loaded.items,
            specs=_specs_for(algorithm),
            hybrid=algorithm == Algorithm.HYBRID,
            type_weights=_type_weights(),
            half_life_days=_half_life(),
        )
        name = "hybrid" if algorithm == Algorithm.HYBRID else COMPONENTS[algorithm][0]
        metrics = {key: round(float(v), 5) for key, v in evaluation.results.get(name, {}).items()}
        progress(45, "training on all events")
        data = InteractionData.from_interactions(
            loaded.interactions,
            extra_item_ids=loaded.items.item_ids,
            type_weights=_type_weights(),
            half_life_days=_half_life(),
        )
        model = _fit(algorithm, data, loaded.items)
        progress(70, f"precomputing lists for {data.n_users:,} customers")
        stored = _store_lists(version, model, data)
        # Kept for scoring after training (affinity segments, recommender.model_files).
        stored["model_file"] = model_file_save(version_id=version.pk, model=model, data=data)
        if algorithm in WITH_SIMILAR_ITEMS:
            progress(90, "precomputing related items")
            stored["similar_lists"] = _store_similar(version, model, data, loaded)
        progress(95, "recording the version")
    except Exception as exc:
        ModelVersion.objects.filter(pk=version.pk).update(
            status=ModelStatus.FAILED, error=str(exc)[:5000]
        )
        raise
    version.status = ModelStatus.READY
    version.metrics = metrics
    version.params = {
        **version.params,
        "data_window": {
            "from": _iso(loaded.window_from),
            "to": _iso(loaded.window_to),
        },
        **stored,
    }
    version.n_users = data.n_users
    version.n_items = data.n_items
    version.n_interactions = len(loaded.interactions)
    version.training_seconds = round(time.perf_counter() - started, 2)
    version.trained_at = timezone.now()
    version.save()
    if _should_activate(version, activate):
        modelversion_activate(version=version)
        version.refresh_from_db()
    logger.info(
        "model trained",
        extra={"algorithm": algorithm, "version": version.pk, "metrics": metrics},
    )
    return version


def _popularity_train(*, window_days: int | None) -> ModelVersion:
    """The fallback list (recommender.services), plus its holdout metrics so that the
    personalized models have a baseline to beat on the Recommendations page."""
    from recommender.services import model_train_popularity

    version = model_train_popularity()
    try:
        loaded = training_data_load(
            window_days=window_days or settings.RECOMMENDER_TRAINING_WINDOW_DAYS
        )
    except TrainingDataError:
        return version
    evaluation = evaluate_time_holdout(
        loaded.interactions,
        test_ratio=HOLDOUT_RATIO,
        k=10,
        specs=[spec for spec in default_specs() if spec.name == "popularity"],
        hybrid=False,
    )
    metrics = evaluation.results.get("popularity", {})
    version.metrics = {key: round(float(v), 5) for key, v in metrics.items()}
    version.save(update_fields=["metrics", "updated_at"])
    return version


def _store_lists(version, model, data: InteractionData) -> dict:
    users = np.arange(data.n_users)
    idx, scores = model.recommend(users, LIST_LENGTH, exclude=data.matrix)
    item_ids = data.item_ids

    def rows():
        for u in range(data.n_users):
            keep = idx[u] >= 0
            yield int(data.user_ids[u]), item_ids[idx[u][keep]].tolist(), scores[u][keep].tolist()

    return {"recommendation_lists": recommendation_lists_store(version=version, rows=rows())}


def _store_similar(version, model, data: InteractionData, loaded: TrainingData) -> int:
    items = np.arange(data.n_items)
    idx, scores = model.similar_items(items, SIMILAR_LENGTH)
    rows = _similar_rows(items, idx, scores, data.item_ids, loaded.item_pks)
    return similar_lists_store(version=version, rows=rows)


def _similar_rows(
    owners: np.ndarray,
    idx: np.ndarray,
    scores: np.ndarray,
    item_ids: np.ndarray,
    item_pks: dict[str, int],
) -> Iterator[tuple[int, list[str], list[float]]]:
    """(item pk, related item ids, scores) for the item `owners[row]` of each row of
    `idx`/`scores`; items without a catalog row, missing neighbours (-1) and the item itself
    are left out."""
    for row, i in enumerate(owners):
        pk = item_pks.get(item_ids[i])
        if pk is None:
            continue
        keep = (idx[row] >= 0) & (idx[row] != i)
        yield pk, item_ids[idx[row][keep]].tolist(), scores[row][keep].tolist()


def _should_activate(version: ModelVersion, policy: str) -> bool:
    if policy == "always":
        return True
    if policy == "never":
        return False
    active = modelversion_get_active(algorithm=version.algorithm)
    if active is None:
        return True
    new, old = version.metrics.get("ndcg@10"), active.metrics.get("ndcg@10")
    if new is None or old is None:
        return True
    # Serve the new version unless it is clearly worse on the holdout.
    return new >= 0.98 * old


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat()


def _progress(job_id: int | None) -> Progress:
    delay = settings.RECOMMENDER_TRAINING_STEP_DELAY_SECONDS  # a test hook, 0 in production
    if job_id is None:
        return lambda percent, message: time.sleep(delay)
    job_start(job_id=job_id, total=100, message="starting")

    def report(percent: int, message: str) -> None:
        job_progress(job_id=job_id, done=percent, message=message)
        time.sleep(delay)

    return report


# --- interrupted trainings ---------------------------------------------------------------------
# A training holds a session advisory lock on (TRAINING_LOCK, version pk) while it runs. A
# worker killed mid-training (SIGKILL, OOM, a lost machine) drops its connection and with it
# the lock; a version still 'training' whose lock can be taken has nobody training it.
TRAINING_LOCK = 7_300_031
INTERRUPTED_ERROR = "interrupted: the worker training it stopped before the end"


def _training_unlock(version_pk: int) -> None:
    """Release a version's training lock. A lost connection took its session's locks with
    it: the error is logged, never raised over the error that ended the training."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [TRAINING_LOCK, version_pk])
    except DatabaseError as exc:
        logger.warning(
            "training lock not released (connection lost)",
            extra={"version": version_pk, "error": f"{type(exc).__name__}: {exc}"[:300]},
        )


@contextmanager
def _training_locked(**fields: object) -> Iterator[ModelVersion]:
    """A new 'training' version, held under its training lock until the block ends. The
    (session) lock is taken in the transaction that inserts the row, so no other session
    ever sees the version 'training' and unlocked: trainings_fail_interrupted cannot take a
    live training for an interrupted one."""
    locked: list[int] = []
    try:
        with transaction.atomic():
            version = ModelVersion.objects.create(**fields)
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_lock(%s, %s)", [TRAINING_LOCK, version.pk])
            locked.append(version.pk)
    except BaseException:
        for pk in locked:  # the commit failed: a session lock outlives its transaction
            _training_unlock(pk)
        raise
    try:
        yield version
    finally:
        _training_unlock(version.pk)


def trainings_fail_interrupted() -> int:
    """Mark failed every version left 'training' by a worker that died, and its Job; the
    served version was never touched (activation is the last step of a training). Run
    when a worker starts and by beat; a retrain is the marketer's (or the nightly) call.
    Returns how many versions were marked."""
    marked = 0
    pending = ModelVersion.objects.filter(status=ModelStatus.TRAINING)
    for pk, params in pending.values_list("pk", "params"):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [TRAINING_LOCK, pk])
            if not cursor.fetchone()[0]:
                continue  # a live training holds it
            try:
                marked += ModelVersion.objects.filter(pk=pk, status=ModelStatus.TRAINING).update(
                    status=ModelStatus.FAILED, error=INTERRUPTED_ERROR
                )
                job_id = (params or {}).get("job_id")
                if job_id is not None:
                    job_mark_failed(job_id=job_id, error=INTERRUPTED_ERROR)
            finally:
                _training_unlock(pk)
    if marked:
        logger.warning("interrupted trainings marked failed", extra={"versions": marked})
    return marked


def model_train_job(*, algorithm: str, job_id: int) -> ModelVersion | None:
    """The body of the Celery task: training with its Job row kept up to date."""
    try:
        version = model_train(algorithm=algorithm, job_id=job_id)
    except TrainingDataError as exc:
        job_mark_failed(job_id=job_id, error=str(exc))
        return None
    except Exception as exc:
        job_mark_failed(job_id=job_id, error=f"{type(exc).__name__}: {exc}")
        raise
    job_finish(
        job_id=job_id,
        result={"version": version.pk, "metrics": version.metrics},
        message=f"{version.get_algorithm_display()} #{version.pk} ready"
        + (" and served" if version.is_active else " (not better than the served one)"),
    )
    return version


NIGHTLY = (Algorithm.POPULARITY, Algorithm.HYBRID, Algorithm.ITEM_ITEM)


def model_train_all() -> list[ModelVersion]:
    """The nightly retraining: popularity (the fallback), the hybrid that serves
    personalized lists, and item-to-item for related items. One failing does not stop the
    others."""
    versions = []
    for algorithm in NIGHTLY:
        try:
            versions.append(model_train(algorithm=algorithm))
        except TrainingDataError as exc:
            logger.warning("not trained", extra={"algorithm": algorithm, "reason": str(exc)})
        except Exception:
            logger.exception("training failed", extra={"algorithm": algorithm})
    return versions


def events_since_last_training() -> int:
    """Events stored since the newest ready hybrid version read its data (by event pk)."""
    last = (
        ModelVersion.objects.filter(algorithm=Algorithm.HYBRID, status=ModelStatus.READY)
        .order_by("-pk")
        .values_list("params", flat=True)
        .first()
    )
    since = int((last or {}).get("last_event_pk", 0))
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM profiles_event")
        newest = int(cursor.fetchone()[0])
    return max(0, newest - since)


@dataclass(frozen=True)
class RefreshResult:
    version_id: int | None
    touched_items: int
    refreshed_through_pk: int


def similar_items_refresh(*, window_days: int | None = None) -> RefreshResult:
    """Refresh the served item-to-item lists of the items that new events touched, between
    full retrainings (the CleverTap design): the same cosine as the full model, computed
    only for those items, written into the served version in place. The version remembers
    the event pk it has seen through, so a second run without new events does nothing."""
    version = modelversion_get_active(algorithm=Algorithm.ITEM_ITEM)
    if version is None:
        return RefreshResult(version_id=None, touched_items=0, refreshed_through_pk=0)
    seen = int(version.params.get("refreshed_through_pk", version.params.get("last_event_pk", 0)))
    weighted = [t for t, w in _type_weights().items() if w > 0]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(max(id), %s) FROM profiles_event WHERE id > %s", [seen, seen]
        )
        through = int(cursor.fetchone()[0])
        cursor.execute(
            "SELECT DISTINCT item_external_id FROM profiles_event "
            "WHERE id > %s AND id <= %s AND item_external_id <> '' AND type = ANY(%s)",
            [seen, through, weighted],
        )
        touched_ids = [row[0] for row in cursor.fetchall()]
    stored = 0
    if touched_ids:
        loaded = training_data_load(
            window_days=window_days or settings.RECOMMENDER_TRAINING_WINDOW_DAYS
        )
        data = InteractionData.from_interactions(
            loaded.interactions, extra_item_ids=loaded.items.item_ids, type_weights=_type_weights()
        )
        touched = data.encode_items(touched_ids)
        touched = touched[touched >= 0]
        if len(touched):
            idx, scores = similar_for_items(data.binary(), touched, SIMILAR_LENGTH)
            rows = _similar_rows(touched, idx, scores, data.item_ids, loaded.item_pks)
            stored = similar_lists_store(version=version, rows=rows)
            similar_cache_drop(version_id=version.pk, item_ids=[data.item_ids[i] for i in touched])
    params = dict(version.params)
    params["refreshed_through_pk"] = through
    params["incremental_refreshes"] = int(params.get("incremental_refreshes", 0)) + (
        1 if stored else 0
    )
    ModelVersion.objects.filter(pk=version.pk).update(params=params)
    if stored:
        logger.info("related items refreshed", extra={"version": version.pk, "items": stored})
    return RefreshResult(version_id=version.pk, touched_items=stored, refreshed_through_pk=through)
