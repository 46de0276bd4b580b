"""A rule segment's page in Chromium: press Refresh now (a real Celery worker runs it), see the
count and the history chart change, then download the email export."""

import csv

import pytest
from playwright.sync_api import expect

from profiles.consent import consent_set
from profiles.segments.export import EXPORT_COLUMNS
from profiles.segments.services import segment_create, segment_refresh
from tests.profiles.factories import ChannelEndpointFactory, CustomerFactory

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

GERMANS = {
    "op": "and",
    "conditions": [{"kind": "profile", "field": "country", "op": "eq", "value": "DE"}],
}


def _german(external_id: str, *, consent: bool = True):
    customer = CustomerFactory(
        external_id=external_id, first_name=external_id.title(), country="DE"
    )
    ChannelEndpointFactory(customer=customer, channel="email", address=f"{external_id}@ex.com")
    if consent:
        consent_set(customer=customer, purpose="marketing_email", granted=True, source="import")
    return customer


def test_refresh_now_updates_count_and_chart_and_the_export_downloads(
    marketer_page, live_server, celery_worker_process, tmp_path, screenshot_dir
):
    _german("ann")
    _german("bob", consent=False)
    CustomerFactory(external_id="fred", country="FR")
    segment = segment_create(name="Germans", rules=GERMANS, refresh=False)
    segment_refresh(segment=segment)
    cem = _german("cem")  # arrives after the last refresh

    page = marketer_page
    page.goto(f"{live_server.url}/segments/")
    page.get_by_role("link", name="Germans").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Germans")
    expect(page.locator("#segment-rule")).to_have_text("country is DE")
    expect(page.locator("#segment-count")).to_have_text("2")
    expect(page.locator("#segment-history-chart .main-svg").first).to_be_visible()
    expect(page.locator("#segment-members tbody tr")).to_have_count(2)

    page.get_by_role("button", name="Refresh now").click()
    expect(page.locator("#segment-count")).to_have_text("3", timeout=30_000)
    expect(page.locator("#segment-status")).not_to_contain_text("refreshing")
    expect(page.locator("#segment-members tbody tr").first).to_contain_text("cem")
    expect(page.locator("#segment-history-chart .main-svg").first).to_be_visible()
    sizes = page.evaluate("document.getElementById('segment-history-chart').data[0].y")
    assert sizes == [2, 3]

    channel = page.get_by_label("Channel")
    expect(channel.locator("option")).to_have_text(
        ["All channels (2)", "Email (2)", "SMS (0)", "Push (0)"]
    )
    channel.select_option("email")
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Export").click()
    download = download_info.value
    assert download.suggested_filename == f"segment-{segment.pk}-germans-email.csv"
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == list(EXPORT_COLUMNS)
    # bob has no email consent; fred is not German.
    assert [row[:2] + row[3:] for row in rows[1:]] == [
        ["EMAIL", "ann@ex.com", "ann", "Ann", "DE", "Germans"],
        ["EMAIL", "cem@ex.com", "cem", "Cem", "DE", "Germans"],
    ]
    assert rows[2][2] == str(cem.endpoints.get().pk)
    assert page.console_errors == []
    if screenshot_dir:
        page.screenshot(path=screenshot_dir / "segment_detail.png", full_page=True)
