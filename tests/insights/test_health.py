import datetime as dt
import json
from urllib.parse import parse_qs, urlparse

import pytest
from django.urls import reverse
from django.utils import timezone

from insights.selectors_health import brand_health, campaign_periods, health_panel, health_window
from insights.themes import top_themes
from tests.campaigns.factories import CampaignFactory
from tests.insights.factories import BrandFactory, MentionFactory, PostFactory

NOW = dt.datetime(2026, 11, 20, 15, 0, tzinfo=dt.UTC)


def _at(days_ago: float, hour: int = 12) -> dt.datetime:
    day = NOW.date() - dt.timedelta(days=days_ago)
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC)


@pytest.fixture
def brands(db):
    acme = BrandFactory(name="Acme", aliases=["acme co"])
    globex = BrandFactory(name="Globex", is_own=False)
    initech = BrandFactory(name="Initech", is_own=False)
    BrandFactory(name="Dormant", is_own=False, is_active=False)
    return acme, globex, initech


def test_health_window_is_the_last_n_calendar_days():
    window = health_window(days=7, now=NOW)
    assert window.first == dt.date(2026, 11, 14)
    assert window.last == dt.date(2026, 11, 20)
    assert len(window.dates) == 7
    assert window.since == dt.datetime(2026, 11, 14, tzinfo=dt.UTC)
    assert window.until == dt.datetime(2026, 11, 21, tzinfo=dt.UTC)


def test_brand_health_counts_volume_share_sentiment_and_engagement(brands):
    acme, globex, initech = brands
    PostFactory(brands=[acme], sentiment=0.8, posted_at=_at(0), likes=5, text="Acme fast delivery")
    PostFactory(brands=[acme], sentiment=0.6, posted_at=_at(1), likes=50, shares=3, comments=2)
    PostFactory(brands=[acme], sentiment=-0.7, posted_at=_at(1), text="Acme broken zipper")
    PostFactory(brands=[acme, globex], sentiment=0.0, posted_at=_at(6), comments=1)
    PostFactory(brands=[acme], sentiment=-0.9, posted_at=_at(7))  # before the window
    PostFactory(brands=[globex], sentiment=-0.5, posted_at=_at(2))
    PostFactory(brands=[globex], sentiment=-0.5, posted_at=_at(3))
    PostFactory(brands=[initech], sentiment=0.5, posted_at=_at(3))

    health = brand_health(brand=acme, days=7, now=NOW)

    assert health.total == 4
    assert (health.positive, health.neutral, health.negative) == (2, 1, 1)
    assert health.net_sentiment == pytest.approx(0.25)
    assert health.series() == [1, 0, 0, 0, 0, 2, 1]
    assert health.series("positive") == [0, 0, 0, 0, 0, 1, 1]
    assert health.series("negative") == [0, 0, 0, 0, 0, 1, 0]
    assert [(v.brand.name, v.mentions) for v in health.voices] == [
        ("Acme", 4),
        ("Globex", 3),
        ("Initech", 1),
    ]
    assert health.share_of_voice == pytest.approx(0.5)
    assert [p.engagement for p in health.top_posts] == [55, 5, 1, 0]


def test_brand_health_themes_prefer_aspects_and_leave_out_the_brand_name(brands):
    acme, _, _ = brands
    PostFactory(brands=[acme], sentiment=-0.6, posted_at=_at(0), aspects=["delivery"])
    PostFactory(brands=[acme], sentiment=-0.6, posted_at=_at(0), aspects=["delivery", "price"])
    PostFactory(brands=[acme], sentiment=-0.6, posted_at=_at(1), text="Acme zipper broke, zipper!")
    PostFactory(brands=[acme], sentiment=0.9, posted_at=_at(1), text="Acme Co comfy soles")
    health = brand_health(brand=acme, days=7, now=NOW)
    assert health.negative_themes == [("delivery", 2), ("broke", 1), ("price", 1), ("zipper", 1)]
    assert health.positive_themes == [("comfy", 1), ("soles", 1)]


