import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.urls import reverse

from campaigns.models import Message
from experiments.attribution_reports import (
    AttributionQuery,
    attribution_report,
    attribution_report_compute,
    attribution_report_csv,
)
from tests.campaigns.factories import CampaignFactory
from tests.profiles.factories import CustomerFactory, EventFactory

pytestmark = pytest.mark.django_db

UNTIL = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
SINCE = UNTIL - dt.timedelta(days=30)
T = UNTIL - dt.timedelta(days=5)  # the conversions' day


def days(n: float) -> dt.timedelta:
    return dt.timedelta(days=n)


@pytest.fixture
def journeys():
    """A: email sent (campaign X, cost 20) -> email click (X) -> google visit -> buys 100.
    B: SMS sent (campaign Y, no cost) -> buys 50. C: a direct visit, no purchase."""
    x = CampaignFactory(name="Winter email", channel="email", cost=Decimal("20.00"))
    y = CampaignFactory(name="SMS flash", channel="sms")
    a, b, c = CustomerFactory(), CustomerFactory(), CustomerFactory()
    Message.objects.create(
        campaign=x, customer=a, channel="email", idempotency_key="a", sent_at=T - days(3)
    )
    EventFactory(
        customer=a, type="email_click", channel="email", campaign_id=x.pk, occurred_at=T - days(2)
    )
    EventFactory(
        customer=a, type="view", channel="web", properties={"utm_source": "Google"},
        occurred_at=T - days(1),
    )  # fmt: skip
    EventFactory(customer=a, type="purchase", channel="web", value=Decimal("100"), occurred_at=T)
    Message.objects.create(
        campaign=y, customer=b, channel="sms", idempotency_key="b", sent_at=T - days(2)
    )
    EventFactory(customer=b, type="purchase", value=Decimal("50"), occurred_at=T)
    EventFactory(customer=c, type="view", channel="web", occurred_at=T - days(1))
    # Not touchpoints: an add to cart, and a view without channel or campaign.
    EventFactory(customer=c, type="add_to_cart", channel="web", occurred_at=T)
    EventFactory(customer=c, type="view", channel="", occurred_at=T)
    return x, y


def query(**more) -> AttributionQuery:
    return AttributionQuery(since=SINCE, until=UNTIL, **more)


def test_paths_from_events_and_messages_credit_every_model(journeys):
    x, y = journeys
    report = attribution_report_compute(query=query())
    assert report.n_paths == 3  # A and B convert, C does not
    assert report.n_touches == 5  # A 3, B 1, C 1
    assert (report.n_conversions, report.total_value) == (2.0, 150.0)
    assert report.credit["last_touch"] == {
        "direct": 0.0,
        "email": 0.0,
        "google": 100.0,
        "sms": 50.0,
    }
    assert report.credit["first_touch"]["email"] == 100.0
    assert report.credit["linear"]["email"] == pytest.approx(200 / 3)
    assert report.credit["linear"]["google"] == pytest.approx(100 / 3)
    for model in report.models:
        assert sum(report.credit[model].values()) == pytest.approx(150.0)
    by_name = {c.name: c for c in report.campaigns}
    assert by_name["Winter email"].credit["linear"] == pytest.approx(200 / 3)
    assert by_name["Winter email"].roi("linear") == pytest.approx(200 / 3 / 20)
    assert by_name["SMS flash"].credit["first_touch"] == 50.0
    assert by_name["SMS flash"].roi("first_touch") is None


def test_touches_before_a_conversion_before_the_period_are_not_credited_again():
    customer = CustomerFactory()
    EventFactory(
        customer=customer, type="email_click", channel="email", campaign_id=1,
        occurred_at=SINCE - days(5),
    )  # fmt: skip
    EventFactory(
        customer=customer, type="purchase", value=Decimal("30"), occurred_at=SINCE - days(2)
    )
    EventFactory(
        customer=customer, type="view", channel="web", properties={"source": "newsletter"},
        occurred_at=SINCE + days(1),
    )  # fmt: skip
    EventFactory(
        customer=customer, type="purchase", value=Decimal("80"), occurred_at=SINCE + days(2)
    )
    report = attribution_report_compute(query=query())
    assert report.n_conversions == 1.0
    assert report.credit["first_touch"] == {"newsletter": 80.0}


def test_lookback_leaves_old_touches_out_and_reports_unattributed_conversions(journeys):
    report = attribution_report_compute(query=query(lookback_days=1))
    assert report.credit["last_touch"] == {"direct": 0.0, "email": 0, "google": 100.0, "sms": 0}
    assert (report.unattributed_conversions, report.unattributed_value) == (1.0, 50.0)


