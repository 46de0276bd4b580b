"""The in-app inbox: dispatch stores what was rendered; storefronts list a customer's messages
and report reads, clicks and dismissals through the API."""

import datetime as dt
import itertools

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from campaigns.dispatch import BatchResult, messages_send_batch
from campaigns.models import Message
from profiles.models import ChannelEndpoint, Consent, Customer, CustomerAlias, Event
from profiles.segments.services import segment_create_static
from tests.campaigns.factories import CampaignFactory, MessageTemplateFactory
from tests.campaigns.test_dispatch import recipients, sending_campaign
from tests.helpers import api_key_client
from tests.profiles.factories import CustomerFactory

pytestmark = pytest.mark.django_db

_keys = itertools.count()


@pytest.fixture
def shop():
    return api_key_client("messages:read", "messages:write")


@pytest.fixture
def campaign():
    return CampaignFactory(name="Spring", channel="in_app", status="sending")


def inbox_message(customer, campaign, *, ago_minutes=5, title="Hello", **fields):
    channel = fields.pop("channel", "in_app")
    if Message.objects.filter(campaign=campaign, customer=customer, channel=channel).exists():
        # A campaign sends a customer one message: the next one is from another occurrence.
        campaign = CampaignFactory(
            name=campaign.name, channel=channel, status=campaign.status, parent=campaign
        )
    return Message.objects.create(
        campaign=campaign,
        customer=customer,
        channel=channel,
        idempotency_key=f"test:{next(_keys)}",
        status=fields.pop("status", "sent"),
        sent_at=timezone.now() - dt.timedelta(minutes=ago_minutes),
        payload=fields.pop(
            "payload",
            {"title": title, "body": "Body", "url": "https://shop.test/p", "icon": "/i.png"},
        ),
        **fields,
    )


def listed(response):
    assert response.status_code == 200, response.content
    return [row["title"] for row in response.json()["results"]]


# --- dispatch stores the rendered content ---------------------------------------------------


def test_dispatch_stores_the_rendered_in_app_message_and_the_inbox_shows_it_unchanged(shop):
    customer = CustomerFactory(external_id="c-1", first_name="Ada")
    ChannelEndpoint.objects.create(customer=customer, channel="in_app", address="app")
    Consent.objects.create(
        customer=customer, purpose="push", granted=True, source="api", changed_at=timezone.now()
    )
    template = MessageTemplateFactory(
        channel="in_app",
        subject="Hi {{ customer.first_name }}",
        body="New for {{ customer.first_name }}",
        url="https://shop.test/new",
        icon="https://shop.test/icon.png",
    )
    segment = segment_create_static(name="Ada", kind="imported", customer_ids=[customer.pk])
    campaign = CampaignFactory(
        channel="in_app", status="sending", template=template, segment=segment
    )

    assert messages_send_batch(campaign=campaign, customer_ids=[customer.pk]) == BatchResult(sent=1)
    Customer.objects.filter(pk=customer.pk).update(first_name="Grace")

    message = Message.objects.get(campaign=campaign)
    assert message.payload == {
        "title": "Hi Ada",
        "body": "New for Ada",
        "url": "https://shop.test/new",
        "icon": "https://shop.test/icon.png",
    }
    body = shop.get("/api/v1/customers/c-1/messages").json()
    assert body["results"] == [
        {
            "id": message.pk,
            "campaign": campaign.pk,
            "title": "Hi Ada",
            "body": "New for Ada",
            "url": "https://shop.test/new",
            "icon": "https://shop.test/icon.png",
            "sent_at": message.sent_at.isoformat().replace("+00:00", "Z"),
            "read": False,
        }
    ]


def test_dispatch_stores_no_payload_for_other_channels(sendgrid_stand_in):
    customers = recipients(1)
    campaign = sending_campaign(customers)

    assert messages_send_batch(campaign=campaign, customer_ids=[customers[0].pk]) == BatchResult(
        sent=1
    )

    assert Message.objects.get(campaign=campaign).payload == {}


# --- listing ---------------------------------------------------------------------------------


def test_list_is_newest_first_without_dismissed_expired_unsent_or_foreign_messages(
    shop, campaign, settings
):
    settings.IN_APP_MESSAGE_TTL_DAYS = 30
    customer = CustomerFactory(external_id="c-1")
    other = CustomerFactory(external_id="c-2")
    inbox_message(customer, campaign, title="older", ago_minutes=60)
    inbox_message(customer, campaign, title="newest", ago_minutes=1)
    inbox_message(customer, campaign, title="read", ago_minutes=30, opened_at=timezone.now())
    inbox_message(customer, campaign, title="dismissed", dismissed_at=timezone.now())
    inbox_message(customer, campaign, title="expired", ago_minutes=31 * 24 * 60)
    inbox_message(customer, campaign, title="push", channel="push")
    inbox_message(customer, campaign, title="failed", status="failed")
    inbox_message(customer, campaign, payload={})  # sent before content was stored
    inbox_message(other, campaign, title="someone else's")

    response = shop.get("/api/v1/customers/c-1/messages")

    assert listed(response) == ["newest", "read", "older"]
    assert [row["read"] for row in response.json()["results"]] == [False, True, False]
    assert response.json()["count"] == 3


