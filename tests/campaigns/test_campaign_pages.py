"""The campaign pages: create and edit with variants and their validation, the detail page
(preview, actions, progress), the report against messages with known outcomes, role checks."""

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from campaigns.fanout import audience_size_store
from campaigns.models import Campaign, CampaignVariant, Message
from campaigns.selectors import CampaignProgress, campaign_progress, campaign_report
from campaigns.services import campaign_cancel, campaign_duplicate, campaign_schedule
from tests.campaigns.factories import CampaignFactory, MessageTemplateFactory
from tests.profiles.factories import CustomerFactory, SegmentFactory

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def _future(hours=24) -> str:
    return (timezone.localtime() + dt.timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M")


def form_data(**overrides) -> dict:
    """A valid create form: segment audience, sent now, two variants (the 3rd row blank)."""
    data = {
        "name": "Spring sale",
        "channel": "email",
        "audience_type": "segment",
        "segment": "",
        "trigger_event_type": "",
        "trigger_exit_event_type": "",
        "trigger_delay_minutes": "60",
        "trigger_reentry_days": "",
        "schedule_type": "now",
        "scheduled_at": "",
        "recurrence": "",
        "recurrence_until": "",
        "send_local_time": "",
        "quiet_hours_start": "",
        "quiet_hours_end": "",
        "goal_event_type": "purchase",
        "goal_window_hours": "72",
        "holdout_percent": "10",
        "cost": "150.00",
        "variants-TOTAL_FORMS": "3",
        "variants-INITIAL_FORMS": "0",
        "variants-MIN_NUM_FORMS": "0",
        "variants-MAX_NUM_FORMS": "1000",
        "variants-0-name": "A",
        "variants-0-template": "",
        "variants-0-weight": "1",
        "variants-1-name": "B",
        "variants-1-template": "",
        "variants-1-weight": "3",
        "variants-2-name": "",
        "variants-2-template": "",
        "variants-2-weight": "1",
    }
    data.update(overrides)
    return data


@pytest.fixture
def setup():
    segment = SegmentFactory(name="Newsletter")
    first = MessageTemplateFactory(name="Spring A", channel="email")
    second = MessageTemplateFactory(name="Spring B", channel="email")
    sms = MessageTemplateFactory(name="Spring SMS", channel="sms", subject="", body="Hi")
    return {"segment": segment, "a": first, "b": second, "sms": sms}


def valid(setup, **overrides) -> dict:
    data = form_data(segment=str(setup["segment"].pk))
    data.update(
        {"variants-0-template": str(setup["a"].pk), "variants-1-template": str(setup["b"].pk)}
    )
    data.update(overrides)
    return data


def test_create_saves_a_draft_with_its_variants_and_opens_its_page(marketer_client, setup):
    response = marketer_client.post(reverse("campaigns:campaign-create"), valid(setup))

    campaign = Campaign.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("campaigns:campaign-detail", args=[campaign.pk])
    assert campaign.status == "draft"
    assert campaign.segment == setup["segment"]
    assert campaign.template == setup["a"]
    assert campaign.holdout_percent == 10
    assert campaign.cost == Decimal("150.00")
    assert campaign.goal_event_type == "purchase"
    assert campaign.created_by.username == "mara"
    variants = list(campaign.variants.order_by("pk").values_list("name", "template", "weight"))
    assert variants == [("A", setup["a"].pk, 1), ("B", setup["b"].pk, 3)]


def test_create_over_htmx_redirects_the_client(marketer_client, setup):
    response = marketer_client.post(
        reverse("campaigns:campaign-create"), valid(setup), headers=HTMX
    )
    campaign = Campaign.objects.get()
    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("campaigns:campaign-detail", args=[campaign.pk])


def test_create_a_triggered_recurring_campaign(marketer_client, setup):
    data = valid(
        setup,
        audience_type="trigger",
        trigger_event_type="add_to_cart",
        trigger_exit_event_type="purchase",
        trigger_delay_minutes="120",
        trigger_reentry_days="14",
        schedule_type="recurring",
        scheduled_at=_future(),
        recurrence="weekly",
        recurrence_until=_future(24 * 30),
        quiet_hours_start="22",
        quiet_hours_end="8",
    )
    response = marketer_client.post(reverse("campaigns:campaign-create"), data)
    assert response.status_code == 302
    campaign = Campaign.objects.get()
    assert (campaign.audience_type, campaign.segment) == ("trigger", None)
    assert (campaign.trigger_event_type, campaign.trigger_exit_event_type) == (
        "add_to_cart",
        "purchase",
    )
    assert (campaign.trigger_delay_minutes, campaign.trigger_reentry_days) == (120, 14)
    assert (campaign.schedule_type, campaign.recurrence) == ("recurring", "weekly")
    assert (campaign.quiet_hours_start, campaign.quiet_hours_end) == (22, 8)


def _past() -> str:
    return (timezone.localtime() - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"segment": ""}, "segment", "Choose a segment."),
        (
            {"audience_type": "trigger", "trigger_event_type": ""},
            "trigger_event_type",
            "Choose the event that starts the journey.",
        ),
        (
            {"audience_type": "trigger", "trigger_event_type": "purchase",
             "trigger_exit_event_type": "purchase"},
            "trigger_exit_event_type",
            "The exit event must differ from the trigger event.",
        ),
        ({"schedule_type": "at", "scheduled_at": ""}, "scheduled_at", "Choose the time to send."),
        (
            {"schedule_type": "at", "scheduled_at": "PAST"},
            "scheduled_at",
            "The time is in the past.",
        ),
        (
            {"schedule_type": "recurring", "scheduled_at": "FUTURE", "recurrence": ""},
            "recurrence",
            "Choose daily or weekly.",
        ),
        (
            {"schedule_type": "local_time", "scheduled_at": "FUTURE", "send_local_time": ""},
            "send_local_time",
            "Choose the local time to send at.",
        ),
        (
            {"quiet_hours_start": "22"},
            "quiet_hours_end",
            "Give both the start and the end of the quiet hours, or neither.",
        ),
        (
            {"holdout_percent": "101"},
            "holdout_percent",
            "Ensure this value is less than or equal to 100.",
        ),
        ({"cost": "-5"}, "cost", "The cost cannot be negative."),
    ],
)  # fmt: skip
def test_invalid_campaign_fields_show_form_errors_and_save_nothing(
    marketer_client, setup, overrides, field, message
):
    values = {k: {"PAST": _past(), "FUTURE": _future()}.get(v, v) for k, v in overrides.items()}
    response = marketer_client.post(reverse("campaigns:campaign-create"), valid(setup, **values))

    assert response.status_code == 200
    assert response.context["form"].errors[field] == [message]
    assert f'id="{field}-error"' in response.content.decode()
    assert Campaign.objects.count() == 0
    assert CampaignVariant.objects.count() == 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"variants-1-template": "SMS"},
            "Variant 'B': the template 'Spring SMS' is for SMS, not for this campaign's channel.",
        ),
        ({"variants-0-weight": "0", "variants-1-weight": "0"},
         "At least one variant needs a weight above 0."),
        ({"variants-1-name": "A"}, "Each variant needs its own name."),
        (
            {"variants-0-name": "", "variants-0-template": "", "variants-1-name": "",
             "variants-1-template": "", "variants-1-weight": "1"},
            "Add at least one variant with a template.",
        ),
    ],
)  # fmt: skip
def test_invalid_variants_show_errors_and_save_nothing(marketer_client, setup, overrides, message):
    values = {k: str(setup["sms"].pk) if v == "SMS" else v for k, v in overrides.items()}
    response = marketer_client.post(reverse("campaigns:campaign-create"), valid(setup, **values))

    assert response.status_code == 200
    assert response.context["variant_errors"] == [message]
    assert 'id="variant-errors"' in response.content.decode()
    assert Campaign.objects.count() == 0


