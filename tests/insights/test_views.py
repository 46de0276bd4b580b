import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.insights.factories import BrandFactory, PostFactory

HTMX = {"HX-Request": "true"}


def _ids(response) -> list[str]:
    return [p.external_id for p in response.context["page_obj"]]


@pytest.mark.parametrize("client_fixture", ["marketer_client", "analyst_client"])
def test_post_list_shows_posts(request, client_fixture):
    client = request.getfixturevalue(client_fixture)
    PostFactory(
        external_id="p1",
        source="bluesky",
        author="alice",
        brands=[BrandFactory(name="Acme")],
        sentiment=-0.75,
        posted_at=dt.datetime(2025, 5, 6, 7, 8, tzinfo=dt.UTC),
        text="Terrible service " + "x" * 300,
    )
    response = client.get(reverse("insights:post-list"))
    assert response.status_code == 200
    content = response.content.decode()
    assert "<h1>Insights</h1>" in content
    assert "2025-05-06 07:08" in content
    assert "bluesky" in content
    assert "alice" in content
    assert "Acme" in content
    assert '<span class="bad">-0.75</span>' in content
    assert "Terrible service " in content
    assert "x" * 200 not in content
    assert ("/admin/insights/post/" in content) is (client_fixture == "marketer_client")


def test_post_list_search_brand_and_source_filters(marketer_client):
    acme = BrandFactory(name="Acme")
    globex = BrandFactory(name="Globex")
    now = timezone.now()
    PostFactory(
        external_id="p1",
        brands=[acme],
        source="bluesky",
        text="Love the new shoes",
        posted_at=now - dt.timedelta(hours=3),
    )
    PostFactory(
        external_id="p2",
        brands=[globex],
        source="bluesky",
        text="Shoes broke",
        posted_at=now - dt.timedelta(hours=2),
    )
    PostFactory(
        external_id="p3",
        brands=[acme],
        source="mastodon",
        text="Meh",
        author="shoefan",
        posted_at=now - dt.timedelta(hours=1),
    )
    url = reverse("insights:post-list")
    assert _ids(marketer_client.get(url, {"q": "shoe"})) == ["p3", "p2", "p1"]
    assert _ids(marketer_client.get(url, {"q": "broke"})) == ["p2"]
    assert _ids(marketer_client.get(url, {"brand": acme.pk})) == ["p3", "p1"]
    assert _ids(marketer_client.get(url, {"source": "bluesky"})) == ["p2", "p1"]
    assert _ids(marketer_client.get(url, {"brand": acme.pk, "source": "bluesky"})) == ["p1"]
    response = marketer_client.get(url)
    assert response.context["form"].fields["source"].choices == [
        ("", "All sources"),
        ("bluesky", "bluesky"),
        ("mastodon", "mastodon"),
    ]


def test_post_list_htmx_returns_only_the_table(analyst_client):
    brand = BrandFactory(name="Acme")
    PostFactory(external_id="p1", brands=[brand], text="Great")
    response = analyst_client.get(reverse("insights:post-list"), {"brand": brand.pk}, headers=HTMX)
    content = response.content.decode()
    assert content.lstrip().startswith('<div id="post-table"')
    assert "Great" in content
    assert "<nav" not in content


def test_post_list_empty_state(analyst_client):
    content = analyst_client.get(reverse("insights:post-list")).content.decode()
    assert "No posts collected yet." in content


@pytest.mark.parametrize("n", [1, 20])
def test_post_list_query_count_is_constant(marketer_client, django_assert_num_queries, n):
    PostFactory.create_batch(n)
    # session, user, sources, count, page, its mentions with brands, brand choices, groups
    with django_assert_num_queries(8):
        response = marketer_client.get(reverse("insights:post-list"))
    assert len(_ids(response)) == n
