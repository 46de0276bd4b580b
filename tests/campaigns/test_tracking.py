"""Open pixel, signed click redirects and the per-message one-click unsubscribe: tokens,
rewriting, the public endpoints, and what dispatch hands to the providers."""

import re
from collections import Counter
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from campaigns import tracking
from campaigns.dispatch import messages_send_batch
from campaigns.models import Message
from campaigns.outcomes import message_mark_accepted
from campaigns.templating import RenderedMessage
from profiles.consent import consent_set
from profiles.models import ChannelEndpoint, Consent, ConsentChange, Event
from profiles.segments.services import segment_create_static
from tests.campaigns.factories import CampaignFactory, MessageTemplateFactory
from tests.profiles.factories import CustomerFactory

pytestmark = pytest.mark.django_db

BASE = "https://mail.shop.example"


@pytest.fixture(autouse=True)
def _public_base(settings):
    settings.PUBLIC_BASE_URL = BASE


def sent_message(channel="email", status="sent", **fields):
    customer = CustomerFactory()
    consent_set(
        customer=customer,
        purpose={"email": "marketing_email", "sms": "sms", "push": "push"}[channel],
        granted=True,
        source="api",
    )
    campaign = CampaignFactory(channel=channel, status="sending")
    key = f"{campaign.pk}:0:{customer.pk}:{channel}"
    return Message.objects.create(
        campaign=campaign,
        customer=customer,
        channel=channel,
        address=customer.email,
        idempotency_key=key,
        status=status,
        sent_at=timezone.now() if status == "sent" else None,
        **fields,
    )


def path_of(url):
    assert url.startswith(BASE)
    return url[len(BASE) :]


# --- tokens and rewriting ---------------------------------------------------------------------


def test_click_token_round_trip_and_every_tampering_is_refused():
    token = tracking.token_sign(tracking.CLICK_SALT, "7:0:9:email", "https://shop.example/p/1")
    assert tracking.click_token_read(token) == ("7:0:9:email", "https://shop.example/p/1")

    payload, mac = token.split(".")
    other = tracking.token_sign(tracking.CLICK_SALT, "7:0:9:email", "https://evil.example/")
    forged = [
        other.split(".")[0] + "." + mac,  # another target under the old signature
        payload + "." + mac[:-2] + ("AA" if mac[-2:] != "AA" else "BB"),
        payload,
        "",
        "!!!.???",
        tracking.token_sign(tracking.OPEN_SALT, "7:0:9:email", "https://shop.example/p/1"),
    ]
    for bad in forged:
        with pytest.raises(tracking.InvalidTokenError):
            tracking.click_token_read(bad)


def test_a_signed_non_http_target_is_still_refused():
    token = tracking.token_sign(tracking.CLICK_SALT, "7:0:9:email", "javascript:alert(1)")
    with pytest.raises(tracking.InvalidTokenError):
        tracking.click_token_read(token)


def test_tokens_signed_with_a_fallback_key_stay_valid(settings):
    settings.SECRET_KEY = "old-secret-" + "x" * 40
    token = tracking.token_sign(tracking.OPEN_SALT, "1:0:2:email")
    settings.SECRET_KEY = "new-secret-" + "y" * 40
    with pytest.raises(tracking.InvalidTokenError):
        tracking.open_token_read(token)
    settings.SECRET_KEY_FALLBACKS = ["old-secret-" + "x" * 40]
    assert tracking.open_token_read(token) == "1:0:2:email"


def test_html_links_are_rewritten_and_the_pixel_goes_before_body_end():
    html = (
        '<html><body><a href="https://shop.example/p?a=1&amp;b=2">Shoe</a> '
        "<a class=x href='http://shop.example/sale'>Sale</a> "
        '<a href="mailto:help@shop.example">Mail</a> <a href="#top">Top</a> '
        f'<a href="{BASE}/t/u/abc">Unsubscribe</a></body></html>'
    )
    rendered = tracking.message_track(RenderedMessage(channel="email", html=html), "3:0:4:email")

    hrefs = re.findall(r'href="([^"]*)"', rendered.html)
    assert hrefs[2:] == ["mailto:help@shop.example", "#top", f"{BASE}/t/u/abc"]
    targets = [tracking.click_token_read(path_of(h).removeprefix("/t/c/")) for h in hrefs[:2]]
    assert targets == [
        ("3:0:4:email", "https://shop.example/p?a=1&b=2"),
        ("3:0:4:email", "http://shop.example/sale"),
    ]
    pixel = re.search(
        r'<img src="([^"]+)" width="1" height="1"[^>]*/></body></html>$', rendered.html
    )
    assert pixel is not None
    assert tracking.open_token_read(path_of(pixel.group(1)).removeprefix("/t/o/")) == "3:0:4:email"