def test_edit_updates_fields_and_replaces_variants(marketer_client, setup):
    campaign = CampaignFactory(segment=setup["segment"], template=setup["a"], name="Old")
    kept = CampaignVariant.objects.create(campaign=campaign, name="A", template=setup["a"])
    dropped = CampaignVariant.objects.create(campaign=campaign, name="B", template=setup["b"])
    data = valid(setup, name="New name")
    data.update(
        {
            "variants-TOTAL_FORMS": "3",
            "variants-INITIAL_FORMS": "2",
            "variants-0-id": str(kept.pk),
            "variants-0-name": "B",  # renamed to the name of the one removed
            "variants-0-template": str(setup["b"].pk),
            "variants-0-weight": "2",
            "variants-1-id": str(dropped.pk),
            "variants-1-DELETE": "on",
            "variants-2-name": "C",
            "variants-2-template": str(setup["a"].pk),
            "variants-2-weight": "1",
        }
    )
    response = marketer_client.post(reverse("campaigns:campaign-edit", args=[campaign.pk]), data)

    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.name == "New name"
    assert campaign.template == setup["b"]
    rows = list(campaign.variants.order_by("pk").values_list("pk", "name", "template", "weight"))
    assert rows[0] == (kept.pk, "B", setup["b"].pk, 2)
    assert rows[1][1:] == ("C", setup["a"].pk, 1)
    assert len(rows) == 2


