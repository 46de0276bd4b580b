import datetime as dt

import pytest
from django.urls import reverse

from recommender.selectors import RankedItem, modelversion_top_items
from tests.recommender.factories import ItemFactory, ModelVersionFactory

HTMX = {"HX-Request": "true"}


def _ids(response) -> list[str]:
    return [item.external_id for item in response.context["page_obj"]]


@pytest.mark.parametrize("client_fixture", ["marketer_client", "analyst_client"])
def test_catalog_shows_items_with_lazy_thumbnails(request, client_fixture):
    client = request.getfixturevalue(client_fixture)
    ItemFactory(
        external_id="sku-red",
        title="Red shoe",
        category="shoes",
        brand="Acme",
        price="49.90",
        image_url="https://img.example.com/red.jpg",
    )
    ItemFactory(external_id="sku-hat", title="Blue hat", in_stock=False, image_url="")
    response = client.get(reverse("recommender:item-list"))
    assert response.status_code == 200
    content = response.content.decode()
    assert "<h1>Catalog</h1>" in content
    assert (
        '<img class="thumb" src="https://img.example.com/red.jpg" alt="Red shoe" '
        'loading="lazy" width="40" height="40">'
    ) in content
    assert "<b>Red shoe</b>" in content
    assert "49.90" in content
    assert '<span class="bad">out of stock</span>' in content
    assert ("/admin/recommender/item/" in content) is (client_fixture == "marketer_client")


def test_catalog_htmx_returns_only_the_table(marketer_client):
    ItemFactory(title="Red shoe")
    response = marketer_client.get(reverse("recommender:item-list"), {"q": "red"}, headers=HTMX)
    content = response.content.decode()
    assert content.lstrip().startswith('<div id="item-table"')
    assert "Red shoe" in content
    assert "<nav" not in content
    assert "<select" not in content


def test_catalog_search_category_and_stock_filters_narrow_results(marketer_client):
    ItemFactory(external_id="sku-1", title="Red shoe", category="shoes")
    ItemFactory(external_id="sku-2", title="Red hat", category="hats", in_stock=False)
    ItemFactory(external_id="sku-3", title="Blue shoe", category="shoes")
    url = reverse("recommender:item-list")
    assert _ids(marketer_client.get(url, {"q": "red"})) == ["sku-1", "sku-2"]
    assert _ids(marketer_client.get(url, {"q": "sku-3"})) == ["sku-3"]
    assert _ids(marketer_client.get(url, {"category": "shoes"})) == ["sku-1", "sku-3"]
    assert _ids(marketer_client.get(url, {"q": "red", "category": "hats"})) == ["sku-2"]
    assert _ids(marketer_client.get(url, {"in_stock": "true"})) == ["sku-1", "sku-3"]
    assert _ids(marketer_client.get(url, {"in_stock": "false"})) == ["sku-2"]
    assert _ids(marketer_client.get(url, {"q": "green"})) == []


def test_catalog_category_filter_lists_distinct_categories(marketer_client):
    ItemFactory(category="shoes")
    ItemFactory(category="shoes")
    ItemFactory(category="hats")
    ItemFactory(category="")
    response = marketer_client.get(reverse("recommender:item-list"))
    assert response.context["form"].fields["category"].choices == [
        ("", "All categories"),
        ("hats", "hats"),
        ("shoes", "shoes"),
    ]
    # an unknown category is a form error and is not applied
    response = marketer_client.get(reverse("recommender:item-list"), {"category": "boats"})
    assert len(_ids(response)) == 4


def test_catalog_empty_state(analyst_client):
    content = analyst_client.get(reverse("recommender:item-list")).content.decode()
    assert "No items in the catalog yet." in content


def test_catalog_paginates_by_50(marketer_client):
    ItemFactory.create_batch(55)
    url = reverse("recommender:item-list")
    assert len(_ids(marketer_client.get(url))) == 50
    second = marketer_client.get(url, {"page": 2}, headers=HTMX)
    assert "Page 2 of 2" in second.content.decode()
    assert 'rel="prev"' in second.content.decode()


@pytest.mark.parametrize("n", [1, 20])
def test_catalog_query_count_is_constant(marketer_client, django_assert_num_queries, n):
    ItemFactory.create_batch(n)
    # session, user, categories, count, page, can_edit groups
    with django_assert_num_queries(6):
        marketer_client.get(reverse("recommender:item-list"))