def test_unread_filter_leaves_out_read_messages(shop, campaign):
    customer = CustomerFactory(external_id="c-1")
    inbox_message(customer, campaign, title="new", ago_minutes=1)
    inbox_message(customer, campaign, title="seen", ago_minutes=2, opened_at=timezone.now())

    assert listed(shop.get("/api/v1/customers/c-1/messages?unread=1")) == ["new"]
    assert listed(shop.get("/api/v1/customers/c-1/messages?unread=0")) == ["new", "seen"]


def test_expiry_follows_the_setting(shop, campaign, settings):
    customer = CustomerFactory(external_id="c-1")
    inbox_message(customer, campaign, title="two days", ago_minutes=2 * 24 * 60)
    settings.IN_APP_MESSAGE_TTL_DAYS = 1

    assert listed(shop.get("/api/v1/customers/c-1/messages")) == []


def test_list_is_paginated_like_the_other_lists(shop, campaign):
    customer = CustomerFactory(external_id="c-1")
    for minutes in (1, 2, 3):
        inbox_message(customer, campaign, title=f"m{minutes}", ago_minutes=minutes)

    body = shop.get("/api/v1/customers/c-1/messages?limit=2&offset=1").json()

    assert body["count"] == 3
    assert [row["title"] for row in body["results"]] == ["m2", "m3"]
    assert body["previous"].endswith("/api/v1/customers/c-1/messages?limit=2")
    assert body["next"] is None


def test_an_alias_finds_the_customer(shop, campaign):
    customer = CustomerFactory(external_id="c-1")
    CustomerAlias.objects.create(customer=customer, alias="cookie-9")
    inbox_message(customer, campaign, title="hi")

    assert listed(shop.get("/api/v1/customers/cookie-9/messages")) == ["hi"]


def test_unknown_customer_is_404(shop):
    response = shop.get("/api/v1/customers/nobody/messages")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_bad_unread_value_is_400_naming_the_field(shop):
    CustomerFactory(external_id="c-1")

    response = shop.get("/api/v1/customers/c-1/messages?unread=maybe")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert list(response.json()["extra"]["fields"]) == ["unread"]


def test_list_query_count_does_not_grow_with_messages(shop, campaign, django_assert_num_queries):
    customer = CustomerFactory(external_id="c-1")
    shop.get("/api/v1/customers/c-1/messages")  # authenticates the key (cached after)
    for minutes in range(10):
        inbox_message(customer, campaign, ago_minutes=minutes)

    # the customer (with its endpoints and aliases, as every customer endpoint), count, page
    with django_assert_num_queries(5):
        assert len(listed(shop.get("/api/v1/customers/c-1/messages"))) == 10


# --- scopes ----------------------------------------------------------------------------------


def test_listing_needs_messages_read(campaign):
    customer = CustomerFactory(external_id="c-1")
    inbox_message(customer, campaign)

    response = api_key_client("messages:write", "profiles:read").get(
        "/api/v1/customers/c-1/messages"
    )

    assert response.status_code == 403
    assert response.json()["message"] == "This API key lacks the scope 'messages:read'."


@pytest.mark.parametrize("action", ["read", "click", "dismiss"])
def test_marking_needs_messages_write_and_changes_nothing_without_it(campaign, action):
    customer = CustomerFactory(external_id="c-1")
    message = inbox_message(customer, campaign)

    response = api_key_client("messages:read", "events:write").post(
        f"/api/v1/customers/c-1/messages/{message.pk}/{action}"
    )

    assert response.status_code == 403
    assert response.json()["message"] == "This API key lacks the scope 'messages:write'."
    message.refresh_from_db()
    assert (message.opened_at, message.clicked_at, message.dismissed_at) == (None, None, None)
    assert not Event.objects.exists()


def test_no_key_is_refused(campaign):
    CustomerFactory(external_id="c-1")

    response = APIClient().get("/api/v1/customers/c-1/messages")

    assert response.status_code in (401, 403)
    assert response.json()["code"] == "not_authenticated"


# --- read, click, dismiss --------------------------------------------------------------------