def test_edit_page_shows_the_saved_values(marketer_client, setup):
    campaign = CampaignFactory(segment=setup["segment"], template=setup["a"], name="Shown")
    CampaignVariant.objects.create(campaign=campaign, name="Only", template=setup["a"], weight=5)
    content = marketer_client.get(
        reverse("campaigns:campaign-edit", args=[campaign.pk])
    ).content.decode()
    assert 'value="Shown"' in content
    assert 'value="Only"' in content
    assert f'data-channel="sms" value="{setup["sms"].pk}"' in content or "data-channel" in content


@pytest.mark.parametrize("status", ["sending", "done", "cancelled"])
def test_only_drafts_and_scheduled_campaigns_are_edited(marketer_client, setup, status):
    campaign = CampaignFactory(segment=setup["segment"], template=setup["a"], status=status)
    url = reverse("campaigns:campaign-edit", args=[campaign.pk])

    page = marketer_client.get(url)
    post = marketer_client.post(url, valid(setup, name="Changed"))

    assert page.status_code == 302
    assert page["Location"] == reverse("campaigns:campaign-detail", args=[campaign.pk])
    assert post.status_code == 200
    assert "only a draft or scheduled campaign can be edited" in str(
        post.context["form"].non_field_errors()
    )
    campaign.refresh_from_db()
    assert campaign.name != "Changed"


def test_analyst_reads_but_gets_403_on_every_write(analyst_client, setup):
    campaign = CampaignFactory(segment=setup["segment"], template=setup["a"])
    reads = [
        reverse("campaigns:campaign-list"),
        reverse("campaigns:campaign-detail", args=[campaign.pk]),
        reverse("campaigns:campaign-preview", args=[campaign.pk]),
        reverse("campaigns:campaign-progress", args=[campaign.pk]),
        reverse("campaigns:campaign-report", args=[campaign.pk]),
        reverse("campaigns:campaign-report-csv", args=[campaign.pk]),
    ]
    writes = [
        ("get", reverse("campaigns:campaign-create")),
        ("post", reverse("campaigns:campaign-create")),
        ("get", reverse("campaigns:campaign-edit", args=[campaign.pk])),
        ("post", reverse("campaigns:campaign-edit", args=[campaign.pk])),
        *[
            ("post", reverse("campaigns:campaign-action", args=[campaign.pk, action]))
            for action in ("send", "schedule", "pause", "resume", "cancel", "duplicate")
        ],
    ]
    assert [analyst_client.get(url).status_code for url in reads] == [200] * len(reads)
    statuses = [
        getattr(analyst_client, method)(url, valid(setup) if method == "post" else None).status_code
        for method, url in writes
    ]
    assert statuses == [403] * len(writes)
    assert Campaign.objects.count() == 1
    campaign.refresh_from_db()
    assert campaign.status == "draft"
    detail = analyst_client.get(reverse("campaigns:campaign-detail", args=[campaign.pk]))
    assert 'data-action="send"' not in detail.content.decode()


def _flash(response) -> list[str]:
    """The messages added by this request (earlier unread ones are still in the session)."""
    return [str(m) for m in get_messages(response.wsgi_request)][-1:]


