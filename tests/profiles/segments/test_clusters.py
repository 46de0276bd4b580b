"""Clustering runs on a small simulated store: create, execute (the task body), save a
cluster as a segment."""

import pytest
from django.db.models import Count

from marketing.models import Job, JobStatus
from profiles.models import (
    ClusterAssignment,
    ClusterRun,
    Customer,
    Segment,
    SegmentKind,
    SegmentMembership,
)
from profiles.privacy import customer_erase, privacy_export
from profiles.segments.clusters import (
    cluster_run_create,
    cluster_run_execute,
    cluster_run_silhouette_chart,
    cluster_save_as_segment,
)
from profiles.segments.errors import (
    ClusterNotFoundError,
    ClusterRunInvalidError,
    ClusterRunNotReadyError,
    SegmentNameTakenError,
)
from profiles.segments.tasks_clusters import cluster_run_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def store(cluster_store):
    return cluster_store


def _run(marketer, **params) -> ClusterRun:
    run = cluster_run_create(user=marketer, **params)
    cluster_run_task.run(run_id=run.pk, job_id=run.job_id)
    run.refresh_from_db()
    return run


def test_create_records_the_run_and_schedules_the_task(
    marketer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        run = cluster_run_create(k_min=3, k_max=5, user=marketer)

    assert len(callbacks) == 1
    assert run.params == {
        "k_min": 3,
        "k_max": 5,
        "k": None,
        "groups": ["value", "categories", "channels", "dayparts"],
    }
    assert run.created_by == marketer
    assert run.k is None
    assert run.job.kind == "cluster_run"
    assert run.job.status == JobStatus.PENDING


@pytest.mark.parametrize(
    "params", [{"k": 1}, {"k_min": 6, "k_max": 3}, {"k": 21}, {"k_min": 2, "k_max": 30}]
)
def test_create_refuses_a_bad_k_and_stores_nothing(marketer, params):
    with pytest.raises(ClusterRunInvalidError, match="k must be between 2 and 20"):
        cluster_run_create(user=marketer, **params)

    assert ClusterRun.objects.count() == 0
    assert Job.objects.count() == 0


@pytest.mark.parametrize("groups", [[], ["value", "colour"]])
def test_create_refuses_unknown_or_no_feature_groups(marketer, groups):
    with pytest.raises(ClusterRunInvalidError, match="Choose feature groups among value"):
        cluster_run_create(user=marketer, groups=groups)

    assert ClusterRun.objects.count() == 0


def test_execute_on_category_tastes_alone(marketer, store):
    run = _run(marketer, k=4, groups=["categories"])

    assert run.params["groups"] == ["categories"]
    assert run.params["features"]
    assert all(name.startswith("category:") for name in run.params["features"])
    assert all(name.startswith("category:") for name in run.clusters[0]["centroid"])


def test_execute_clusters_every_customer_with_events(marketer, store):
    erased = Customer.objects.filter(features__last_seen__isnull=False).first()
    Customer.objects.filter(pk=erased.pk).update(erased_at="2026-01-01T00:00:00Z")

    run = _run(marketer, k_min=2, k_max=5)

    assert run.customers == store - 1
    assert 2 <= run.k <= 5
    assert set(run.silhouette_by_k) == {"2", "3", "4", "5"}
    assert run.silhouette == max(run.silhouette_by_k.values())
    assert "recency_days" in run.params["features"]
    assert "category:electronics" in run.params["features"]
    assert run.finished_at is not None
    assert ClusterAssignment.objects.filter(run=run).count() == store - 1
    assert not ClusterAssignment.objects.filter(customer=erased).exists()
    sizes = dict(
        ClusterAssignment.objects.filter(run=run).values_list("cluster").annotate(n=Count("pk"))
    )
    assert sizes == {c["index"]: c["size"] for c in run.clusters}
    assert [c["index"] for c in run.clusters] == list(range(run.k))
    assert all(c["description"] for c in run.clusters)
    assert sum(c["size"] for c in run.clusters) == store - 1
    job = Job.objects.get(pk=run.job_id)
    assert job.status == JobStatus.DONE
    assert job.done == job.total == 6
    assert job.result["k"] == run.k
    assert job.message.startswith(f"{run.k} clusters of {store - 1:,} customers")


def test_execute_twice_stores_the_assignments_once(marketer, store):
    run = _run(marketer, k=3)
    first = list(ClusterAssignment.objects.filter(run=run).values_list("customer_id", "cluster"))

    cluster_run_execute(run_id=run.pk, job_id=run.job_id)

    assert run.k == 3
    assert list(run.silhouette_by_k) == ["3"]
    assert ClusterAssignment.objects.filter(run=run).count() == store
    assert (
        list(ClusterAssignment.objects.filter(run=run).values_list("customer_id", "cluster"))
        == first
    )


def test_execute_with_too_few_customers_fails_the_job(marketer):
    run = _run(marketer, k=3)

    job = Job.objects.get(pk=run.job_id)
    assert job.status == JobStatus.FAILED
    assert job.error == "0 customers are too few to form 3 clusters."
    assert run.k is None
    assert ClusterAssignment.objects.count() == 0


def test_save_cluster_as_segment(marketer, store):
    run = _run(marketer, k=3)
    cluster = run.clusters[1]

    segment = cluster_save_as_segment(run=run, cluster=1, name="Evening buyers", user=marketer)

    assert segment.kind == SegmentKind.MODEL
    assert segment.member_count == cluster["size"]
    assert segment.created_by == marketer
    assert segment.definition == {
        "source": "cluster",
        "run": run.pk,
        "cluster": 1,
        "description": cluster["description"],
        "silhouette": run.silhouette,
        "score": "distance to the cluster centre",
    }
    assert segment.description == f"Cluster 2 of 3 (run #{run.pk}): {cluster['description']}"
    members = dict(
        SegmentMembership.objects.filter(segment=segment).values_list("customer", "score")
    )
    assert members == dict(
        ClusterAssignment.objects.filter(run=run, cluster=1).values_list("customer", "distance")
    )


def test_save_refuses_unfinished_runs_unknown_clusters_and_taken_names(marketer, store):
    before = set(Segment.objects.values_list("name", flat=True))  # the store's demo segments
    pending = cluster_run_create(k=3, user=marketer)
    with pytest.raises(ClusterRunNotReadyError):
        cluster_save_as_segment(run=pending, cluster=0, name="x", user=marketer)
    run = _run(marketer, k=3)
    with pytest.raises(ClusterNotFoundError, match="has no cluster 3"):
        cluster_save_as_segment(run=run, cluster=3, name="x", user=marketer)
    cluster_save_as_segment(run=run, cluster=0, name="Taken", user=marketer)
    with pytest.raises(SegmentNameTakenError):
        cluster_save_as_segment(run=run, cluster=1, name="Taken", user=marketer)

    assert set(Segment.objects.values_list("name", flat=True)) == before | {"Taken"}
    assert Segment.objects.get(name="Taken").member_count == run.clusters[0]["size"]


def test_silhouette_chart_highlights_the_chosen_k(marketer):
    run = ClusterRun(k=3, silhouette_by_k={"2": 0.2, "3": 0.4, "10": 0.1})

    assert cluster_run_silhouette_chart(run=run) == [
        {
            "type": "bar",
            "x": [2, 3, 10],
            "y": [0.2, 0.4, 0.1],
            "marker": {"color": ["#94a3b8", "#2563eb", "#94a3b8"]},
            "name": "silhouette",
        }
    ]
    assert cluster_run_silhouette_chart(run=ClusterRun()) == []


def test_privacy_export_lists_and_erasure_removes_the_assignments(marketer, store):
    run = _run(marketer, k=2)
    assignment = ClusterAssignment.objects.filter(run=run).select_related("customer").first()
    customer = assignment.customer
    others = ClusterAssignment.objects.count() - 1

    exported = privacy_export(customer=customer)
    erasure = customer_erase(customer=customer, source="api")

    assert exported["clusters"] == [
        {"run_id": run.pk, "cluster": assignment.cluster, "distance": assignment.distance}
    ]
    assert erasure.removed["cluster_assignments"] == 1
    assert not ClusterAssignment.objects.filter(customer=customer).exists()
    assert ClusterAssignment.objects.count() == others
