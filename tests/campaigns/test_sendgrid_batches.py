"""SendGrid batches: several rendered messages in one mail/send request (a personalization
each, the content as substitutions), over real HTTP to the stand-in, and through dispatch."""

import math

import pytest

from campaigns.dispatch import BatchResult, messages_send_batch
from campaigns.models import Message
from campaigns.providers import (
    OutboundMessage,
    ProviderPermanentError,
    ProviderResult,
    ProviderTransientError,
    provider_for,
)
from campaigns.providers.email import HTML_TAG, MAX_SUBSTITUTION_BYTES, TEXT_TAG
from profiles.models import ChannelEndpoint
from profiles.segments.services import segment_create_static
from tests.campaigns.factories import (
    CampaignFactory,
    MessageTemplateFactory,
    emailable_customer,
)
from tests.stand_ins import sendgrid_message_ids


def email(i: int, *, to: str = "", html: str = "") -> OutboundMessage:
    return OutboundMessage(
        message_id=f"msg-{i}",
        channel="email",
        to=to or f"r{i}@example.com",
        subject=f"Your picks, R{i}",
        html=html or f"<p>Hello R{i}</p>",
        text=f"Hello R{i}",
        headers={"List-Unsubscribe": f"<https://shop.example/u/tok{i}>"},
        categories=("campaign-7",),
        custom_args={"campaign_id": "7", "url": f"https://shop.example/i/{i}"},
    )


def as_sent_alone(message: OutboundMessage) -> dict:
    """What the stand-in records of a message: the shape of a one-recipient body."""
    return {
        "personalizations": [{"to": [{"email": message.to}]}],
        "from": {"email": "news@shop.example"},
        "subject": message.subject,
        "content": [
            {"type": "text/plain", "value": message.text},
            {"type": "text/html", "value": message.html},
        ],
        "headers": dict(message.headers),
        "categories": list(message.categories),
        "custom_args": {**message.custom_args, "message_id": message.message_id},
    }


@pytest.fixture
def batched(sendgrid_stand_in, settings):
    settings.SENDGRID_BATCH_SIZE = 2
    return sendgrid_stand_in


def test_send_many_sends_batch_size_messages_per_request_each_with_its_own_content(batched):
    messages = [email(i) for i in range(5)]

    outcomes = provider_for("email").send_many(messages)

    assert len(batched.http_requests) == 3
    first = batched.http_requests[0].json()
    assert first["content"] == [
        {"type": "text/plain", "value": TEXT_TAG},
        {"type": "text/html", "value": HTML_TAG},
    ]
    assert first["categories"] == ["campaign-7"]
    assert first["personalizations"][1] == {
        "to": [{"email": "r1@example.com"}],
        "subject": "Your picks, R1",
        "substitutions": {TEXT_TAG: "Hello R1", HTML_TAG: "<p>Hello R1</p>"},
        "custom_args": {
            "campaign_id": "7",
            "url": "https://shop.example/i/1",
            "message_id": "msg-1",
        },
        "headers": {"List-Unsubscribe": "<https://shop.example/u/tok1>"},
    }
    assert [r.json() for r in batched.requests] == [as_sent_alone(m) for m in messages]
    assert outcomes == [
        ProviderResult("sg-msg-1"),
        ProviderResult("sg-msg-1"),
        ProviderResult("sg-msg-2"),
        ProviderResult("sg-msg-2"),
        ProviderResult("sg-msg-3"),
    ]
    # The Email Activity lookup finds every message of a batch by its own id.
    assert provider_for("email").lookup("msg-3") == ProviderResult("sg-msg-2.filter0001")