def test_report_is_cached_per_query(journeys):
    first, cached = attribution_report(query=query())
    assert cached is False
    Message.objects.all().delete()
    again, cached = attribution_report(query=query())
    assert cached is True
    assert again.credit == first.credit
    other, cached = attribution_report(query=query(lookback_days=10))
    assert cached is False


def test_csv_has_a_row_per_channel_and_campaign_and_model(journeys):
    report = attribution_report_compute(query=query())
    rows = list(csv.DictReader(io.StringIO(attribution_report_csv(report))))
    assert len(rows) == (4 + 2) * len(report.models)
    winter = next(r for r in rows if r["name"] == "Winter email" and r["model"] == "first_touch")
    assert (winter["credit"], winter["cost"], winter["roi"]) == ("100.0", "20.0", "5.0")


def test_attribution_page_for_an_analyst(analyst_client, journeys):
    response = analyst_client.get(reverse("experiments:attribution"), {"period": "90"})
    assert response.status_code == 200
    report = response.context["report"]
    assert report.credit["last_touch"]["google"] == 100.0
    page = response.content.decode()
    assert 'id="attribution-chart"' in page
    assert "Winter email" in page
    assert "ROI 5.00×" in page
    assert f'href="{reverse("experiments:attribution-export")}?period=90"' in page


def test_attribution_htmx_renders_the_report_fragment(analyst_client):
    response = analyst_client.get(
        reverse("experiments:attribution"), {"period": "7"}, headers={"HX-Request": "true"}
    )
    page = response.content.decode()
    assert page.lstrip().startswith('<div id="attribution-report">')
    assert "No touchpoints or conversions in this period." in page


def test_attribution_export_downloads_csv(analyst_client, journeys):
    response = analyst_client.get(reverse("experiments:attribution-export"), {"period": "90"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    assert response["Content-Disposition"] == 'attachment; filename="attribution.csv"'
    assert (
        response.content.decode().splitlines()[0] == "level,name,model,credit,conversions,cost,roi"
    )


@pytest.mark.parametrize(
    ("params", "field"),
    [({"period": "365"}, "period"), ({"lookback_days": "0"}, "lookback_days"),
     ({"goal": "nothing"}, "goal")],
)  # fmt: skip
def test_attribution_rejects_bad_parameters(analyst_client, params, field):
    response = analyst_client.get(reverse("experiments:attribution"), params)
    assert response.status_code == 400
    assert field in response.context["form"].errors
    export = analyst_client.get(reverse("experiments:attribution-export"), params)
    assert export.status_code == 400
    assert field in export.json()


def test_a_big_period_is_computed_by_a_job_with_progress(
    marketer, journeys, django_capture_on_commit_callbacks
):
    from experiments.attribution_reports import attribution_report_request
    from experiments.tasks import attribution_report_compute_task
    from marketing.models import Job

    with django_capture_on_commit_callbacks() as callbacks:
        asked = attribution_report_request(query=query(), user=marketer, inline_max_rows=0)
        again = attribution_report_request(query=query(), user=marketer, inline_max_rows=0)
    assert asked.report is None
    assert again.job == asked.job  # one job per query however many ask
    assert len(callbacks) == 1
    assert Job.objects.filter(kind="attribution").count() == 1
    attribution_report_compute_task(job_id=asked.job.pk, query=query().as_payload())
    job = Job.objects.get(pk=asked.job.pk)
    assert (job.status, job.done, job.total) == ("done", 9, 9)
    assert job.message == "3 paths, 2 conversions"
    done = attribution_report_request(query=query(), user=marketer, inline_max_rows=0)
    assert done.cached is True
    assert done.report.credit["last_touch"]["google"] == 100.0


def test_page_shows_the_job_progress_until_the_report_is_ready(
    analyst_client, journeys, monkeypatch
):
    from experiments import attribution_reports

    monkeypatch.setattr(attribution_reports, "INLINE_MAX_ROWS", 0)
    response = analyst_client.get(reverse("experiments:attribution"), {"period": "90"})
    assert response.status_code == 200
    assert response.context["report"] is None
    job = response.context["job"]
    page = response.content.decode()
    assert f'id="job-{job.pk}"' in page
    assert 'hx-trigger="job-finished from:body"' in page
    export = analyst_client.get(reverse("experiments:attribution-export"), {"period": "90"})
    assert export.status_code == 409
    assert export.json()["extra"] == {"job": job.pk}
