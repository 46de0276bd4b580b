"""The events list: filters, keyset pages ("Older"), the htmx fragment, bounded queries."""

import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from profiles.selectors_events import EventCursor, event_list_page
from tests.profiles.factories import CustomerFactory, EventFactory

pytestmark = pytest.mark.django_db
URL = reverse("profiles:event-list")


@pytest.fixture
def events():
    """Events a minute apart, newest first: e0 (now - 1 min) ... plus one 2 days old."""
    now = timezone.now()
    alice, bob = CustomerFactory(external_id="alice"), CustomerFactory(external_id="bob")
    specs = [
        ("view", alice, "web", None, "sku-1", {}),
        ("purchase", bob, "web", None, "sku-1", {}),
        ("email_open", alice, "email", 7, "", {}),
        ("click", bob, "app", None, "sku-2", {"rec_id": "r1"}),
        ("view", alice, "web", None, "sku-2", {"source": "recommendation"}),
        ("view", bob, "web", None, "sku-3", {"source": "search"}),
    ]
    made = [
        EventFactory(
            type=t,
            customer=c,
            channel=ch,
            campaign_id=camp,
            item_external_id=item,
            properties=props,
            occurred_at=now - dt.timedelta(minutes=n + 1),
        )  # fmt: skip
        for n, (t, c, ch, camp, item, props) in enumerate(specs)
    ]
    EventFactory(type="view", customer=alice, occurred_at=now - dt.timedelta(days=2))
    return made


def _pks(page) -> list[int]:
    return [event.pk for event, _ in page.rows]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, [0, 1, 2, 3, 4, 5]),
        ({"type": "view"}, [0, 4, 5]),
        ({"channel": "web"}, [0, 1, 4, 5]),
        ({"campaign": 7}, [2]),
        ({"item": "sku-2"}, [3, 4]),
        ({"rec": True}, [3, 4]),
        ({"type": "click", "rec": True}, [3]),
        ({"type": "purchase", "channel": "email"}, []),
    ],
)
def test_filters_select_the_events_newest_first(events, filters, expected):
    page = event_list_page(filters=filters)
    assert _pks(page) == [events[i].pk for i in expected]
    assert page.next_cursor is None


def test_the_window_bounds_the_list(events):
    assert len(event_list_page(filters={"window": "hour"}).rows) == 6
    assert len(event_list_page(filters={"window": "7d"}).rows) == 7


def test_pages_follow_the_last_row_without_gaps_or_repeats(events):
    same_time = events[0].occurred_at
    twins = [EventFactory(type="click", occurred_at=same_time) for _ in range(3)]
    seen: list[int] = []
    cursor = None
    for _ in range(10):
        page = event_list_page(filters={}, cursor=cursor, limit=2)
        seen += _pks(page)
        if page.next_cursor is None:
            break
        cursor = EventCursor.decode(page.next_cursor)
    newest = sorted(twins + [events[0]], key=lambda e: -e.pk)
    assert seen == [e.pk for e in newest] + [e.pk for e in events[1:]]


def test_page_shows_the_rows_with_customer_and_campaign_links(marketer_client, events):
    response = marketer_client.get(URL, {"type": "email_open"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "<h1>Events</h1>" in page
    alice = events[2].customer
    assert f'<a href="{reverse("profiles:customer-detail", args=[alice.pk])}">alice</a>' in page
    assert f'<a href="{reverse("campaigns:campaign-detail", args=[7])}">7</a>' in page
    assert "No older events in this window." in page


def test_older_link_pages_through_the_htmx_fragment(analyst_client, events):
    response = analyst_client.get(URL)
    first = response.context["page"]
    assert len(first.rows) == 6
    for n in range(60):
        EventFactory(type="view", occurred_at=timezone.now() - dt.timedelta(hours=2, seconds=n))
    response = analyst_client.get(URL)
    page = response.content.decode()
    older = re.search(r'href="(\?before=[^"]+)"[^>]*rel="next"', page)
    assert older
    older_url = URL + older.group(1).replace("&amp;", "&")
    fragment = analyst_client.get(older_url, headers={"HX-Request": "true"})
    body = fragment.content.decode()
    assert body.lstrip().startswith('<div id="event-table"')
    assert body.count('<td class="nowrap">') == 16  # 66 in the window, 50 on the first page
    assert "← Newest" in body


def test_a_forged_cursor_is_refused(marketer_client, events):
    response = marketer_client.get(URL, {"before": "yesterday"})
    assert response.status_code == 400
    assert "before" in response.context["form"].errors


def test_list_costs_two_queries_whatever_the_filters(marketer_client, events):
    for params in ({}, {"type": "view", "window": "30d"}, {"channel": "web", "rec": "on"}):
        with CaptureQueriesContext(connection) as queries:
            marketer_client.get(URL, params)
        event_queries = [q["sql"] for q in queries.captured_queries if "profiles_event" in q["sql"]]
        assert len(event_queries) == 1
        assert "count(" not in event_queries[0].lower()
        assert "OFFSET" not in event_queries[0]