def test_a_message_over_the_substitution_limit_or_to_a_repeated_address_goes_apart(
    batched, settings
):
    settings.SENDGRID_BATCH_SIZE = 10
    big = "<p>" + "x" * MAX_SUBSTITUTION_BYTES + "</p>"
    messages = [email(0), email(1, html=big), email(2), email(3, to="R0@example.com")]

    outcomes = provider_for("email").send_many(messages)

    bodies = [r.json() for r in batched.http_requests]
    assert [sendgrid_message_ids(r.body) for r in batched.http_requests] == [
        ["msg-0", "msg-2"],
        ["msg-1"],
        ["msg-3"],
    ]
    assert "substitutions" not in bodies[1]["personalizations"][0]
    assert bodies[1]["content"][1] == {"type": "text/html", "value": big}
    assert sorted(r.json()["custom_args"]["message_id"] for r in batched.requests) == [
        "msg-0",
        "msg-1",
        "msg-2",
        "msg-3",
    ]
    assert all(isinstance(o, ProviderResult) for o in outcomes)


def test_a_rejected_batch_is_resent_one_by_one_so_only_the_bad_address_fails(batched, settings):
    settings.SENDGRID_BATCH_SIZE = 3
    batched.fail_for("r1@example.com", 400)
    messages = [email(i) for i in range(3)]

    good0, bad, good2 = provider_for("email").send_many(messages)

    assert len(batched.http_requests) == 1 + 3
    assert len(batched.http_requests[0].json()["personalizations"]) == 3
    assert isinstance(good0, ProviderResult)
    assert isinstance(good2, ProviderResult)
    assert isinstance(bad, ProviderPermanentError)
    assert bad.endpoint_unreachable is True
    assert set(batched.accepted) == {"msg-0", "msg-2"}


def test_a_rate_limited_batch_is_every_members_transient_error(batched, settings):
    settings.SENDGRID_BATCH_SIZE = 3
    batched.fail_next(1, 429, retry_after=7)

    outcomes = provider_for("email").send_many([email(i) for i in range(3)])

    assert len(batched.http_requests) == 1
    assert [type(o) for o in outcomes] == [ProviderTransientError] * 3
    assert [o.retry_after for o in outcomes] == [7.0] * 3
    assert batched.accepted == {}


@pytest.mark.django_db
def test_a_campaign_of_n_recipients_goes_in_ceil_n_over_batch_requests_each_recipient_its_own(
    sendgrid_stand_in, settings
):
    settings.SENDGRID_BATCH_SIZE = 3
    customers = [
        emailable_customer(external_id=f"b-{i}", email=f"b-{i}@example.com", first_name=f"N{i}")
        for i in range(7)
    ]
    template = MessageTemplateFactory(
        subject="Hi {{ customer.first_name }}",
        html_body='<p>{{ customer.first_name }}</p><a href="{{ unsubscribe_url }}">u</a>',
    )
    segment = segment_create_static(
        name="Batched", kind="imported", customer_ids=[c.pk for c in customers]
    )
    campaign = CampaignFactory(template=template, segment=segment, status="sending")

    result = messages_send_batch(campaign=campaign, customer_ids=[c.pk for c in customers])

    assert result == BatchResult(sent=7)
    assert len(sendgrid_stand_in.http_requests) == math.ceil(7 / 3)
    by_address = {
        r.json()["personalizations"][0]["to"][0]["email"]: r.json()
        for r in sendgrid_stand_in.requests
    }
    assert set(by_address) == {c.email for c in customers}
    for customer in customers:
        sent = by_address[customer.email]
        message = Message.objects.get(campaign=campaign, customer=customer)
        assert sent["subject"] == f"Hi {customer.first_name}"
        html = sent["content"][-1]["value"]
        assert html.startswith(f"<p>{customer.first_name}</p>")
        unsubscribe = sent["headers"]["List-Unsubscribe"]
        assert unsubscribe.startswith("<http")
        assert unsubscribe[1:-1] in html
        assert sent["custom_args"] == {
            "campaign_id": str(campaign.pk),
            "message_id": message.idempotency_key,
        }
        assert message.status == "sent"
        assert message.provider_message_id.startswith("sg-msg-")
    unsubscribes = {r.json()["headers"]["List-Unsubscribe"] for r in sendgrid_stand_in.requests}
    assert len(unsubscribes) == 7
    assert ChannelEndpoint.objects.filter(attributes__bounced=True).count() == 0