@pytest.mark.parametrize("client_fixture", ["marketer_client", "analyst_client"])
def test_recommendations_page_lists_model_versions_and_top_items(request, client_fixture):
    client = request.getfixturevalue(client_fixture)
    ItemFactory(external_id="sku-a", title="Alpha")
    ItemFactory(external_id="sku-b", title="Beta")
    active = ModelVersionFactory(
        is_active=True,
        n_items=3,
        n_interactions=12345,
        training_seconds=1.5,
        trained_at=dt.datetime(2025, 3, 4, 5, 6, tzinfo=dt.UTC),
        metrics={"precision@10": 0.123456, "coverage": 3},
        artifact={"item_ids": ["sku-b", "sku-a", "sku-gone"], "scores": [9.5, 4.25, 1.0]},
    )
    ModelVersionFactory(status="failed", error="no events", artifact={"item_ids": ["sku-a"]})
    response = client.get(reverse("recommender:modelversion-list"))
    assert response.status_code == 200
    content = response.content.decode()
    assert "<h1>Recommendations</h1>" in content
    assert response.context["top_items"] == [
        RankedItem(rank=1, external_id="sku-b", title="Beta", score=9.5),
        RankedItem(rank=2, external_id="sku-a", title="Alpha", score=4.25),
        RankedItem(rank=3, external_id="sku-gone", title="", score=1.0),
    ]
    assert "Most popular items" in content
    assert f'<b>Popularity</b> <span class="muted">#{active.pk}</span>' in content
    assert '<span class="badge good">active</span>' in content
    assert "12,345" in content
    assert "2025-03-04 05:06" in content
    assert '<li><span class="muted">coverage:</span> 3</li>' in content
    assert '<li><span class="muted">precision@10:</span> 0.1235</li>' in content
    assert "no events" in content
    assert ("/admin/recommender/modelversion/" in content) is (client_fixture == "marketer_client")


def test_top_items_are_cut_to_the_limit_in_the_database(db):
    ids = [f"sku-{i}" for i in range(30)]
    ModelVersionFactory(
        is_active=True, artifact={"item_ids": ids, "scores": [float(30 - i) for i in range(30)]}
    )
    top = modelversion_top_items(limit=10)
    assert [r.external_id for r in top] == ids[:10]
    assert [r.score for r in top] == [float(30 - i) for i in range(10)]


def test_recommendations_page_without_active_model(analyst_client):
    ModelVersionFactory(is_active=False, artifact={"item_ids": ["x"], "scores": [1.0]})
    response = analyst_client.get(reverse("recommender:modelversion-list"))
    assert response.context["top_items"] == []
    assert "No active popularity model yet." in response.content.decode()


def test_recommendations_filters_and_htmx_fragment(marketer_client):
    ModelVersionFactory(algorithm="popularity", status="ready")
    failed = ModelVersionFactory(algorithm="als", status="failed")
    url = reverse("recommender:modelversion-list")
    response = marketer_client.get(url, {"status": "failed"})
    assert [v.pk for v in response.context["page_obj"]] == [failed.pk]
    response = marketer_client.get(url, {"algorithm": "bpr"})
    assert list(response.context["page_obj"]) == []
    assert "No model versions match these filters." in response.content.decode()
    fragment = marketer_client.get(url, {"algorithm": "als"}, headers=HTMX).content.decode()
    assert fragment.lstrip().startswith('<div id="modelversion-table"')
    assert f"#{failed.pk}</span>" in fragment
    assert "<nav" not in fragment
    assert "popular items" not in fragment


@pytest.mark.parametrize("n", [1, 20])
def test_recommendations_query_count_is_constant(marketer_client, django_assert_num_queries, n):
    ItemFactory(external_id="sku-a")
    ModelVersionFactory(is_active=True, artifact={"item_ids": ["sku-a"], "scores": [1.0]})
    ModelVersionFactory.create_batch(n - 1, algorithm="als")
    # session, user, count, page, top-items head, item titles, metrics chart, served
    # versions, can_edit groups
    with django_assert_num_queries(9):
        marketer_client.get(reverse("recommender:modelversion-list"))
