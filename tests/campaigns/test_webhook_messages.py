"""SendGrid events and Twilio status callbacks linked to our messages: delivery, bounces,
opens, clicks and unsubscribes on the message rows, crashed sends resolved, forgeries refused."""

import datetime as dt
from collections import Counter

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.utils import timezone
from twilio.request_validator import RequestValidator

from campaigns import tracking
from campaigns.models import Message
from profiles.consent import consent_set
from profiles.models import ChannelEndpoint, Consent, Event
from tests.campaigns.factories import CampaignFactory
from tests.campaigns.test_webhooks import (
    EVENT_TS,
    TWILIO_TOKEN,
    _event,
    _post_sendgrid,
    signing_key,  # noqa: F401 - fixture
    twilio_token,  # noqa: F401 - fixture
)
from tests.profiles.factories import CustomerFactory

pytestmark = pytest.mark.django_db

AT = dt.datetime.fromtimestamp(EVENT_TS, tz=dt.UTC)
STATUS_URL = "/webhooks/twilio/status"


def message_to(customer=None, *, channel="email", status="sent", campaign=None, **fields):
    customer = customer or CustomerFactory()
    address = customer.email if channel == "email" else customer.phone
    campaign = campaign or CampaignFactory(channel=channel, status="sending")
    return Message.objects.create(
        campaign=campaign,
        customer=customer,
        channel=channel,
        address=address,
        idempotency_key=f"{campaign.pk}:0:{customer.pk}:{channel}",
        status=status,
        sent_at=AT - dt.timedelta(minutes=5) if status == "sent" else None,
        **fields,
    )


def ev(name, message, event_id, seconds=0, **extra):
    return _event(
        name,
        email=message.address,
        event_id=event_id,
        message_id=message.idempotency_key,
        campaign_id=str(message.campaign_id),
        **{"timestamp": EVENT_TS + seconds, **extra},
    )


def test_events_update_their_messages_with_the_first_times(client, signing_key):  # noqa: F811
    delivered, opened, bounced = (message_to() for _ in range(3))
    events = [
        ev("processed", delivered, "e1"),
        ev("delivered", delivered, "e2", 10),
        ev("delivered", opened, "e3", 5),
        ev("open", opened, "e4", 60),
        ev("open", opened, "e5", 30),
        ev("click", opened, "e6", 90, url="https://shop.example/p/1"),
        ev("bounce", bounced, "e7", 3, type="bounce", reason="550 bounced address"),
    ]

    response = _post_sendgrid(client, events, signing_key)

    assert response.status_code == 200
    assert response.json() == {"events": 7, "consents": 0, "endpoints": 0, "ignored": 0}
    delivered.refresh_from_db()
    opened.refresh_from_db()
    bounced.refresh_from_db()
    second = dt.timedelta(seconds=1)
    assert delivered.delivered_at == AT + 10 * second
    assert (opened.delivered_at, opened.opened_at) == (AT + 5 * second, AT + 30 * second)
    assert opened.clicked_at == AT + 90 * second
    assert (bounced.status, bounced.bounced_at, bounced.delivered_at) == (
        "sent",
        AT + 3 * second,
        None,
    )
    events = Event.objects.filter(customer=opened.customer)
    assert sorted(events.values_list("type", "occurred_at", "campaign_id")) == [
        ("email_click", AT + 90 * second, opened.campaign_id),
        ("email_open", AT + 30 * second, opened.campaign_id),
    ]


def test_a_redelivered_webhook_changes_nothing_and_adds_no_events(client, signing_key):  # noqa: F811
    message = message_to()
    events = [ev("open", message, "e1"), ev("click", message, "e2", 5, url="https://s.example/")]
    _post_sendgrid(client, events, signing_key)
    first = Message.objects.values().get(pk=message.pk)

    again = _post_sendgrid(client, events + [ev("open", message, "e3", 99)], signing_key)

    assert again.status_code == 200
    assert Message.objects.values().get(pk=message.pk) == first
    assert Counter(Event.objects.values_list("type", flat=True)) == {
        "email_open": 1,
        "email_click": 1,
    }


