import datetime as dt
from smtplib import SMTPServerDisconnected

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from insights.models import AlertStatus, BrandAlert
from insights.services_health import AlertSettings, brand_alert_email, brand_alerts_check
from insights.spikes import spike_check
from insights.tasks import brand_alert_email_task, brand_alerts_check_task
from tests.insights.email_backends import FailingBackend
from tests.insights.factories import BrandFactory, PostFactory

NOW = dt.datetime(2026, 11, 20, 15, 7, tzinfo=dt.UTC)  # windows end at 15:00
CONFIG = AlertSettings(window=dt.timedelta(hours=1), history=24, k=3.0, min_count=5)


def _negatives(brand, n: int, *, hours_ago: float, sentiment: float = -0.8) -> None:
    at = dt.datetime(2026, 11, 20, 15, tzinfo=dt.UTC) - dt.timedelta(hours=hours_ago)
    for _ in range(n):
        PostFactory(brands=[brand], sentiment=sentiment, posted_at=at)


def _alert(brand, *, end: dt.datetime = NOW, negative_count: int = 9, baseline: float = 1.5):
    return BrandAlert.objects.create(
        brand=brand,
        window_start=end - dt.timedelta(hours=1),
        window_end=end,
        negative_count=negative_count,
        baseline=baseline,
        threshold=5.0,
    )


def _open_alert(brand):
    return _alert(brand, end=timezone.now(), negative_count=12, baseline=1.0)


def test_spike_check_uses_mean_plus_k_std_and_the_minimum():
    usual = [2, 4, 2, 4, 2, 4]  # mean 3, sample std ~1.095
    check = spike_check(count=7, history=usual, k=3.0, min_count=5)
    assert check.baseline == pytest.approx(3.0)
    assert check.threshold == pytest.approx(3.0 + 3 * 1.0954451)
    assert check.is_spike is True
    assert spike_check(count=6, history=usual, k=3.0, min_count=5).is_spike is False
    quiet = spike_check(count=4, history=[0] * 10, k=3.0, min_count=5)
    assert (quiet.threshold, quiet.is_spike) == (5.0, False)
    assert spike_check(count=5, history=[], k=3.0, min_count=5).is_spike is True


def test_a_spike_of_negative_mentions_raises_one_alert(db, django_capture_on_commit_callbacks):
    acme = BrandFactory(name="Acme")
    calm = BrandFactory(name="Calm")
    for hours_ago in range(1, 24, 2):
        _negatives(acme, 1, hours_ago=hours_ago + 0.5)
    _negatives(acme, 8, hours_ago=0.5)  # 14:30, in the latest window
    _negatives(acme, 5, hours_ago=0.4, sentiment=0.8)  # positive: not counted
    _negatives(calm, 3, hours_ago=0.5)  # below the minimum
    with django_capture_on_commit_callbacks() as callbacks:
        created = brand_alerts_check(now=NOW, config=CONFIG)
    assert [a.brand for a in created] == [acme]
    alert = created[0]
    assert alert.window_start == dt.datetime(2026, 11, 20, 14, tzinfo=dt.UTC)
    assert alert.window_end == dt.datetime(2026, 11, 20, 15, tzinfo=dt.UTC)
    assert alert.negative_count == 8
    assert alert.baseline == pytest.approx(0.5)
    assert alert.status == AlertStatus.OPEN
    assert len(callbacks) == 1
    # the beat runs again (or the task is redelivered): no second alert for the same spike
    assert brand_alerts_check(now=NOW, config=CONFIG) == []
    assert brand_alerts_check(now=NOW + dt.timedelta(minutes=15), config=CONFIG) == []
    assert BrandAlert.objects.count() == 1


def test_a_mention_posted_exactly_at_the_window_start_counts_in_the_current_window(db):
    acme = BrandFactory(name="Acme")
    at = dt.datetime(2026, 11, 20, 11, tzinfo=dt.UTC)
    for _ in range(6):
        PostFactory(brands=[acme], sentiment=-0.8, posted_at=at)  # 11:00:00, the window start
    PostFactory(brands=[acme], sentiment=-0.8, posted_at=at - dt.timedelta(hours=1))  # 10:00:00
    PostFactory(brands=[acme], sentiment=-0.8, posted_at=at + dt.timedelta(hours=1))  # 12:00:00
    [alert] = brand_alerts_check(now=dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC), config=CONFIG)
    assert (alert.window_start, alert.window_end) == (at, at + dt.timedelta(hours=1))
    assert alert.negative_count == 6
    assert alert.baseline == pytest.approx(1 / 24)


def test_the_task_runs_twice_with_one_alert(db, settings):
    settings.INSIGHTS_ALERT_MIN_COUNT = 3
    acme = BrandFactory(name="Acme")
    now = timezone.now()
    for _ in range(4):
        PostFactory(brands=[acme], sentiment=-0.9, posted_at=now - dt.timedelta(minutes=20))
    first = brand_alerts_check_task()
    second = brand_alerts_check_task()
    assert len(first) + len(second) == 1
    assert BrandAlert.objects.get().negative_count == 4