def test_send_now_launches_and_enqueues_after_commit(
    marketer_client, setup, django_capture_on_commit_callbacks
):
    campaign = CampaignFactory(segment=setup["segment"], template=setup["a"])
    url = reverse("campaigns:campaign-action", args=[campaign.pk, "send"])

    with django_capture_on_commit_callbacks() as callbacks:
        response = marketer_client.post(url, headers=HTMX)

    assert response["HX-Redirect"] == reverse("campaigns:campaign-detail", args=[campaign.pk])
    assert len(callbacks) == 1
    campaign.refresh_from_db()
    assert campaign.status == "sending"
    assert _flash(response) == ["Sending started."]


def test_schedule_then_unschedule(marketer_client, setup):
    at = timezone.now() + dt.timedelta(hours=2)
    campaign = CampaignFactory(
        segment=setup["segment"], template=setup["a"], schedule_type="at", scheduled_at=at
    )
    marketer_client.post(reverse("campaigns:campaign-action", args=[campaign.pk, "schedule"]))
    campaign.refresh_from_db()
    assert (campaign.status, campaign.scheduled_at) == ("scheduled", at)

    marketer_client.post(reverse("campaigns:campaign-action", args=[campaign.pk, "unschedule"]))
    campaign.refresh_from_db()
    assert campaign.status == "draft"


def test_scheduling_a_past_time_is_refused_with_a_message(marketer_client, setup):
    past = timezone.now() - dt.timedelta(minutes=5)
    campaign = CampaignFactory(
        segment=setup["segment"], template=setup["a"], schedule_type="at", scheduled_at=past
    )
    response = marketer_client.post(
        reverse("campaigns:campaign-action", args=[campaign.pk, "schedule"])
    )
    assert _flash(response) == ["The time is in the past."]
    campaign.refresh_from_db()
    assert campaign.status == "draft"


def test_pause_resume_and_cancel(marketer_client, setup, django_capture_on_commit_callbacks):
    campaign = CampaignFactory(segment=setup["segment"], template=setup["a"], status="sending")

    def act(action):
        marketer_client.post(reverse("campaigns:campaign-action", args=[campaign.pk, action]))
        campaign.refresh_from_db()
        return campaign.status

    assert act("pause") == "paused"
    with django_capture_on_commit_callbacks() as callbacks:
        assert act("resume") == "sending"
    assert len(callbacks) == 1
    assert act("cancel") == "cancelled"
    assert campaign.finished_at is not None
    response = marketer_client.post(
        reverse("campaigns:campaign-action", args=[campaign.pk, "pause"])
    )
    assert _flash(response) == [f"Campaign {campaign.name!r} is cancelled, not sending."]


def test_end_journey_from_its_page(marketer_client, setup):
    journey = CampaignFactory(
        template=setup["a"],
        audience_type="trigger",
        trigger_event_type="add_to_cart",
        trigger_exit_event_type="purchase",
        status="sending",
    )
    page = marketer_client.get(reverse("campaigns:campaign-detail", args=[journey.pk]))
    assert "End journey" in page.content.decode()

    response = marketer_client.post(reverse("campaigns:campaign-action", args=[journey.pk, "end"]))
    assert _flash(response) == ["Journey ended: nobody enters it any more."]
    journey.refresh_from_db()
    assert journey.status == "done"
    assert journey.finished_at is not None
    page = marketer_client.get(reverse("campaigns:campaign-detail", args=[journey.pk]))
    assert "End journey" not in page.content.decode()

    segment_campaign = CampaignFactory(
        segment=setup["segment"], template=setup["a"], status="sending"
    )
    response = marketer_client.post(
        reverse("campaigns:campaign-action", args=[segment_campaign.pk, "end"])
    )
    assert _flash(response) == [
        f"Campaign {segment_campaign.name!r} is not an active or paused journey."
    ]
    segment_campaign.refresh_from_db()
    assert segment_campaign.status == "sending"


def test_unknown_action_is_404(marketer_client, setup):
    campaign = CampaignFactory(segment=setup["segment"], template=setup["a"])
    url = reverse("campaigns:campaign-action", args=[campaign.pk, "explode"])
    assert marketer_client.post(url).status_code == 404