def test_read_sets_opened_at_once_and_records_one_event(shop, campaign):
    customer = CustomerFactory(external_id="c-1")
    message = inbox_message(customer, campaign)
    url = f"/api/v1/customers/c-1/messages/{message.pk}/read"

    first = shop.post(url)
    message.refresh_from_db()
    opened_at = message.opened_at
    second = shop.post(url)

    assert first.status_code == second.status_code == 200
    assert first.json()["read"] is True
    assert first.json() == second.json()
    message.refresh_from_db()
    assert message.opened_at == opened_at is not None
    assert (message.clicked_at, message.dismissed_at) == (None, None)
    event = Event.objects.get()
    assert (event.customer_id, event.type, event.channel, event.campaign_id) == (
        customer.pk,
        "custom",
        "app",
        campaign.pk,
    )
    assert event.properties == {"name": "in_app_read", "message_id": message.pk}
    assert event.occurred_at == opened_at


def test_click_sets_clicked_at_marks_read_and_records_a_click(shop, campaign):
    customer = CustomerFactory(external_id="c-1")
    message = inbox_message(customer, campaign)

    response = shop.post(f"/api/v1/customers/c-1/messages/{message.pk}/click")
    shop.post(f"/api/v1/customers/c-1/messages/{message.pk}/click")

    assert response.status_code == 200
    assert response.json()["read"] is True
    message.refresh_from_db()
    assert message.clicked_at is not None
    assert message.opened_at == message.clicked_at
    event = Event.objects.get()
    assert (event.type, event.channel, event.campaign_id) == ("click", "app", campaign.pk)
    assert event.properties == {"message_id": message.pk, "url": "https://shop.test/p"}


def test_click_after_read_keeps_the_read_time_and_adds_the_click(shop, campaign):
    customer = CustomerFactory(external_id="c-1")
    read_at = timezone.now() - dt.timedelta(minutes=3)
    message = inbox_message(customer, campaign, opened_at=read_at)

    shop.post(f"/api/v1/customers/c-1/messages/{message.pk}/click")

    message.refresh_from_db()
    assert message.opened_at == read_at
    assert message.clicked_at > read_at
    assert list(Event.objects.values_list("type", flat=True)) == ["click"]


def test_dismiss_takes_the_message_out_of_the_inbox(shop, campaign):
    customer = CustomerFactory(external_id="c-1")
    kept = inbox_message(customer, campaign, title="kept")
    gone = inbox_message(customer, campaign, title="gone")

    response = shop.post(f"/api/v1/customers/c-1/messages/{gone.pk}/dismiss")
    again = shop.post(f"/api/v1/customers/c-1/messages/{gone.pk}/dismiss")

    assert (response.status_code, again.status_code) == (200, 200)
    assert listed(shop.get("/api/v1/customers/c-1/messages")) == ["kept"]
    gone.refresh_from_db()
    assert gone.dismissed_at is not None
    assert gone.opened_at is None
    kept.refresh_from_db()
    assert kept.dismissed_at is None
    event = Event.objects.get()
    assert (event.type, event.properties["name"]) == ("custom", "in_app_dismiss")


@pytest.mark.parametrize(
    ("owner", "fields"),
    [
        ("c-2", {}),
        ("c-1", {"channel": "push"}),
        ("c-1", {"status": "failed"}),
        ("c-1", {"ago_minutes": 40 * 24 * 60}),
    ],
    ids=["another customer's", "not in-app", "not sent", "expired"],
)
def test_a_message_outside_the_customers_inbox_is_404_and_unchanged(shop, campaign, owner, fields):
    customers = {c: CustomerFactory(external_id=c) for c in ("c-1", "c-2")}
    message = inbox_message(customers[owner], campaign, **fields)

    response = shop.post(f"/api/v1/customers/c-1/messages/{message.pk}/click")

    assert response.status_code == 404
    message.refresh_from_db()
    assert message.clicked_at is None
    assert not Event.objects.exists()


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/customers/c-1/messages/abc/read",
        "/api/v1/customers/c-1/messages/1234567890123456789012/read",
        "/api/v1/customers/nobody/messages/1/read",
        "/api/v1/customers/c-1/messages/999999/read",
    ],
)
def test_unknown_or_malformed_message_ids_are_404(shop, path):
    CustomerFactory(external_id="c-1")

    assert shop.post(path).status_code == 404
    assert not Event.objects.exists()


def test_marking_needs_post(shop, campaign):
    customer = CustomerFactory(external_id="c-1")
    message = inbox_message(customer, campaign)

    response = shop.get(f"/api/v1/customers/c-1/messages/{message.pk}/read")

    assert response.status_code == 405
    message.refresh_from_db()
    assert message.opened_at is None
