"""Social listening in Chromium: posts loaded through the ingest service (matcher and VADER
sentiment), the brand health page shows mentions, sentiment and its charts, and a figure
opens the posts it counts."""

import datetime as dt

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from insights.models import Mention
from insights.services import posts_ingest
from tests.insights.factories import BrandFactory

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

TEXTS = [
    ("I love my new Acme sneakers, super comfortable!", 1),
    ("Acme support is terrible, my order never arrived. Awful.", 2),
    ("Acme delivery was horrible and the box was broken.", 3),
    ("Just bought Acme socks.", 4),
    ("Globex shoes are great, amazing quality", 5),
]


def test_marketer_sees_mentions_sentiment_and_charts(marketer_page, live_server, screenshot_dir):
    acme = BrandFactory(name="Acme")
    BrandFactory(name="Globex", is_own=False)
    now = timezone.now()
    result = posts_ingest(
        [
            {
                "source": "bluesky",
                "post_id": f"p{n}",
                "author": f"user{n}",
                "text": text,
                "posted_at": (now - dt.timedelta(hours=n)).isoformat(),
                "likes": 10 * n,
            }
            for text, n in TEXTS
        ]
    )
    assert result.created == 5
    mentions = Mention.objects.filter(brand=acme)
    labels = list(mentions.values_list("sentiment_label", flat=True))
    assert len(labels) == 4
    negatives = labels.count("negative")
    assert negatives >= 1  # "terrible", "awful", "horrible" (VADER)

    page = marketer_page
    page.goto(f"{live_server.url}/")
    page.get_by_role("link", name="Brand health", exact=True).first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Brand health: Acme")
    expect(page.locator("#stat-mentions b")).to_have_text("4")
    expect(page.locator("#stat-negative b")).to_have_text(str(negatives))
    expect(page.locator("#stat-positive b")).to_have_text(str(labels.count("positive")))
    expect(page.locator("#stat-share b")).to_have_text("80%")
    expect(page.locator("#chart-sentiment .main-svg").first).to_be_visible()
    expect(page.locator("#chart-volume .main-svg").first).to_be_visible()
    expect(page.locator("#chart-voice .main-svg").first).to_be_visible()
    negative = page.evaluate("document.getElementById('chart-sentiment').data[2].y")
    assert negative[-1] + negative[-2] == negatives  # today (and yesterday after midnight)
    expect(page.locator("#top-posts tbody tr")).to_have_count(4)
    expect(page.locator("#themes-negative li").first).to_be_visible()
    if screenshot_dir:
        page.screenshot(path=str(screenshot_dir / "brand_health.png"), full_page=True)

    page.get_by_label("Brand").select_option(label="Globex (competitor)")
    expect(page.get_by_role("heading", level=1)).to_have_text("Brand health: Globex")
    expect(page.locator("#stat-mentions b")).to_have_text("1")
    page.go_back()
    expect(page.get_by_role("heading", level=1)).to_have_text("Brand health: Acme")

    page.locator("#stat-negative").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Insights")
    rows = page.locator("#post-table tbody tr")
    expect(rows).to_have_count(negatives)
    expect(rows.first).to_contain_text("Acme")
    expect(page.get_by_label("Sentiment")).to_have_value("negative")
    expect(page.get_by_label("Brand")).to_have_value(str(acme.pk))
    assert page.console_errors == []
