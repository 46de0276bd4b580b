"""Machine-learned segments: find clusters of customers by behaviour, keep a cluster as a
segment.

A run is requested from the page (`cluster_run_create`), executed by a Celery task
(`cluster_run_execute`: load the features in chunks, fit k-means in
profiles/segments/clustering.py, store one assignment per customer with COPY) and read back
by the result page; `cluster_save_as_segment` turns one cluster into a static segment.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict

import numpy as np
from django.db import transaction
from django.utils import timezone

from marketing.models import Job, JobStatus
from marketing.services import job_create, job_finish, job_mark_failed, job_progress, job_start
from profiles.models import ClusterAssignment, ClusterRun, Segment, SegmentKind
from profiles.segments.clustering import (
    DEFAULT_K_MAX,
    DEFAULT_K_MIN,
    FEATURE_GROUPS,
    ClusteringError,
    clusters_fit,
    feature_matrix,
    feature_matrix_groups,
    k_range_check,
)
from profiles.segments.errors import (
    ClusterNotFoundError,
    ClusterRunInvalidError,
    ClusterRunNotReadyError,
)
from profiles.segments.services import segment_create_static
from profiles.services._db import bulk_cursor, json_value

logger = logging.getLogger(__name__)

JOB_KIND = "cluster_run"
LOAD_CHUNK_SIZE = 10_000

# Only what the feature matrix reads: the recent-item lists stay in the database.
_FEATURES_SQL = """
SELECT f.customer_id, jsonb_build_object(
    'orders', f.state->'orders', 'revenue', f.state->'revenue',
    'sessions', f.state->'sessions', 'first_seen', f.state->'first_seen',
    'last_seen', f.state->'last_seen', 'counts', f.state->'counts',
    'channels', f.state->'channels', 'hours', f.state->'hours',
    'affinity', f.state->'affinity')::text
