"""Finding clusters in Chromium: from the Segments page, run k-means with a fixed k on a small
simulated store (a real Celery worker), read the clusters, keep one as a segment."""

import pytest
from playwright.sync_api import expect

from marketing.simulation.load import store_simulate
from marketing.simulation.store import StoreConfig
from profiles.models import ClusterRun, Segment, SegmentKind
from profiles.services import features_rebuild

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def store():
    store_simulate(config=StoreConfig(customers=300, items=60, days=30, seed=3), reset=True)
    features_rebuild(repair=True)


def test_find_clusters_and_save_one_as_a_segment(
    marketer_page, live_server, store, celery_worker_process, screenshot_dir
):
    page = marketer_page
    base = live_server.url
    page.goto(f"{base}/segments/")
    page.get_by_role("link", name="Find clusters").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Find clusters")
    if screenshot_dir:
        page.screenshot(path=screenshot_dir / "cluster_list.png", full_page=True)

    page.get_by_label("Fixed k").fill("3")
    page.get_by_role("button", name="Run").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Clusters, run #")
    expect(page.locator("#cluster-k")).to_have_text("3", timeout=90_000)
    expect(page.locator("#silhouette-chart .main-svg").first).to_be_visible()
    rows = page.locator("#cluster-table tbody tr")
    expect(rows).to_have_count(3)
    if screenshot_dir:
        page.screenshot(path=screenshot_dir / "segment_clusters.png", full_page=True)

    run = ClusterRun.objects.get()
    first = run.clusters[0]
    name_input = page.get_by_label("Segment name for cluster 1")
    expect(name_input).to_have_value(f"Cluster 1 (run {run.pk}): {first['description']}")
    name_input.fill("Cluster one")
    rows.first.get_by_role("button", name="Save as segment").click()
    expect(rows.first).to_contain_text(f"Saved as Cluster one ({first['size']} members)")

    segment = Segment.objects.get(name="Cluster one")
    assert segment.kind == SegmentKind.MODEL
    assert segment.member_count == first["size"]
    page.goto(f"{base}/segments/")
    expect(page.locator("#segment-table")).to_contain_text("Cluster one")
    assert page.console_errors == []