def test_sms_links_are_rewritten_and_punctuation_stays_outside():
    rendered = tracking.message_track(
        RenderedMessage(channel="sms", text="Sale: https://shop.example/s. Reply STOP"), "k:sms"
    )
    match = re.fullmatch(rf"Sale: {BASE}/t/c/(\S+)\. Reply STOP", rendered.text)
    assert match is not None
    assert tracking.click_token_read(match.group(1)) == ("k:sms", "https://shop.example/s")


def test_push_url_is_a_click_link_and_in_app_is_left_alone():
    push = tracking.message_track(
        RenderedMessage(channel="push", title="t", text="x", url="https://shop.example/a"), "k"
    )
    assert tracking.click_token_read(path_of(push.url).removeprefix("/t/c/")) == (
        "k",
        "https://shop.example/a",
    )
    in_app = RenderedMessage(channel="in_app", title="t", text="x", url="https://shop.example/a")
    assert tracking.message_track(in_app, "k") == in_app


# --- endpoints --------------------------------------------------------------------------------


def test_open_pixel_sets_opened_at_once_and_records_one_event(client):
    message = sent_message()
    url = path_of(tracking.open_url(message.idempotency_key))

    first = client.get(url)
    opened_at = Message.objects.get(pk=message.pk).opened_at
    second = client.get(url)

    assert first.status_code == second.status_code == 200
    assert first["Content-Type"] == "image/gif"
    assert first.content == tracking.PIXEL_GIF
    assert "no-store" in first["Cache-Control"]
    assert opened_at is not None
    assert Message.objects.get(pk=message.pk).opened_at == opened_at
    events = Event.objects.filter(customer=message.customer)
    assert [(e.type, e.channel, e.campaign_id) for e in events] == [
        ("email_open", "email", message.campaign_id)
    ]


def test_a_repeated_open_writes_nothing(client, django_assert_max_num_queries):
    message = sent_message()
    url = path_of(tracking.open_url(message.idempotency_key))
    client.get(url)
    row_version = _row_version(message)
    with django_assert_max_num_queries(4):  # the UPDATE, SET LOCAL and (in tests) a savepoint
        assert client.get(url).status_code == 200
    assert _row_version(message) == row_version


def _row_version(message):
    with connection.cursor() as cursor:
        cursor.execute("SELECT xmin::text FROM campaigns_message WHERE id = %s", [message.pk])
        return cursor.fetchone()[0]


def test_click_redirects_sets_clicked_and_opened_and_records_events(client):
    message = sent_message()
    url = path_of(tracking.click_url(message.idempotency_key, "https://shop.example/p/1"))

    response = client.get(url)
    again = client.get(url)

    assert response.status_code == again.status_code == 302
    assert response["Location"] == "https://shop.example/p/1"
    message.refresh_from_db()
    assert message.clicked_at is not None
    assert message.opened_at == message.clicked_at
    assert Counter(
        Event.objects.filter(customer=message.customer).values_list("type", flat=True)
    ) == {
        "email_open": 1,
        "email_click": 1,
    }


def test_a_head_request_redirects_without_recording(client):
    message = sent_message()
    url = path_of(tracking.click_url(message.idempotency_key, "https://shop.example/p/1"))
    response = client.head(url)
    assert response.status_code == 302
    message.refresh_from_db()
    assert message.clicked_at is None
    assert not Event.objects.exists()


@pytest.mark.parametrize(("channel", "event_type"), [("sms", "sms_click"), ("push", "push_open")])
def test_sms_and_push_clicks_record_their_channel_event(client, channel, event_type):
    message = sent_message(channel=channel)
    client.get(path_of(tracking.click_url(message.idempotency_key, "https://shop.example/x")))
    message.refresh_from_db()
    assert message.clicked_at is not None
    events = list(Event.objects.values_list("type", "channel", "campaign_id"))
    assert events == [(event_type, channel, message.campaign_id)]


def test_forged_click_is_400_redirects_nowhere_and_records_nothing(client):
    message = sent_message()
    token = tracking.token_sign(
        tracking.CLICK_SALT, message.idempotency_key, "https://shop.example/"
    )
    evil = tracking.token_sign(tracking.CLICK_SALT, message.idempotency_key, "https://evil.example")
    forged = "/t/c/" + evil.split(".")[0] + "." + token.split(".")[1]

    for url in (forged, "/t/c/garbage", "/t/c/" + evil.split(".")[0]):
        response = client.get(url)
        assert response.status_code == 400
        assert "Location" not in response
    message.refresh_from_db()
    assert message.clicked_at is None
    assert message.opened_at is None
    assert not Event.objects.exists()


def test_forged_open_is_400(client):
    message = sent_message()
    assert client.get("/t/o/" + "A" * 30 + "." + "B" * 22).status_code == 400
    message.refresh_from_db()
    assert message.opened_at is None


def test_tracking_a_message_left_sending_by_a_crash_marks_it_sent(client):
    message = sent_message(status="sending", claimed_at=timezone.now())
    client.get(path_of(tracking.open_url(message.idempotency_key)))
    message.refresh_from_db()
    assert message.status == "sent"
    assert message.sent_at is not None