FROM profiles_customerfeatures f
JOIN profiles_customer c ON c.id = f.customer_id AND c.erased_at IS NULL
WHERE f.last_seen IS NOT NULL AND f.customer_id > %s
ORDER BY f.customer_id
LIMIT %s
"""


def cluster_run_create(
    *,
    k_min: int = DEFAULT_K_MIN,
    k_max: int = DEFAULT_K_MAX,
    k: int | None = None,
    groups: Sequence[str] | None = None,
    user=None,
) -> ClusterRun:
    """Record a run and its Job, and start the clustering in Celery once committed.
    `groups` are the FEATURE_GROUPS to cluster on (all by default)."""
    from profiles.segments.tasks_clusters import cluster_run_task

    try:
        k_range_check(k_min=k_min, k_max=k_max, k=k, n=10**9)
    except ClusteringError as exc:
        raise ClusterRunInvalidError(str(exc), extra={"errors": {"k": str(exc)}}) from exc
    wanted = list(FEATURE_GROUPS) if groups is None else list(groups)
    groups = [g for g in FEATURE_GROUPS if g in wanted]
    if not groups or len(groups) < len(set(wanted)):
        message = f"Choose feature groups among {', '.join(FEATURE_GROUPS)}."
        raise ClusterRunInvalidError(message, extra={"errors": {"groups": message}})
    params = {"k_min": k_min, "k_max": k_max, "k": k, "groups": groups}
    with transaction.atomic():
        job = job_create(kind=JOB_KIND, user=user)
        run = ClusterRun.objects.create(created_by=user, job=job, params=params)
        transaction.on_commit(
            lambda: cluster_run_task.apply_async(kwargs={"run_id": run.pk, "job_id": job.pk})
        )
    return run


def cluster_run_execute(*, run_id: int, job_id: int) -> ClusterRun | None:
    """Cluster every non-erased customer with at least one event and store the result.

    Idempotent: a run whose job is done or failed is left as it is (a redelivered task is a
    no-op); a run interrupted while storing is stored again from scratch.
    """
    run = ClusterRun.objects.filter(pk=run_id).first()
    job = Job.objects.filter(pk=job_id).first()
    if run is None or job is None or job.status in (JobStatus.DONE, JobStatus.FAILED):
        return run
    params = run.params
    k_fixed = params.get("k")
    ks = [k_fixed] if k_fixed else list(range(params["k_min"], params["k_max"] + 1))
    total = len(ks) + 2
    job_start(job_id=job_id, total=total, message="loading customer features")
    timings: dict[str, float] = {}
    started = time.perf_counter()
    ids: list[int] = []
    matrix = feature_matrix(_states_load(ids), now=timezone.now().timestamp())
    matrix = feature_matrix_groups(matrix, params.get("groups") or list(FEATURE_GROUPS))
    timings["load_seconds"] = round(time.perf_counter() - started, 3)
    job_progress(job_id=job_id, done=1, message=f"loaded {len(ids):,} customers")

    fitted = 0

    def progress(k: int) -> None:
        nonlocal fitted
        fitted += 1
        job_progress(job_id=job_id, done=fitted, message=f"fitting k={k}")

    started = time.perf_counter()
    try:
        result = clusters_fit(
            matrix, k_min=params["k_min"], k_max=params["k_max"], k=k_fixed, progress=progress
        )
    except ClusteringError as exc:
        job_mark_failed(job_id=job_id, error=str(exc))
        logger.info("cluster run refused", extra={"run": run_id, "error": str(exc)})
        return run
    timings["fit_seconds"] = round(time.perf_counter() - started, 3)

    job_progress(job_id=job_id, done=total - 1, message=f"storing {len(ids):,} assignments")
    started = time.perf_counter()
    with transaction.atomic():
        _assignments_store(run_id=run_id, ids=ids, result=result)
        run.params = {**params, "features": list(result.feature_names)}
        run.customers = len(ids)
        run.k = result.k
        run.silhouette = result.silhouette
        run.silhouette_by_k = {str(k): s for k, s in result.silhouette_by_k.items()}
        run.clusters = [asdict(c) for c in result.clusters]
        run.finished_at = timezone.now()
        run.save()
    timings["store_seconds"] = round(time.perf_counter() - started, 3)
    job_finish(
        job_id=job_id,
        result={"run": run.pk, "k": result.k, "silhouette": result.silhouette, **timings},
        message=f"{result.k} clusters of {len(ids):,} customers, silhouette {result.silhouette}",
    )
    logger.info(
        "cluster run finished",
        extra={"run": run.pk, "k": result.k, "customers": len(ids), **timings},
    )
    return run


def _states_load(ids: list[int]) -> Iterator[dict]:
    """The feature states in customer id order, one keyset-paged query per chunk; each id is
    appended to `ids` as its state is yielded."""
    last = 0
    while True:
        with bulk_cursor() as cursor:
            cursor.execute(_FEATURES_SQL, [last, LOAD_CHUNK_SIZE])
            rows = cursor.fetchall()
        for pk, state in rows:
            ids.append(pk)
            yield json_value(state)
        if len(rows) < LOAD_CHUNK_SIZE:
            return
        last = rows[-1][0]


def _assignments_store(*, run_id: int, ids: list[int], result) -> None:
    with bulk_cursor() as cursor:
        cursor.execute("DELETE FROM profiles_clusterassignment WHERE run_id = %s", [run_id])
        with cursor.copy(
            "COPY profiles_clusterassignment (run_id, customer_id, cluster, distance) FROM STDIN"
        ) as copy:
            distances = np.round(result.distances, 4).tolist()
            for pk, label, distance in zip(ids, result.labels.tolist(), distances, strict=True):
                copy.write_row((run_id, pk, label, distance))


def cluster_save_as_segment(*, run: ClusterRun, cluster: int, name: str, user=None) -> Segment:
    """Keep one cluster of a finished run as a machine-learned segment; each member's score is
    its distance to the cluster centre (smaller is more typical)."""
    if run.k is None:
        raise ClusterRunNotReadyError("This clustering run has not finished.")
    summary = next((c for c in run.clusters if c["index"] == cluster), None)
    if summary is None:
        raise ClusterNotFoundError(f"Run #{run.pk} has no cluster {cluster}.")
    scores = dict(
        ClusterAssignment.objects.filter(run=run, cluster=cluster).values_list(
            "customer_id", "distance"
        )
    )
    return segment_create_static(
        name=name,
        kind=SegmentKind.MODEL,
        customer_ids=sorted(scores),
        scores=scores,
        description=f"Cluster {cluster + 1} of {run.k} (run #{run.pk}): {summary['description']}",
        definition={
            "source": "cluster",
            "run": run.pk,
            "cluster": cluster,
            "description": summary["description"],
            "silhouette": run.silhouette,
            "score": "distance to the cluster centre",
        },
        user=user,
    )


# Reads for the pages.


def cluster_run_get(*, pk: int) -> ClusterRun | None:
    return ClusterRun.objects.select_related("job", "created_by").filter(pk=pk).first()


def cluster_run_saved_segments(*, run: ClusterRun) -> dict[int, Segment]:
    """The segments already saved from the run's clusters, by cluster index (the first one
    when a cluster was saved twice)."""
    saved = Segment.objects.filter(definition__source="cluster", definition__run=run.pk)
    by_cluster: dict[int, Segment] = {}
    for segment in saved.order_by("-pk"):
        by_cluster[segment.definition.get("cluster")] = segment
    return by_cluster


def cluster_run_list_recent(*, limit: int = 10) -> list[ClusterRun]:
    return list(ClusterRun.objects.select_related("job", "created_by")[:limit])


def cluster_run_silhouette_chart(*, run: ClusterRun) -> list[dict]:
    """One plotly bar trace: silhouette by k, the chosen k highlighted."""
    if not run.silhouette_by_k:
        return []
    ks = sorted(int(k) for k in run.silhouette_by_k)
    return [
        {
            "type": "bar",
            "x": ks,
            "y": [run.silhouette_by_k[str(k)] for k in ks],
            "marker": {"color": ["#2563eb" if k == run.k else "#94a3b8" for k in ks]},
            "name": "silhouette",
        }
    ]