def test_duplicate_copies_settings_and_variants_as_a_draft(marketer_client, setup):
    campaign = CampaignFactory(
        segment=setup["segment"], template=setup["a"], status="done", holdout_percent=5
    )
    CampaignVariant.objects.create(campaign=campaign, name="A", template=setup["a"], weight=2)
    response = marketer_client.post(
        reverse("campaigns:campaign-action", args=[campaign.pk, "duplicate"])
    )
    copy = Campaign.objects.exclude(pk=campaign.pk).get()
    assert response["Location"] == reverse("campaigns:campaign-edit", args=[copy.pk])
    assert (copy.name, copy.status, copy.holdout_percent) == (
        f"Copy of {campaign.name}",
        "draft",
        5,
    )
    assert list(copy.variants.values_list("name", "template", "weight")) == [
        ("A", setup["a"].pk, 2)
    ]


def test_service_refuses_to_schedule_a_sending_campaign_and_to_cancel_twice(setup):
    campaign = CampaignFactory(segment=setup["segment"], template=setup["a"], status="sending")
    with pytest.raises(Exception, match="only a draft can be scheduled"):
        campaign_schedule(campaign=campaign)
    campaign_cancel(campaign=campaign)
    with pytest.raises(Exception, match="is cancelled"):
        campaign_cancel(campaign=campaign)
    assert campaign_duplicate(campaign=campaign).status == "draft"


# --- detail: preview and progress -----------------------------------------------------------


def test_preview_renders_each_variant_for_the_searched_customer(analyst_client, setup):
    CustomerFactory(external_id="c-grace", first_name="Grace", email="grace@example.com")
    hello = MessageTemplateFactory(
        name="Hello", subject="Hi {{ customer.first_name }} from {{ campaign.name }}", body="Text"
    )
    broken = MessageTemplateFactory(name="Broken", subject="{{ customer.nickname }}", body="x")
    campaign = CampaignFactory(name="Spring", segment=setup["segment"], template=hello)
    CampaignVariant.objects.create(campaign=campaign, name="Good", template=hello)
    CampaignVariant.objects.create(campaign=campaign, name="Bad", template=broken)

    response = analyst_client.get(
        reverse("campaigns:campaign-preview", args=[campaign.pk]),
        {"customer": "grace@example.com"},
        headers=HTMX,
    )
    content = response.content.decode()
    assert content.lstrip().startswith('<div id="campaign-preview"')
    assert "<b>Hi Grace from Spring</b>" in content
    assert "Does not render for this customer" in content
    assert "no variable &#x27;nickname&#x27;" in content or "nickname" in content
    by_external = analyst_client.get(
        reverse("campaigns:campaign-preview", args=[campaign.pk]), {"customer": "c-grace"}
    )
    assert "<b>Hi Grace from Spring</b>" in by_external.content.decode()
    missing = analyst_client.get(
        reverse("campaigns:campaign-preview", args=[campaign.pk]), {"customer": "nobody"}
    )
    assert "No customer matches “nobody”." in missing.content.decode()


def _message(campaign, customer, *, variant=None, status="sent", skip_reason="", **outcomes):
    return Message.objects.create(
        campaign=campaign,
        variant=variant,
        customer=customer,
        channel="email",
        idempotency_key=f"{campaign.pk}:{variant.pk if variant else 0}:{customer.pk}:email",
        status=status,
        skip_reason=skip_reason,
        sent_at=timezone.now() if status == "sent" else None,
        **outcomes,
    )


def test_progress_polls_while_sending_and_stops_when_done(analyst_client, setup):
    campaign = CampaignFactory(segment=setup["segment"], template=setup["a"], status="sending")
    for status, reason in [("sent", ""), ("sent", ""), ("failed", ""), ("skipped", "consent"),
                           ("queued", ""), ("sending", "")]:  # fmt: skip
        _message(campaign, CustomerFactory(), status=status, skip_reason=reason)
    url = reverse("campaigns:campaign-progress", args=[campaign.pk])

    sending = analyst_client.get(url, {"was": "sending"}, headers=HTMX)
    content = sending.content.decode()
    assert 'hx-trigger="every 2s"' in content
    assert '<b id="progress-decided">6</b>' in content
    assert '<b id="progress-sent">2</b>' in content
    assert '<b id="progress-failed">1</b>' in content
    assert '<b id="progress-skipped">1</b>' in content
    assert '<b id="progress-queued">2</b>' in content
    assert "HX-Refresh" not in sending

    Campaign.objects.filter(pk=campaign.pk).update(status="done")
    done = analyst_client.get(url, {"was": "sending"}, headers=HTMX)
    assert "hx-trigger" not in done.content.decode()
    assert done["HX-Refresh"] == "true"