def test_one_click_unsubscribe_post_without_csrf_withdraws_and_marks_the_message():
    message = sent_message()
    url = path_of(tracking.unsubscribe_url(message.idempotency_key))
    csrf_client = Client(enforce_csrf_checks=True)

    page = csrf_client.get(url)
    assert page.status_code == 200
    assert Consent.objects.get(customer=message.customer, purpose="marketing_email").granted

    response = csrf_client.post(
        url, data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    again = csrf_client.post(
        url, data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == again.status_code == 200
    consent = Consent.objects.get(customer=message.customer, purpose="marketing_email")
    assert consent.granted is False
    assert consent.source == "unsubscribe_link"
    change = ConsentChange.objects.filter(customer=message.customer).latest("pk")
    assert change.note == f"message {message.idempotency_key}"
    assert ConsentChange.objects.filter(customer=message.customer, granted=False).count() == 1
    message.refresh_from_db()
    assert message.unsubscribed_at is not None
    assert list(Event.objects.values_list("type", "campaign_id")) == [
        ("unsubscribe", message.campaign_id)
    ]


def test_unsubscribe_with_a_bad_token_changes_nothing(client):
    message = sent_message()
    response = client.post("/t/u/" + "A" * 20 + "." + "B" * 22)
    assert response.status_code == 400
    assert Consent.objects.get(customer=message.customer, purpose="marketing_email").granted


def test_mark_accepted_resolves_a_sending_row_and_leaves_skipped_alone():
    sending = sent_message(status="sending", claimed_at=timezone.now())
    skipped = sent_message(status="skipped", skip_reason="holdout")

    assert message_mark_accepted(key=sending.idempotency_key, provider_message_id="X1") is True
    assert message_mark_accepted(key=skipped.idempotency_key) is False
    assert message_mark_accepted(key="no:such:key") is False

    sending.refresh_from_db()
    skipped.refresh_from_db()
    assert (sending.status, sending.provider_message_id) == ("sent", "X1")
    assert sending.sent_at is not None
    assert (skipped.status, skipped.sent_at) == ("skipped", None)


# --- what dispatch sends ----------------------------------------------------------------------


def test_dispatched_email_carries_tracking_links_pixel_and_one_click_headers(sendgrid_stand_in):
    customer = CustomerFactory(external_id="t-1", email="t-1@example.com")
    ChannelEndpoint.objects.create(customer=customer, channel="email", address=customer.email)
    consent_set(customer=customer, purpose="marketing_email", granted=True, source="api")
    template = MessageTemplateFactory(
        html_body='<p>Hi</p><a href="https://shop.example/new">New</a>'
        '<a href="{{ unsubscribe_url }}">Unsubscribe</a>'
    )
    segment = segment_create_static(name="T", kind="imported", customer_ids=[customer.pk])
    campaign = CampaignFactory(status="sending", template=template, segment=segment)

    messages_send_batch(campaign=campaign, customer_ids=[customer.pk])

    body = sendgrid_stand_in.requests[0].json()
    key = Message.objects.get(campaign=campaign).idempotency_key
    assert body["custom_args"]["message_id"] == key
    unsubscribe = body["headers"]["List-Unsubscribe"]
    assert unsubscribe == f"<{tracking.unsubscribe_url(key)}>"
    assert body["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html = next(c["value"] for c in body["content"] if c["type"] == "text/html")
    assert f'href="{tracking.click_url(key, "https://shop.example/new")}"' in html
    assert f'href="{tracking.unsubscribe_url(key)}"' in html
    assert f'<img src="{tracking.open_url(key)}"' in html


def test_dispatched_sms_has_a_status_callback_with_the_message_id(twilio_stand_in):
    customer = CustomerFactory(external_id="s-1", phone="+4915550001111")
    ChannelEndpoint.objects.create(customer=customer, channel="sms", address=customer.phone)
    consent_set(customer=customer, purpose="sms", granted=True, source="api")
    template = MessageTemplateFactory(channel="sms", body="New in: https://shop.example/n")
    segment = segment_create_static(name="S", kind="imported", customer_ids=[customer.pk])
    campaign = CampaignFactory(channel="sms", status="sending", template=template, segment=segment)

    messages_send_batch(campaign=campaign, customer_ids=[customer.pk])

    form = {k: v[0] for k, v in twilio_stand_in.requests[0].form().items()}
    key = Message.objects.get(campaign=campaign).idempotency_key
    callback = urlsplit(form["StatusCallback"])
    assert (
        f"{callback.scheme}://{callback.netloc}{callback.path}" == f"{BASE}/webhooks/twilio/status"
    )
    assert parse_qs(callback.query) == {"message_id": [key]}
    assert form["Body"].startswith(f"New in: {BASE}/t/c/")
