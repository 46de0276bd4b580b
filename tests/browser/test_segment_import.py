"""Importing a segment in Chromium: from the Segments page, upload a small list, read the
report with the unknown row's number, follow the link to the new segment."""

import pytest
from playwright.sync_api import expect

from profiles.models import Segment, SegmentMembership
from tests.profiles.factories import CustomerFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_upload_a_list_and_read_the_report(
    marketer_page, live_server, settings, tmp_path, screenshot_dir
):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    ann = CustomerFactory(external_id="c-ann", email="ann@example.com")
    bob = CustomerFactory(external_id="c-bob", email="bob@example.com")
    csv_file = tmp_path / "newsletter.csv"
    csv_file.write_text("\ufeffEmail\nANN@example.com\nnobody@example.com\nbob@example.com\n")

    page = marketer_page
    page.goto(f"{live_server.url}/segments/")
    if screenshot_dir:
        page.screenshot(path=screenshot_dir / "segment_list.png", full_page=True)
    page.get_by_role("link", name="Import a list").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Import a segment")

    page.get_by_label("Name", exact=True).fill("Newsletter readers")
    page.get_by_label("Description").fill("From the newsletter tool")
    page.get_by_label("File").set_input_files(str(csv_file))
    page.get_by_role("button", name="Import").click()

    result = page.locator("#segment-import-result")
    expect(result).to_contain_text("Imported newsletter.csv into Newsletter readers")
    expect(result.locator(".stat")).to_have_text(
        ["3 rows read", "2 matched", "0 duplicates", "1 unknown", "2 members"]
    )
    unknown = result.locator("#unknown-rows tbody tr")
    expect(unknown).to_have_count(1)
    expect(unknown.locator("td")).to_have_text(
        ["3", "nobody@example.com", "No customer has this value."]
    )
    if screenshot_dir:
        page.screenshot(path=screenshot_dir / "segment_import.png", full_page=True)
    segment = Segment.objects.get(name="Newsletter readers")
    expect(result.get_by_role("link", name="Newsletter readers")).to_have_attribute(
        "href", f"/segments/{segment.pk}/"
    )
    assert set(
        SegmentMembership.objects.filter(segment=segment).values_list("customer_id", flat=True)
    ) == {ann.pk, bob.pk}
    assert page.console_errors == []