def test_processed_resolves_a_message_left_sending_by_a_crash(client, signing_key):  # noqa: F811
    message = message_to(status="sending", claimed_at=timezone.now())
    response = _post_sendgrid(
        client, [ev("processed", message, "e1", sg_message_id="abc123.filter0001")], signing_key
    )
    assert response.status_code == 200
    message.refresh_from_db()
    assert (message.status, message.sent_at, message.provider_message_id) == ("sent", AT, "abc123")


def test_machine_opens_do_not_count_as_opens(client, signing_key):  # noqa: F811
    message = message_to()
    _post_sendgrid(client, [ev("open", message, "e1", sg_machine_open=True)], signing_key)
    message.refresh_from_db()
    assert message.opened_at is None
    assert not Event.objects.exists()


def test_unsubscribe_event_sets_unsubscribed_at_and_withdraws_consent(client, signing_key):  # noqa: F811
    customer = CustomerFactory()
    consent_set(
        customer=customer,
        purpose="marketing_email",
        granted=True,
        source="api",
        at=AT - dt.timedelta(days=30),
    )
    message = message_to(customer)
    response = _post_sendgrid(client, [ev("spamreport", message, "e1")], signing_key)
    assert response.json()["consents"] == 1
    message.refresh_from_db()
    assert message.unsubscribed_at == AT
    assert Consent.objects.get(customer=customer, purpose="marketing_email").granted is False


def test_a_hard_bounce_of_a_message_flags_its_endpoint(client, signing_key):  # noqa: F811
    message = message_to()
    ChannelEndpoint.objects.create(
        customer=message.customer, channel="email", address=message.address
    )
    _post_sendgrid(client, [ev("dropped", message, "e1", reason="Bounced Address")], signing_key)
    message.refresh_from_db()
    assert message.bounced_at == AT
    assert ChannelEndpoint.objects.get(customer=message.customer).attributes == {"bounced": True}


def test_events_for_unknown_messages_are_ignored(client, signing_key):  # noqa: F811
    message = message_to()
    stranger = ev("delivered", message, "e1")
    stranger["message_id"] = "999:0:999:email"
    response = _post_sendgrid(client, [stranger], signing_key)
    assert response.json()["ignored"] == 1
    message.refresh_from_db()
    assert message.delivered_at is None


def test_a_forged_delivery_is_refused_and_changes_nothing(client, signing_key):  # noqa: F811
    message = message_to(status="sending", claimed_at=timezone.now())
    events = [ev("processed", message, "f1"), ev("open", message, "f2")]
    someone_else = ec.generate_private_key(ec.SECP256R1())

    response = _post_sendgrid(client, events, someone_else)

    assert response.status_code == 403
    message.refresh_from_db()
    assert (message.status, message.opened_at) == ("sending", None)
    assert not Event.objects.exists()


def test_a_batch_of_1000_events_takes_a_bounded_number_of_queries(
    client,
    signing_key,  # noqa: F811
    django_assert_max_num_queries,
):
    campaign = CampaignFactory(status="sending")
    messages = [message_to(campaign=campaign) for _ in range(250)]
    events = []
    for i, message in enumerate(messages):
        events += [
            ev("processed", message, f"p{i}"),
            ev("delivered", message, f"d{i}", 2),
            ev("open", message, f"o{i}", 30),
            ev("click", message, f"c{i}", 40, url="https://shop.example/x"),
        ]
    with django_assert_max_num_queries(20):
        response = _post_sendgrid(client, events, signing_key)
    assert response.json()["ignored"] == 0
    assert Message.objects.filter(campaign=campaign, clicked_at__isnull=False).count() == 250
    assert Event.objects.filter(type="email_click").count() == 250


# --- Twilio status callbacks --------------------------------------------------------------------


def post_status(client, message_key, params, *, token=TWILIO_TOKEN):
    url = f"http://testserver{STATUS_URL}?message_id={message_key}"
    signature = RequestValidator(token).compute_signature(url, params)
    return client.post(
        f"{STATUS_URL}?message_id={message_key}",
        data=params,
        headers={"X-Twilio-Signature": signature},
    )