def test_alert_email_goes_to_the_brand_recipients_once(db):
    acme = BrandFactory(name="Acme", alert_emails=["brand@example.com"])
    alert = _alert(acme, negative_count=9, baseline=1.5)
    assert brand_alert_email_task(alert_id=alert.pk) is True
    assert brand_alert_email_task(alert_id=alert.pk) is False  # redelivered
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["brand@example.com"]
    assert message.subject == "Negative mentions of Acme spiked: 9"
    assert f"/insights/health/{acme.pk}/" in message.body
    alert.refresh_from_db()
    assert alert.emailed_at is not None


@pytest.fixture
def failing_email(settings):
    settings.EMAIL_BACKEND = "tests.insights.email_backends.FailingBackend"
    FailingBackend.failures = 1
    error = FailingBackend.error
    yield FailingBackend
    FailingBackend.failures = 0
    FailingBackend.error = error


def test_an_alert_email_that_fails_to_send_is_not_marked_sent(db, failing_email):
    alert = _alert(BrandFactory(name="Acme", alert_emails=["brand@example.com"]))
    with pytest.raises(SMTPServerDisconnected):
        brand_alert_email(alert_id=alert.pk)
    alert.refresh_from_db()
    assert alert.emailed_at is None
    assert mail.outbox == []
    assert brand_alert_email(alert_id=alert.pk) is True
    assert brand_alert_email(alert_id=alert.pk) is False
    assert [m.to for m in mail.outbox] == [["brand@example.com"]]
    alert.refresh_from_db()
    assert alert.emailed_at is not None


@pytest.mark.parametrize(
    "error",
    [SMTPServerDisconnected("Connection unexpectedly closed"), ConnectionRefusedError(111, "no")],
)
def test_the_alert_email_task_retries_a_failed_send_and_emails_once(db, failing_email, error):
    failing_email.error = error
    alert = _alert(BrandFactory(name="Acme", alert_emails=["brand@example.com"]))
    result = brand_alert_email_task.apply(kwargs={"alert_id": alert.pk}, throw=False)
    assert result.get() is True
    assert failing_email.failures == 0  # the first send failed, the retry sent
    assert brand_alert_email_task.apply(kwargs={"alert_id": alert.pk}).get() is False
    assert len(mail.outbox) == 1


def test_alert_email_falls_back_to_the_marketers(db, marketer, analyst):
    marketer.email = "mara@example.com"
    marketer.save()
    analyst.email = "ana@example.com"
    analyst.save()
    alert = _alert(BrandFactory(name="Acme"))
    assert brand_alert_email(alert_id=alert.pk) is True
    assert [m.to for m in mail.outbox] == [["mara@example.com"]]


def test_open_alert_shows_on_the_health_page_and_dashboard_and_can_be_acknowledged(
    marketer_client,
):
    acme = BrandFactory(name="Acme")
    alert = _open_alert(acme)
    page = marketer_client.get(reverse("insights:brand-health", args=[acme.pk])).content.decode()
    assert "Negative mentions of Acme spiked:" in page
    assert reverse("insights:alert-acknowledge", args=[alert.pk]) in page
    dashboard = marketer_client.get(reverse("dashboard")).content.decode()
    assert "Negative mentions of Acme spiked: 12" in dashboard

    response = marketer_client.post(
        reverse("insights:alert-acknowledge", args=[alert.pk]), headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert response.content == b""
    alert.refresh_from_db()
    assert alert.status == AlertStatus.ACKNOWLEDGED
    page = marketer_client.get(reverse("insights:brand-health", args=[acme.pk])).content.decode()
    assert "spiked" not in page


def test_analysts_see_alerts_but_cannot_acknowledge(analyst_client):
    alert = _open_alert(BrandFactory(name="Acme"))
    page = analyst_client.get(
        reverse("insights:brand-health", args=[alert.brand_id])
    ).content.decode()
    assert "Negative mentions of Acme spiked:" in page
    assert "Acknowledge" not in page
    response = analyst_client.post(reverse("insights:alert-acknowledge", args=[alert.pk]))
    assert response.status_code == 403
    alert.refresh_from_db()
    assert alert.status == AlertStatus.OPEN


def test_an_acknowledged_spike_does_not_alert_again_but_a_later_one_does(db):
    acme = BrandFactory(name="Acme")
    _negatives(acme, 8, hours_ago=0.5)
    [alert] = brand_alerts_check(now=NOW, config=CONFIG)
    alert.status = AlertStatus.ACKNOWLEDGED
    alert.save()
    assert brand_alerts_check(now=NOW + dt.timedelta(minutes=15), config=CONFIG) == []
    _negatives(acme, 9, hours_ago=-0.75)  # 15:45
    later = brand_alerts_check(now=NOW + dt.timedelta(minutes=60), config=CONFIG)
    assert [(a.window_start, a.negative_count) for a in later] == [
        (dt.datetime(2026, 11, 20, 15, tzinfo=dt.UTC), 9)
    ]