def test_progress_is_settled_recipients_out_of_the_audience_counted_at_launch(
    analyst_client, setup, django_assert_num_queries
):
    campaign = CampaignFactory(segment=setup["segment"], template=setup["a"], status="sending")
    for status in ("sent", "sent", "skipped", "queued"):
        _message(campaign, CustomerFactory(), status=status)
    audience_size_store(campaign_id=campaign.pk, size=30)

    with django_assert_num_queries(1):
        progress = campaign_progress(campaign=campaign)
    content = analyst_client.get(
        reverse("campaigns:campaign-progress", args=[campaign.pk]), {"was": "sending"}, headers=HTMX
    ).content.decode()

    assert (progress.decided, progress.queued, progress.audience) == (4, 1, 30)
    assert progress.percent_done == 10
    assert '<b id="progress-audience">30</b>' in content
    assert 'value="10"' in content


@pytest.mark.parametrize(
    ("decided", "queued", "audience", "percent"),
    [(0, 0, 500, 0), (100, 0, 500, 20), (100, 100, 500, 0), (520, 20, 500, 96), (8, 2, None, 75)],
)
def test_percent_done(decided, queued, audience, percent):
    progress = CampaignProgress(
        decided=decided, sent=0, failed=0, skipped=0, queued=queued, audience=audience
    )
    assert progress.percent_done == percent


# --- report ---------------------------------------------------------------------------------


@pytest.fixture
def reported(setup):
    """Variant A: 4 sent (3 delivered, 1 bounced, 2 opened, 1 clicked, 1 converted for 40.00,
    1 unsubscribed), 2 held out (1 converted). Variant B: 2 sent (2 delivered, 2 opened,
    2 clicked, 1 converted for 60.50), 1 failed, 1 skipped for the frequency cap."""
    campaign = CampaignFactory(
        segment=setup["segment"], template=setup["a"], status="done", cost=Decimal("50.00")
    )
    a = CampaignVariant.objects.create(campaign=campaign, name="A", template=setup["a"])
    b = CampaignVariant.objects.create(campaign=campaign, name="B", template=setup["b"])
    now = timezone.now()
    at = {"delivered_at": now}
    rows = [
        (a, "sent", "", {**at, "opened_at": now, "clicked_at": now, "converted_at": now,
                         "conversion_value": Decimal("40.00")}),
        (a, "sent", "", {**at, "opened_at": now, "unsubscribed_at": now}),
        (a, "sent", "", at),
        (a, "sent", "", {"bounced_at": now}),
        (a, "skipped", "holdout", {"converted_at": now, "conversion_value": Decimal("9.99")}),
        (a, "skipped", "holdout", {}),
        (b, "sent", "", {**at, "opened_at": now, "clicked_at": now, "converted_at": now,
                         "conversion_value": Decimal("60.50")}),
        (b, "sent", "", {**at, "opened_at": now, "clicked_at": now}),
        (b, "failed", "render_error", {}),
        (b, "skipped", "frequency_cap", {}),
    ]  # fmt: skip
    for variant, status, reason, outcomes in rows:
        _message(campaign, CustomerFactory(), variant=variant, status=status,
                 skip_reason=reason, **outcomes)  # fmt: skip
    return campaign


