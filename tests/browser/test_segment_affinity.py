"""Finding customers by affinity in Chromium: a bad expression is pointed at, then a good one
is scored by a real Celery worker and saved as a segment."""

import pytest
from playwright.sync_api import expect

from marketing.simulation.load import store_simulate
from marketing.simulation.store import StoreConfig
from profiles.models import Segment, SegmentKind
from recommender.models import Algorithm
from recommender.training import model_train

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def served_model(settings, tmp_path, monkeypatch):
    """A hybrid trained on a small simulated store; the worker process reads the model file
    the test process wrote, so both use one media directory."""
    media = str(tmp_path / "media")
    settings.MEDIA_ROOT = media
    monkeypatch.setenv("DJANGO_MEDIA_ROOT", media)
    store_simulate(config=StoreConfig(customers=300, items=60, days=30, seed=11), reset=True)
    return model_train(algorithm=Algorithm.HYBRID)


def test_find_customers_by_affinity(
    marketer_page, live_server, served_model, celery_worker_process, screenshot_dir
):
    page = marketer_page
    page.goto(f"{live_server.url}/segments/")
    page.get_by_role("link", name="Find customers by affinity").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Find customers by affinity")

    page.get_by_label("Segment name").fill("Book lovers")
    page.get_by_label("Expression", exact=True).fill('categry = "books"')
    page.get_by_label("Number of customers").fill("30")
    page.get_by_role("button", name="Build segment").click()
    expect(page.locator("#expression-errors")).to_contain_text(
        "Unknown field 'categry'", timeout=10_000
    )
    expect(page.locator("#expression-errors")).to_contain_text("(at position 1)")

    page.get_by_label("Expression", exact=True).fill(
        'category = "books" or brand in ("Acme", "Globex")'
    )
    page.get_by_role("button", name="Build segment").click()
    expect(page.locator("#affinity-job .job-status")).to_contain_text("Done", timeout=60_000)
    if screenshot_dir:
        page.screenshot(path=screenshot_dir / "segment_affinity.png", full_page=True)
    segment = Segment.objects.get(name="Book lovers")
    assert segment.kind == SegmentKind.MODEL
    assert segment.member_count == 30
    assert segment.definition["source"] == "attribute_affinity"
    link = page.locator("#affinity-segment-link")
    expect(link).to_have_attribute("href", f"/segments/{segment.pk}/")
    assert page.console_errors == []
