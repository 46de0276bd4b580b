import datetime as dt

import pytest
from django.urls import reverse

from tests.campaigns.factories import CampaignFactory, MessageTemplateFactory
from tests.profiles.factories import SegmentFactory

HTMX = {"HX-Request": "true"}


def _names(response) -> list[str]:
    return [c.name for c in response.context["page_obj"]]


@pytest.mark.parametrize("client_fixture", ["marketer_client", "analyst_client"])
def test_campaign_list_shows_campaigns(request, client_fixture):
    client = request.getfixturevalue(client_fixture)
    CampaignFactory(
        name="Spring newsletter",
        channel="email",
        status="sent",
        segment=SegmentFactory(name="Newsletter subscribers"),
        template=MessageTemplateFactory(name="Spring template"),
        scheduled_at=dt.datetime(2025, 4, 1, 9, 0, tzinfo=dt.UTC),
        sent_at=dt.datetime(2025, 4, 1, 9, 5, tzinfo=dt.UTC),
    )
    CampaignFactory(name="Draft push", channel="push", segment=None, template=None)
    response = client.get(reverse("campaigns:campaign-list"))
    assert response.status_code == 200
    content = response.content.decode()
    assert "<h1>Campaigns</h1>" in content
    assert "<b>Spring newsletter</b>" in content
    assert "Newsletter subscribers" in content
    assert "Spring template" in content
    assert '<span class="status status-sent">Sent</span>' in content
    assert "2025-04-01 09:00" in content
    assert "2025-04-01 09:05" in content
    assert "<b>Draft push</b>" in content
    assert ("/campaigns/new/" in content) is (client_fixture == "marketer_client")
    assert ("New campaign" in content) is (client_fixture == "marketer_client")


def test_campaign_list_search_status_and_channel_filters(marketer_client):
    CampaignFactory(name="Spring newsletter", channel="email", status="sent")
    CampaignFactory(name="Spring SMS blast", channel="sms", status="draft")
    CampaignFactory(name="Cart reminder", channel="email", status="draft")
    url = reverse("campaigns:campaign-list")
    assert _names(marketer_client.get(url, {"q": "spring"})) == [
        "Spring SMS blast",
        "Spring newsletter",
    ]
    assert _names(marketer_client.get(url, {"status": "draft"})) == [
        "Cart reminder",
        "Spring SMS blast",
    ]
    assert _names(marketer_client.get(url, {"channel": "sms"})) == ["Spring SMS blast"]
    assert _names(marketer_client.get(url, {"channel": "email", "status": "draft"})) == [
        "Cart reminder"
    ]
    response = marketer_client.get(url, {"status": "failed"})
    assert _names(response) == []
    assert "No campaigns match these filters." in response.content.decode()


def test_campaign_list_htmx_returns_only_the_table(analyst_client):
    CampaignFactory(name="Spring newsletter")
    response = analyst_client.get(reverse("campaigns:campaign-list"), {"q": "spring"}, headers=HTMX)
    content = response.content.decode()
    assert content.lstrip().startswith('<div id="campaign-table"')
    assert "Spring newsletter" in content
    assert "<nav" not in content


def test_campaign_list_empty_state(analyst_client):
    content = analyst_client.get(reverse("campaigns:campaign-list")).content.decode()
    assert "No campaigns yet." in content


@pytest.mark.parametrize("n", [1, 20])
def test_campaign_list_query_count_is_constant(marketer_client, django_assert_num_queries, n):
    CampaignFactory.create_batch(n)
    # session, user, count, page with segment and template joined, its figures, can_edit groups
    with django_assert_num_queries(6):
        response = marketer_client.get(reverse("campaigns:campaign-list"))
    assert len(_names(response)) == n