def test_report_numbers(reported, django_assert_num_queries):
    with django_assert_num_queries(4):
        report = campaign_report(campaign=reported)

    a, b = report.variants
    assert (a.name, a.sent, a.delivered, a.bounced, a.opened, a.clicked, a.converted) == (
        "A", 4, 3, 1, 2, 1, 1,
    )  # fmt: skip
    assert (a.revenue, a.unsubscribed, a.holdout, a.holdout_converted) == (
        Decimal("40.00"), 1, 2, 1,
    )  # fmt: skip
    assert (a.open_rate, a.click_rate, a.conversion_rate) == (0.5, 0.25, 0.25)
    assert a.holdout_conversion_rate == 0.5
    assert a.lift == -0.5
    assert (b.sent, b.delivered, b.opened, b.clicked, b.converted, b.revenue) == (
        2, 2, 2, 2, 1, Decimal("60.50"),
    )  # fmt: skip
    assert (b.failed, b.skipped, b.holdout, b.lift) == (1, 1, 0, None)
    t = report.total
    assert (t.sent, t.delivered, t.bounced, t.opened, t.clicked, t.converted) == (6, 5, 1, 4, 3, 2)
    assert (t.revenue, t.unsubscribed, t.failed, t.skipped) == (Decimal("100.50"), 1, 1, 3)
    assert t.conversion_rate == pytest.approx(2 / 6)
    assert t.lift == pytest.approx((2 / 6 - 0.5) / 0.5)
    assert report.roi == pytest.approx((100.50 - 50) / 50)
    assert report.skipped_by_reason == [
        ("holdout", "Campaign holdout", 2),
        ("frequency_cap", "Frequency cap", 1),
        ("render_error", "Template did not render", 1),
    ]
    assert [n for _, n in report.timeline["Opens"]] == [4]
    assert [n for _, n in report.timeline["Clicks"]] == [3]
    assert [n for _, n in report.timeline["Conversions"]] == [2]


def test_report_without_holdout_or_cost_has_no_lift_or_roi(setup):
    campaign = CampaignFactory(segment=setup["segment"], template=setup["a"])
    _message(campaign, CustomerFactory())
    report = campaign_report(campaign=campaign)
    assert [r.name for r in report.variants] == ["Default"]
    assert (report.total.sent, report.total.lift, report.roi) == (1, None, None)


def test_report_page_and_csv(analyst_client, reported):
    page = analyst_client.get(reverse("campaigns:campaign-report", args=[reported.pk]))
    content = page.content.decode()
    assert '<b id="total-sent">6</b>' in content
    assert '<b id="total-revenue">100.50</b>' in content
    assert '<b id="total-roi">1.01</b>' in content
    assert 'id="report-funnel"' in content
    assert 'id="report-timeline"' in content
    assert "&quot;type&quot;: &quot;funnel&quot;" in content or '"type": "funnel"' in content
    assert (
        '<tr data-reason="holdout"><th>Campaign holdout</th><td class="num">2</td></tr>' in content
    )
    assert "-50.0 %" in content  # lift of variant A

    response = analyst_client.get(reverse("campaigns:campaign-report-csv", args=[reported.pk]))
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["variant"] for r in rows] == ["A", "B", "All variants"]
    assert rows[0]["sent"] == "4"
    assert rows[0]["revenue"] == "40.00"
    assert rows[0]["conversion_rate"] == "0.2500"
    assert rows[0]["lift"] == "-0.5000"
    assert rows[1]["lift"] == ""
    assert rows[2]["converted"] == "2"
    assert rows[2]["revenue"] == "100.50"


def test_list_shows_figures_and_filters_by_audience(analyst_client, reported, setup):
    CampaignFactory(name="Cart journey", audience_type="trigger", segment=None,
                    trigger_event_type="add_to_cart")  # fmt: skip
    url = reverse("campaigns:campaign-list")
    page = analyst_client.get(url)
    row = next(c for c in page.context["page_obj"] if c.pk == reported.pk)
    assert (row.sent, row.opened, row.clicked, row.converted) == (6, 4, 3, 2)
    trigger = analyst_client.get(url, {"audience_type": "trigger"})
    assert [c.name for c in trigger.context["page_obj"]] == ["Cart journey"]
    assert "On add_to_cart" in trigger.content.decode()


