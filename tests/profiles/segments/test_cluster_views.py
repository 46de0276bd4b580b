"""The Find clusters pages: run form, progress, results, save a cluster as a segment."""

import pytest
from django.urls import reverse

from marketing.models import Job, JobStatus
from profiles.models import ClusterRun, Segment, SegmentKind
from profiles.segments.clusters import cluster_run_create
from profiles.segments.tasks_clusters import cluster_run_task

pytestmark = pytest.mark.django_db

LIST = reverse("profiles:cluster-list")


def _done_run(user, k=3) -> ClusterRun:
    run = cluster_run_create(k=k, user=user)
    cluster_run_task.run(run_id=run.pk, job_id=run.job_id)
    run.refresh_from_db()
    return run


def test_list_shows_the_form_and_recent_runs(marketer_client, marketer, cluster_store):
    run = _done_run(marketer)

    response = marketer_client.get(LIST)

    assert response.status_code == 200
    body = response.content.decode()
    assert 'name="k_min"' in body
    assert "Run</button>" in body
    assert reverse("profiles:cluster-detail", args=[run.pk]) in body


def test_run_starts_a_job_and_opens_the_progress_page(
    marketer_client, marketer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = marketer_client.post(
            LIST,
            {"k_min": "2", "k_max": "4", "k": "", "groups": ["categories", "dayparts"]},
            HTTP_HX_REQUEST="true",
        )

    run = ClusterRun.objects.get()
    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("profiles:cluster-detail", args=[run.pk])
    assert len(callbacks) == 1
    assert run.params == {"k_min": 2, "k_max": 4, "k": None, "groups": ["categories", "dayparts"]}
    assert run.created_by == marketer

    page = marketer_client.get(response["HX-Redirect"])
    body = page.content.decode()
    assert "Finding clusters" in body
    assert f'hx-get="{reverse("job-detail", args=[run.job_id])}"' in body
    assert 'hx-trigger="job-finished from:body"' in body


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"k_min": "5", "k_max": "3", "k": ""}, "Must be at least the smallest k."),
        (
            {"k_min": "2", "k_max": "8", "k": "1"},
            "Ensure this value is greater than or equal to 2.",
        ),
        ({"k_min": "2", "k_max": "40", "k": ""}, "Ensure this value is less than or equal to 20."),
        ({"k_min": "2", "k_max": "8", "k": "", "groups": []}, "This field is required."),
        (
            {"k_min": "2", "k_max": "8", "k": "", "groups": ["colour"]},
            "Select a valid choice. colour is not one of the available choices.",
        ),
    ],
)
def test_run_with_bad_input_shows_the_error_and_starts_nothing(marketer_client, data, error):
    data = {"groups": ["value"], **data}
    response = marketer_client.post(LIST, data, HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    assert error in response.content.decode()
    assert ClusterRun.objects.count() == 0
    assert Job.objects.count() == 0


def test_result_page_shows_k_silhouette_chart_and_clusters(
    marketer_client, marketer, cluster_store
):
    run = _done_run(marketer, k=3)

    response = marketer_client.get(reverse("profiles:cluster-detail", args=[run.pk]))

    body = response.content.decode()
    assert '<b id="cluster-k">3</b>' in body
    assert f'<b id="cluster-silhouette">{run.silhouette}</b>' in body
    assert 'id="silhouette-chart"' in body
    assert body.count("Save as segment</button>") == 3
    for cluster in run.clusters:
        assert cluster["description"] in body
        assert f'value="Cluster {cluster["index"] + 1} (run {run.pk}): ' in body


def test_htmx_refresh_renders_only_the_result_fragment(marketer_client, marketer, cluster_store):
    run = _done_run(marketer, k=2)

    response = marketer_client.get(
        reverse("profiles:cluster-detail", args=[run.pk]), HTTP_HX_REQUEST="true"
    )

    body = response.content.decode()
    assert "<html" not in body
    assert 'id="cluster-table"' in body


def test_save_as_segment_creates_it_and_links_to_it(marketer_client, marketer, cluster_store):
    run = _done_run(marketer, k=3)

    response = marketer_client.post(
        reverse("profiles:cluster-save", args=[run.pk]),
        {"cluster": "2", "name": "Night owls"},
        HTTP_HX_REQUEST="true",
    )

    segment = Segment.objects.get(name="Night owls")
    assert response.status_code == 200
    assert f'<a href="/segments/{segment.pk}/">Night owls</a>' in response.content.decode()
    assert segment.kind == SegmentKind.MODEL
    assert segment.member_count == run.clusters[2]["size"]
    assert segment.definition["cluster"] == 2


def test_result_page_links_the_clusters_already_saved(marketer_client, marketer, cluster_store):
    run = _done_run(marketer, k=3)
    other = _done_run(marketer, k=3)
    marketer_client.post(
        reverse("profiles:cluster-save", args=[run.pk]), {"cluster": "1", "name": "Night owls"}
    )
    segment = Segment.objects.get(name="Night owls")

    html = marketer_client.get(reverse("profiles:cluster-detail", args=[run.pk])).content.decode()

    assert f'Saved as <a href="/segments/{segment.pk}/">Night owls</a>' in html
    assert html.count("Save as segment</button>") == 2
    other_html = marketer_client.get(
        reverse("profiles:cluster-detail", args=[other.pk])
    ).content.decode()
    assert "Saved as" not in other_html
    assert other_html.count("Save as segment</button>") == 3


def test_save_with_a_taken_name_or_unknown_cluster_shows_the_error(
    marketer_client, marketer, cluster_store
):
    run = _done_run(marketer, k=2)
    Segment.objects.create(name="Taken", kind=SegmentKind.MODEL)
    before = Segment.objects.count()
    url = reverse("profiles:cluster-save", args=[run.pk])

    taken = marketer_client.post(url, {"cluster": "0", "name": "Taken"}, HTTP_HX_REQUEST="true")
    unknown = marketer_client.post(url, {"cluster": "5", "name": "New"}, HTTP_HX_REQUEST="true")

    assert taken.status_code == 200
    assert "A segment named &#x27;Taken&#x27; already exists." in taken.content.decode()
    assert f"Run #{run.pk} has no cluster 5." in unknown.content.decode()
    assert Segment.objects.count() == before


def test_analyst_sees_results_but_cannot_run_or_save(analyst_client, marketer, cluster_store):
    run = _done_run(marketer, k=2)
    segments = Segment.objects.count()

    page = analyst_client.get(reverse("profiles:cluster-detail", args=[run.pk]))
    listing = analyst_client.get(LIST)
    run_post = analyst_client.post(LIST, {"k_min": "2", "k_max": "3", "k": ""})
    save_post = analyst_client.post(
        reverse("profiles:cluster-save", args=[run.pk]), {"cluster": "0", "name": "Mine"}
    )

    assert page.status_code == 200
    assert "Save as segment" not in page.content.decode()
    assert run.clusters[0]["description"] in page.content.decode()
    assert listing.status_code == 200
    assert 'name="k_min"' not in listing.content.decode()
    assert run_post.status_code == 403
    assert save_post.status_code == 403
    assert ClusterRun.objects.count() == 1
    assert Segment.objects.count() == segments


def test_failed_run_shows_the_error(marketer_client, marketer):
    run = _done_run(marketer, k=3)  # no customers at all

    body = marketer_client.get(reverse("profiles:cluster-detail", args=[run.pk])).content.decode()

    assert Job.objects.get(pk=run.job_id).status == JobStatus.FAILED
    assert "0 customers are too few to form 3 clusters." in body


def test_unknown_run_is_404(marketer_client):
    assert marketer_client.get(reverse("profiles:cluster-detail", args=[999])).status_code == 404
    response = marketer_client.post(
        reverse("profiles:cluster-save", args=[999]), {"cluster": "0", "name": "x"}
    )
    assert response.status_code == 404


def test_segment_list_has_find_clusters_for_editors_only(client, marketer, analyst):
    button = f'href="{LIST}">Find clusters</a>'
    client.force_login(marketer)
    assert button in client.get(reverse("profiles:segment-list")).content.decode()
    client.force_login(analyst)
    assert button not in client.get(reverse("profiles:segment-list")).content.decode()


def test_pages_run_a_fixed_number_of_queries(
    marketer_client, marketer, cluster_store, django_assert_num_queries
):
    runs = [_done_run(marketer, k=2), _done_run(marketer, k=3)]
    cluster_run_create(k=2, user=marketer)  # still pending
    marketer_client.get(LIST)  # session and user cached like on any later request

    with django_assert_num_queries(4):
        marketer_client.get(LIST)
    with django_assert_num_queries(5):  # and the segments saved from the run
        marketer_client.get(reverse("profiles:cluster-detail", args=[runs[1].pk]))
