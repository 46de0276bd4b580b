"""Every number on the dashboard links to the list behind it."""

import datetime as dt
import re
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Message
from marketing import rollups
from tests.campaigns.factories import CampaignFactory
from tests.profiles.factories import CustomerFactory, EventFactory
from tests.recommender.factories import ItemFactory

pytestmark = pytest.mark.django_db
NUMBER = re.compile(r"\d")
# Not figures: the refresh line's clock and the window tabs' names.
NOT_FIGURES = (re.compile(r"updated \d\d:\d\d:\d\d UTC, refreshes every 10 s"),)


class _Texts(HTMLParser):
    """Text nodes of the page with whether an <a> encloses them."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.texts: list[tuple[str, bool, tuple[str, ...]]] = []
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("br", "img", "input", "meta", "link", "hr"):
            return
        self.stack.append(tag)
        if tag == "a":
            self.hrefs.append(dict(attrs).get("href") or "")

    def handle_endtag(self, tag):
        if tag in self.stack:
            while self.stack.pop() != tag:
                pass

    def handle_data(self, data):
        text = " ".join(data.split())
        if text and not {"script", "style", "title", "head"} & set(self.stack):
            self.texts.append((text, "a" in self.stack, tuple(self.stack)))


def unlinked_numbers(html: str) -> list[str]:
    parser = _Texts()
    parser.feed(html)
    return [
        text
        for text, linked, _ in parser.texts
        if NUMBER.search(text) and not linked and not any(p.search(text) for p in NOT_FIGURES)
    ]


@pytest.fixture
def busy_store():
    """Something in every panel: events of each kind, offers, recommendations, messages,
    a campaign sending."""
    assert (
        rollups.rollup_events_consume(
            now=timezone.now() + dt.timedelta(seconds=rollups.SETTLE_SECONDS + 1)
        ).events
        == 0
    )
    at = timezone.now() - dt.timedelta(minutes=5)
    customer = CustomerFactory()
    for n in range(3):
        ItemFactory(external_id=f"sku-{n}", category=f"c{n}")
    for event_type, item in (("view", "sku-1"), ("click", "sku-2"), ("offer_shown", "offer-1"),
                             ("offer_click", "offer-1")):  # fmt: skip
        EventFactory(customer=customer, type=event_type, item_external_id=item, occurred_at=at)
    EventFactory(
        customer=customer, type="purchase", item_external_id="sku-1", value=Decimal("12.50"),
        occurred_at=at,
    )  # fmt: skip
    EventFactory(customer=customer, type="view", item_external_id="sku-0", occurred_at=at,
                 properties={"rec_id": "r-9"})  # fmt: skip
    rollups.rollup_recommendations_served(items=[("sku-0", "c0"), ("sku-1", "c1")], now=at)
    campaign = CampaignFactory(status="sending")
    Message.objects.create(
        campaign=campaign, customer=customer, channel="email", idempotency_key="k1",
        sent_at=at, opened_at=at, clicked_at=at,
    )  # fmt: skip
    rollups.rollup_events_consume(
        now=timezone.now() + dt.timedelta(seconds=rollups.SETTLE_SECONDS + 1)
    )
    rollups.rollups_flush()


@pytest.mark.parametrize("window", ["hour", "day", "30d"])
def test_every_number_on_the_dashboard_is_inside_a_link(marketer_client, busy_store, window):
    response = marketer_client.get(reverse("dashboard"), {"window": window})
    assert response.status_code == 200
    html = response.content.decode()
    assert response.context["board"].rec_impressions == 2  # the panels have figures to check
    assert response.context["board"].events_total == 6
    assert unlinked_numbers(html) == []
    parser = _Texts()
    parser.feed(html)
    events = reverse("profiles:event-list")
    for expected in (
        f"{events}?window={window}",
        f"{events}?type=purchase&window={window}",
        f"{events}?type=offer_shown&window={window}",
        f"{events}?type=view&window={window}",
        f"{events}?type=view&item=sku-1&window={window}",
        f"{events}?type=offer_click&item=offer-1&window={window}",
        f"{events}?rec=on&window={window}",
        f"{reverse('campaigns:campaign-list')}?channel=email",
    ):
        assert expected in parser.hrefs, expected


def test_the_checker_finds_a_number_outside_a_link():
    html = '<p><a href="/x">12 events</a> and <b>7</b> offers</p><p>updated 10:11:12 UTC, ' \
           "refreshes every 10 s</p>"  # fmt: skip
    assert unlinked_numbers(html) == ["7"]


def test_each_event_link_opens_the_list_it_counts(marketer_client, busy_store):
    """The list behind "1 purchase" holds that purchase."""
    response = marketer_client.get(reverse("profiles:event-list"), {"type": "purchase",
                                                                    "window": "hour"})  # fmt: skip
    assert [e.type for e, _ in response.context["page"].rows] == ["purchase"]
    response = marketer_client.get(reverse("profiles:event-list"), {"rec": "on", "window": "hour"})
    assert [e.properties for e, _ in response.context["page"].rows] == [{"rec_id": "r-9"}]