def sms_message(**fields):
    customer = CustomerFactory(phone="+4915550009999")
    ChannelEndpoint.objects.create(customer=customer, channel="sms", address=customer.phone)
    return message_to(customer, channel="sms", **fields)


def test_twilio_delivered_sets_delivered_at(client, twilio_token):  # noqa: F811
    message = sms_message()
    response = post_status(
        client, message.idempotency_key, {"MessageSid": "SM1", "MessageStatus": "delivered"}
    )
    assert response.status_code == 200
    assert response.json() == {"message": True, "endpoints": 0, "ignored": False}
    message.refresh_from_db()
    assert message.delivered_at is not None
    assert message.bounced_at is None


def test_twilio_sent_resolves_a_crashed_send(client, twilio_token):  # noqa: F811
    message = sms_message(status="sending", claimed_at=timezone.now())
    post_status(client, message.idempotency_key, {"MessageSid": "SM9", "MessageStatus": "sent"})
    message.refresh_from_db()
    assert (message.status, message.provider_message_id) == ("sent", "SM9")


@pytest.mark.parametrize(
    ("status", "code", "bounced"),
    [("undelivered", "30003", False), ("failed", "21211", True), ("undelivered", "21614", True)],
)
def test_twilio_failures_bounce_the_message_and_unusable_numbers_the_endpoint(
    client,
    twilio_token,  # noqa: F811
    status,
    code,
    bounced,
):
    message = sms_message()
    response = post_status(
        client,
        message.idempotency_key,
        {"MessageSid": "SM2", "MessageStatus": status, "ErrorCode": code},
    )
    assert response.json()["endpoints"] == int(bounced)
    message.refresh_from_db()
    assert (message.status, message.bounced_at is not None) == ("sent", True)
    endpoint = ChannelEndpoint.objects.get(customer=message.customer, channel="sms")
    assert endpoint.attributes.get("bounced", False) is bounced


def test_twilio_status_with_a_bad_signature_is_refused(client, twilio_token):  # noqa: F811
    message = sms_message(status="sending", claimed_at=timezone.now())
    response = post_status(
        client,
        message.idempotency_key,
        {"MessageSid": "SM3", "MessageStatus": "delivered"},
        token="not-the-token",
    )
    assert response.status_code == 403
    message.refresh_from_db()
    assert (message.status, message.delivered_at) == ("sending", None)


def test_twilio_signature_covers_the_message_id(client, twilio_token):  # noqa: F811
    victim, attacker = sms_message(), sms_message()
    params = {"MessageSid": "SM4", "MessageStatus": "failed", "ErrorCode": "21211"}
    url = f"http://testserver{STATUS_URL}?message_id={attacker.idempotency_key}"
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(url, params)
    response = client.post(
        f"{STATUS_URL}?message_id={victim.idempotency_key}",
        data=params,
        headers={"X-Twilio-Signature": signature},
    )
    assert response.status_code == 403
    victim.refresh_from_db()
    assert victim.bounced_at is None


def test_twilio_unknown_message_or_status_is_ignored(client, twilio_token):  # noqa: F811
    message = sms_message()
    unknown = post_status(client, "1:0:1:sms", {"MessageSid": "S", "MessageStatus": "delivered"})
    odd = post_status(client, message.idempotency_key, {"MessageSid": "S", "MessageStatus": "read"})
    assert unknown.json()["ignored"] is True
    assert odd.json()["ignored"] is True
    message.refresh_from_db()
    assert message.delivered_at is None


def test_a_sendgrid_click_on_our_tracked_link_is_the_same_click_event(client, signing_key):  # noqa: F811
    message = message_to()
    tracked = tracking.click_url(message.idempotency_key, "https://shop.example/p/9")
    _post_sendgrid(client, [ev("click", message, "e1", url=tracked)], signing_key)
    client.get(tracked.removeprefix(settings.PUBLIC_BASE_URL.rstrip("/")))

    clicks = Event.objects.filter(type="email_click")
    assert [e.properties["url"] for e in clicks] == ["https://shop.example/p/9"]
