"""Customer data end to end in Chromium: a CSV import run by a real Celery worker, then the
imported customer's profile, its features and a consent change made in the page."""

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from marketing.roles import MARKETER, roles_sync
from profiles.models import ConsentChange, Customer
from recommender.models import Item

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-12345-secret"
CSV = (
    "USER_ID,ITEM_ID,EVENT_VALUE,EVENT_TYPE,TIMESTAMP\n"
    "shopper-1,sku-1,1,view,1767225600\n"
    "shopper-1,sku-1,25.5,purchase,1767225900\n"
    "shopper-1,sku-2,1,view,1767226000\n"
    "shopper-2,sku-2,1,view,not-a-time\n"
)


@pytest.fixture
def marketer(django_user_model):
    roles_sync()
    user = django_user_model.objects.create_user(username="mara", password=PASSWORD)
    user.groups.add(Group.objects.get(name=MARKETER))
    Item.objects.create(external_id="sku-1", title="Trail shoe", category="shoes")
    Item.objects.create(external_id="sku-2", title="Sun hat", category="hats")
    return user


def test_import_then_profile_then_consent(
    page, live_server, marketer, celery_worker_process, tmp_path, screenshot_dir
):
    base = live_server.url
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill("mara")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")

    # Upload an Amazon Personalize interactions file; the worker imports it while the page
    # shows the progress bar, which stops polling once the job is done.
    csv_file = tmp_path / "interactions.csv"
    csv_file.write_text(CSV)
    page.goto(f"{base}/customers/")
    page.get_by_role("link", name="Imports").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Imports")
    page.get_by_label("Kind").select_option("interactions")
    page.locator("input[type=file]").set_input_files(str(csv_file))
    page.get_by_role("button", name="Import").click()
    expect(page.locator(".job-status").first).to_contain_text("Done", timeout=60_000)
    if screenshot_dir:
        page.screenshot(path=screenshot_dir / "imports.png", full_page=True)
    # The table refreshes itself when the job ends.
    row = page.locator("#import-table tbody tr").first
    expect(row).to_contain_text("interactions.csv")
    expect(row.locator("td.num").nth(1)).to_have_text("3")
    expect(row.locator("td.num").nth(3)).to_have_text("1")
    with page.expect_download() as download:
        row.get_by_role("link", name="Download report").click()
    report = download.value.path().read_text()
    assert "5" in report.splitlines()[1]
    assert "TIMESTAMP" in report

    # The imported customer's profile: timeline and features folded in by the worker.
    shopper = Customer.objects.get(external_id="shopper-1")
    page.goto(f"{base}/customers/?q=shopper-1")
    page.get_by_role("link", name="shopper-1").first.click()
    expect(page.locator(".timeline tbody tr")).to_have_count(3)
    for _ in range(20):
        if "1 orders" in page.locator("#features").inner_text():
            break
        page.wait_for_timeout(500)
        page.reload()
    expect(page.locator("#features")).to_contain_text("1 orders")
    expect(page.locator("#features")).to_contain_text("shoes")

    # Grant SMS consent in place (htmx); the audit trail records who did it.
    sms_row = page.locator("#consent-panel tbody tr", has_text="SMS").first
    sms_row.get_by_role("button", name="Grant").click()
    expect(page.locator("#consent-panel tbody tr", has_text="SMS").first).to_contain_text("granted")
    expect(page.locator("#consent-panel")).to_contain_text("user:mara")
    assert ConsentChange.objects.get(customer=shopper).purpose == "sms"
    if screenshot_dir:
        page.screenshot(path=screenshot_dir / "profile.png", full_page=True)
    assert page.console_errors == []