def test_top_themes_counts_a_theme_once_per_post():
    posts = [([], "battery battery battery"), ([{"term": "Battery"}], "x"), (None, "the screen")]
    assert top_themes(posts, limit=5) == [("battery", 2), ("screen", 1)]


def test_campaign_periods_mark_started_and_sent_campaigns_in_the_window(db):
    running = CampaignFactory(
        name="Winter sale", status="sending", started_at=_at(3, hour=9), finished_at=None
    )
    done = CampaignFactory(
        name="Black Friday", status="done", started_at=_at(5), finished_at=_at(4)
    )
    sent = CampaignFactory(name="Legacy", status="sent", sent_at=_at(2))
    CampaignFactory(name="Old", status="done", started_at=_at(40), finished_at=_at(39))
    CampaignFactory(name="Draft", status="draft")
    window = health_window(days=7, now=NOW)
    periods = campaign_periods(since=window.since, until=window.until, now=NOW)
    assert [(p.name, p.start, p.end) for p in periods] == [
        (done.name, _at(5), _at(4)),
        (running.name, _at(3, hour=9), NOW),
        (sent.name, _at(2), _at(1)),
    ]


def test_health_page_shows_figures_linking_to_the_filtered_posts(marketer_client, brands):
    acme, globex, _ = brands
    # The page reads the real clock (no `now` to pass a fixed one): the posts are at the start
    # of today, in today's point at any hour (an hour ago is yesterday before 01:00).
    today_start = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    PostFactory(brands=[acme], sentiment=-0.8, posted_at=today_start)
    PostFactory(brands=[acme], sentiment=0.8, posted_at=today_start)
    PostFactory(brands=[globex], sentiment=0.8, posted_at=today_start)
    CampaignFactory(name="Spring", status="sending", started_at=today_start - dt.timedelta(days=2))

    response = marketer_client.get(reverse("insights:brand-health", args=[acme.pk]), {"days": 7})

    assert response.status_code == 200
    page = response.content.decode()
    assert "Brand health: Acme" in page
    health = response.context["health"]
    assert (health.total, health.negative) == (2, 1)
    today = timezone.localdate()
    first = today - dt.timedelta(days=6)
    negative_url = response.context["links"]["negative"]
    assert parse_qs(urlparse(negative_url).query) == {
        "brand": [str(acme.pk)],
        "sentiment": ["negative"],
        "date_from": [first.isoformat()],
        "date_to": [today.isoformat()],
    }
    assert f'href="{negative_url.replace("&", "&amp;")}"' in page
    sentiment = json.loads(response.context["figures"]["sentiment"]["data"])
    assert [t["name"] for t in sentiment] == ["positive", "neutral", "negative"]
    assert sentiment[2]["y"][-1] == 1
    assert sentiment[2]["customdata"][-1].endswith(
        f"date_from={today.isoformat()}&date_to={today.isoformat()}&sentiment=negative"
    )
    layout = json.loads(response.context["figures"]["sentiment"]["layout"])
    assert [a["text"] for a in layout["annotations"]] == ["Spring"]
    assert layout["shapes"][0]["type"] == "rect"
    # the linked list shows exactly the counted posts
    listed = marketer_client.get(negative_url)
    assert [p.sentiment_label for p in listed.context["page_obj"]] == ["negative"]


def test_health_page_query_count_does_not_grow_with_mentions(
    marketer_client, brands, django_assert_num_queries
):
    acme, globex, _ = brands
    now = timezone.now()
    url = reverse("insights:brand-health", args=[acme.pk])
    marketer_client.get(url)
    # session, user, role, brands, daily, competitors, share, 2 themes, top posts,
    # campaigns, alerts
    with django_assert_num_queries(12):
        marketer_client.get(url, {"days": 90})
    for i in range(30):
        PostFactory(
            brands=[acme, globex], sentiment=(-1) ** i * 0.5, posted_at=now - dt.timedelta(days=i)
        )
    with django_assert_num_queries(12):
        response = marketer_client.get(url, {"days": 90})
    assert response.context["health"].total == 30