def test_detail_page_shows_summary_actions_and_nav(marketer_client, setup):
    campaign = CampaignFactory(
        segment=setup["segment"], template=setup["a"], schedule_type="at",
        scheduled_at=timezone.now() + dt.timedelta(days=1),
    )  # fmt: skip
    content = marketer_client.get(
        reverse("campaigns:campaign-detail", args=[campaign.pk])
    ).content.decode()
    assert "Segment <a" in content
    assert "Newsletter" in content
    for label in ("Send now", "Schedule", "Cancel campaign", "Duplicate", "Edit"):
        assert f">{label}</" in content
    assert 'hx-confirm="Send this campaign now to its whole audience?"' in content
    assert 'hx-trigger="every 2s"' not in content


@pytest.mark.parametrize("n", [1, 15])
def test_list_and_detail_query_counts_do_not_grow_with_campaigns_or_variants(
    analyst_client, setup, django_assert_num_queries, n
):
    for i in range(n):
        campaign = CampaignFactory(segment=setup["segment"], template=setup["a"])
        for name in ("A", "B", "C")[: 1 + i % 3]:
            CampaignVariant.objects.create(campaign=campaign, name=name, template=setup["a"])
        _message(campaign, CustomerFactory())
    # session, user, groups (can_edit), count, the page of campaigns, their figures
    with django_assert_num_queries(6):
        response = analyst_client.get(reverse("campaigns:campaign-list"))
    assert len(response.context["page_obj"]) == n
    # session, user, the campaign and its variants, then the report's four
    with django_assert_num_queries(8):
        analyst_client.get(reverse("campaigns:campaign-report-csv", args=[campaign.pk]))


def test_an_active_journey_does_not_poll_and_starts_with_its_own_label(marketer_client, setup):
    draft = CampaignFactory(
        template=setup["a"], segment=None, audience_type="trigger", trigger_event_type="purchase"
    )
    active = CampaignFactory(
        template=setup["a"],
        segment=None,
        audience_type="trigger",
        trigger_event_type="purchase",
        status="sending",
    )
    draft_page = marketer_client.get(reverse("campaigns:campaign-detail", args=[draft.pk]))
    active_page = marketer_client.get(reverse("campaigns:campaign-detail", args=[active.pk]))
    assert ">Start journey</button>" in draft_page.content.decode()
    assert ">Send now</button>" not in draft_page.content.decode()
    assert 'hx-trigger="every 2s"' not in active_page.content.decode()


def test_a_recurring_campaign_lists_its_occurrences_with_their_figures(analyst_client, setup):
    parent = CampaignFactory(
        name="Weekly picks",
        segment=setup["segment"],
        template=setup["a"],
        status="scheduled",
        schedule_type="recurring",
        recurrence="weekly",
        scheduled_at=timezone.now() + dt.timedelta(days=7),
    )
    child = CampaignFactory(
        name="Weekly picks",
        segment=setup["segment"],
        template=setup["a"],
        status="done",
        parent=parent,
        scheduled_at=timezone.now() - dt.timedelta(days=1),
    )
    _message(child, CustomerFactory(), opened_at=timezone.now())
    response = analyst_client.get(reverse("campaigns:campaign-detail", args=[parent.pk]))
    assert [(o.pk, o.sent, o.opened) for o in response.context["occurrences"]] == [(child.pk, 1, 1)]
    assert 'id="campaign-occurrences"' in response.content.decode()
    child_page = analyst_client.get(reverse("campaigns:campaign-detail", args=[child.pk]))
    assert reverse("campaigns:campaign-detail", args=[parent.pk]) in child_page.content.decode()


def test_schedule_button_confirms_the_time(marketer_client, setup):
    campaign = CampaignFactory(
        segment=setup["segment"],
        template=setup["a"],
        schedule_type="local_time",
        scheduled_at=dt.datetime(2030, 12, 24, 9, 0, tzinfo=dt.UTC),
        send_local_time=dt.time(10, 0),
    )
    content = marketer_client.get(
        reverse("campaigns:campaign-detail", args=[campaign.pk])
    ).content.decode()
    assert "On 2030-12-24 at 10:00 in each recipient&#x27;s timezone" in content
    assert (
        'hx-confirm="Schedule this campaign (on 2030-12-24 at 10:00 in each recipient&#x27;s '
        'timezone)?"' in content
    )
