"""Training from the Recommendations page in Chromium, run by a real Celery worker, then the
new version served by the API."""

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from marketing.roles import MARKETER, roles_sync
from marketing.services import api_key_create
from marketing.simulation.load import store_simulate
from marketing.simulation.store import StoreConfig
from profiles.models import Consent
from recommender.models import ModelVersion

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-12345-secret"


@pytest.fixture
def marketer(django_user_model):
    roles_sync()
    user = django_user_model.objects.create_user(username="mara", password=PASSWORD)
    user.groups.add(Group.objects.get(name=MARKETER))
    store_simulate(config=StoreConfig(customers=300, items=60, days=30, seed=3), reset=True)
    return user


def test_train_from_the_page_then_serve(
    page, live_server, marketer, celery_worker_process, screenshot_dir
):
    base = live_server.url
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill("mara")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"{base}/recommendations/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Recommendations")

    page.get_by_label("Algorithm to train").select_option("hybrid")
    page.get_by_role("button", name="Train now").click()
    status = page.locator("#train-panel .job-status")
    expect(status).to_contain_text("Done", timeout=90_000)
    expect(page.locator("#train-panel")).to_contain_text("ready and served")

    page.reload()
    expect(page.locator("#metrics-chart .main-svg").first).to_be_visible()
    expect(page.locator("#modelversion-table")).to_contain_text("Hybrid")
    if screenshot_dir:
        page.screenshot(path=screenshot_dir / "recommendations.png", full_page=True)
    version = ModelVersion.objects.get(algorithm="hybrid")
    assert version.is_active
    assert "ndcg@10" in version.metrics

    # The storefront gets the new version's list for a customer who consented.
    customer_id = (
        Consent.objects.filter(purpose="personalization", granted=True)
        .values_list("customer__external_id", flat=True)
        .filter(customer__events__isnull=False)
        .first()
    )
    _, key = api_key_create(name="shop", scopes=["recommendations:read"])
    response = page.request.get(
        f"{base}/api/v1/customers/{customer_id}/recommendations?k=5",
        headers={"Authorization": f"Api-Key {key}"},
    )
    assert response.status == 200
    body = response.json()
    assert body["model_version"]["id"] == version.pk
    assert body["personalized"] is True
    assert len(body["items"]) == 5
    assert page.console_errors == []