def test_health_index_opens_our_first_brand_and_unknown_brand_is_404(marketer_client, brands):
    acme = brands[0]
    response = marketer_client.get(reverse("insights:health"), {"days": 90})
    assert response.status_code == 302
    assert response["Location"] == reverse("insights:brand-health", args=[acme.pk]) + "?days=90"
    chosen = marketer_client.get(reverse("insights:health"), {"brand": brands[1].pk, "days": 7})
    assert chosen["Location"] == reverse("insights:brand-health", args=[brands[1].pk]) + "?days=7"
    assert marketer_client.get(reverse("insights:brand-health", args=[99999])).status_code == 404


def test_health_index_without_brands_says_so(analyst_client):
    response = analyst_client.get(reverse("insights:health"))
    assert response.status_code == 200
    assert "No brand is being listened for yet." in response.content.decode()


def test_health_page_for_analysts_and_bad_window_falls_back(analyst_client, brands):
    acme = brands[0]
    response = analyst_client.get(reverse("insights:brand-health", args=[acme.pk]), {"days": 5})
    assert response.status_code == 200
    assert response.context["days"] == 30
    assert "No mentions in this window." in response.content.decode()


def test_post_list_filters_by_sentiment_dates_and_customer(marketer_client, brands):
    from tests.profiles.factories import CustomerFactory

    acme, globex, _ = brands
    customer = CustomerFactory()
    PostFactory(external_id="a", brands=[acme], sentiment=-0.5, posted_at=_at(1))
    PostFactory(external_id="b", brands=[acme], sentiment=0.5, posted_at=_at(2), customer=customer)
    PostFactory(external_id="c", brands=[globex], sentiment=-0.5, posted_at=_at(3))
    PostFactory(external_id="d", sentiment=-0.5, posted_at=_at(10))
    url = reverse("insights:post-list")

    def ids(**params):
        return [p.external_id for p in marketer_client.get(url, params).context["page_obj"]]

    assert ids(sentiment="negative") == ["a", "c", "d"]
    assert ids(sentiment="negative", brand=acme.pk) == ["a"]
    day = _at(2).date().isoformat()
    assert ids(date_from=day) == ["a", "b"]
    assert ids(date_from=day, date_to=day) == ["b"]
    assert ids(brand=acme.pk, date_to=day) == ["b"]
    assert ids(customer=customer.pk) == ["b"]


def test_dashboard_panel_sums_our_brands_against_competitors(brands):
    acme, globex, _ = brands
    product = BrandFactory(name="Acme Runner", kind="product", parent=acme)
    now = timezone.now()
    for sentiment in (0.5, 0.5, -0.5):
        PostFactory(brands=[acme], sentiment=sentiment, posted_at=now - dt.timedelta(hours=1))
    PostFactory(brands=[globex], sentiment=0.5, posted_at=now - dt.timedelta(hours=1))
    PostFactory(brands=[product], sentiment=0.5, posted_at=now - dt.timedelta(hours=1))
    MentionFactory(brand=acme, post__posted_at=now - dt.timedelta(days=3))
    panel = health_panel(since=now - dt.timedelta(days=1), until=now)
    assert (panel.mentions, panel.positive, panel.negative) == (3, 2, 1)
    assert panel.own_share == pytest.approx(0.75)
    assert panel.net_sentiment == pytest.approx(1 / 3)
    assert panel.brand_id == acme.pk
    assert panel.open_alerts == 0


def test_dashboard_shows_the_brand_health_panel(marketer_client, brands):
    acme = brands[0]
    PostFactory(brands=[acme], sentiment=-0.5, posted_at=timezone.now() - dt.timedelta(minutes=5))
    response = marketer_client.get(reverse("dashboard"), {"window": "day"})
    page = response.content.decode()
    assert response.context["brand_panel"].mentions == 1
    assert f'href="{reverse("insights:brand-health", args=[acme.pk])}?days=7"' in page
    assert "mentions of our brands" in page
