import datetime as dt

import pytest
from django.urls import reverse

from marketing.models import Job
from recommender.models import Offer
from recommender.offers_learning import EVALUATION_JOB_KIND
from recommender.offers_log import offer_log_process, reward_record
from recommender.offers_serving import offers_rank
from tests.profiles.factories import SegmentFactory
from tests.recommender.factories import ItemFactory, OfferFactory
from tests.recommender.offers_helpers import profiled_customer

HTMX = {"HX-Request": "true"}
LIST = reverse("recommender:offer-list")
CREATE = reverse("recommender:offer-create")


@pytest.mark.parametrize("client_fixture", ["marketer_client", "analyst_client"])
def test_offer_list_shows_offers_and_the_learning_section(request, client_fixture):
    client = request.getfixturevalue(client_fixture)
    item = ItemFactory(external_id="sku-red", title="Red shoe")
    offer = OfferFactory(
        name="Summer sale",
        title="15% off red shoes",
        item=item,
        discount_percent="15.00",
        priority=7,
        starts_at=dt.datetime(2025, 6, 1, tzinfo=dt.UTC),
        ends_at=dt.datetime(2025, 8, 31, tzinfo=dt.UTC),
    )
    OfferFactory(name="Free shipping", type="free_shipping", item=None, status="paused")
    OfferFactory(name="Always")
    for _ in range(3):
        result = offers_rank(customer_external_id="c", context={})
        reward_record(event_id=result.event_id, reward=1.0)
    offer_log_process()

    response = client.get(LIST)

    content = response.content.decode()
    assert response.status_code == 200
    assert "<h1>Offers</h1>" in content
    assert f'<a href="/offers/{offer.pk}/"><b>Summer sale</b></a>' in content
    assert "15% off red shoes" in content
    assert "Red shoe" in content
    assert "2025-06-01 → 2025-08-31" in content
    assert '<span class="muted">paused</span>' in content
    assert "<h2>Learning</h2>" in content
    assert "Exploration: 20% of first slots drawn at random" in content
    chart = response.context["reward_chart_json"]
    assert '"name": "Learned policy"' in chart
    assert ("Run offline evaluation" in content) is (client_fixture == "marketer_client")
    assert (f"/offers/{offer.pk}/edit/" in content) is (client_fixture == "marketer_client")


def test_offer_list_search_and_filters(marketer_client):
    OfferFactory(name="Summer sale", item=ItemFactory(title="Red shoe"))
    OfferFactory(name="Winter sale", status="paused", type="bundle", item=ItemFactory(title="Hat"))

    def names(params):
        return [o.name for o in marketer_client.get(LIST, params).context["page_obj"]]

    assert names({"q": "summer"}) == ["Summer sale"]
    assert names({"q": "hat"}) == ["Winter sale"]
    assert names({"status": "paused"}) == ["Winter sale"]
    assert names({"type": "bundle"}) == ["Winter sale"]
    assert names({"q": "sale", "status": "active"}) == ["Summer sale"]


def test_offer_list_htmx_returns_only_the_table(marketer_client):
    OfferFactory(name="Summer sale")
    content = marketer_client.get(LIST, headers=HTMX).content.decode()
    assert content.lstrip().startswith('<div id="offer-table"')
    assert "Summer sale" in content
    assert "Learning" not in content


@pytest.mark.parametrize("n", [1, 20])
def test_offer_list_query_count_is_constant(marketer_client, django_assert_num_queries, n):
    OfferFactory.create_batch(n)
    # session, user, count, page (item and segment joined), snapshot, latest evaluation,
    # reward timeline, can_edit groups
    with django_assert_num_queries(8):
        marketer_client.get(LIST)


def _form(**changes):
    data = {
        "name": "Spring",
        "title": "Spring deals",
        "description": "Everything green",
        "image_url": "https://img.example.com/spring.png",
        "deep_link": "shop://spring",
        "type": "discount",
        "status": "active",
        "discount_percent": "12.5",
        "item_id": "sku-1",
        "extra_item_ids": "sku-2, sku-3",
        "channels": ["web", "app"],
        "placements": "home_banner, cart",
        "priority": "3",
        "max_impressions": "1000",
        "max_impressions_per_customer": "3",
        "max_redemptions": "",
        "max_redemptions_per_customer": "1",
        "starts_at": "2026-03-01T00:00",
        "ends_at": "2026-04-01T00:00",
        "segment": "",
    }
    data.update(changes)
    return data


def test_create_offer_with_eligibility_and_caps(marketer_client):
    items = [ItemFactory(external_id=f"sku-{i}") for i in (1, 2, 3)]
    segment = SegmentFactory(name="VIP")

    response = marketer_client.post(CREATE, _form(segment=str(segment.pk)), headers=HTMX)

    offer = Offer.objects.get()
    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("recommender:offer-detail", args=[offer.pk])
    assert (offer.name, offer.title, offer.type, offer.status) == (
        "Spring", "Spring deals", "discount", "active",
    )  # fmt: skip
    assert offer.item == items[0]
    assert set(offer.items.all()) == set(items)
    assert offer.channels == ["web", "app"]
    assert offer.placements == ["home_banner", "cart"]
    assert offer.segment == segment
    assert (offer.max_impressions, offer.max_impressions_per_customer) == (1000, 3)
    assert (offer.max_redemptions, offer.max_redemptions_per_customer) == (None, 1)
    assert offer.priority == 3


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"discount_percent": "0"}, "discount_percent", "A discount offer needs a discount."),
        ({"ends_at": "2026-02-01T00:00"}, None, "The offer must end after it starts."),
        ({"item_id": "sku-404"}, "item_id", "No catalog item with id sku-404."),
        ({"extra_item_ids": "sku-2, nope"}, "extra_item_ids", "No catalog item with id nope."),
        ({"image_url": "not a url"}, "image_url", "Enter a valid URL."),
        ({"name": ""}, "name", "This field is required."),
        ({"type": "coupon"}, "type", "Select a valid choice."),
    ],
)
def test_invalid_offers_are_form_errors(marketer_client, changes, field, message):
    for i in (1, 2, 3):
        ItemFactory(external_id=f"sku-{i}")
    response = marketer_client.post(CREATE, _form(**changes), headers=HTMX)
    assert response.status_code == 200
    form = response.context["form"]
    errors = form.errors.get(field or "__all__")
    assert errors
    assert any(message in e for e in errors)
    assert response.content.decode().lstrip().startswith('<form id="offer-editor"')
    assert Offer.objects.count() == 0


def test_edit_offer(marketer_client):
    ItemFactory(external_id="sku-1")
    offer = OfferFactory(name="Old", item=None, type="content", discount_percent="0")
    url = reverse("recommender:offer-edit", args=[offer.pk])
    page = marketer_client.get(url)
    assert page.status_code == 200
    response = marketer_client.post(url, _form(name="New", extra_item_ids="", channels=[]))
    assert response.status_code == 302
    offer.refresh_from_db()
    assert (offer.name, offer.type, offer.channels) == ("New", "discount", [])
    assert [i.external_id for i in offer.items.all()] == ["sku-1"]


def test_analysts_cannot_create_or_edit(analyst_client):
    offer = OfferFactory(name="Keep")
    assert analyst_client.get(CREATE).status_code == 403
    assert analyst_client.post(CREATE, _form()).status_code == 403
    edit = reverse("recommender:offer-edit", args=[offer.pk])
    assert analyst_client.post(edit, _form(name="Changed")).status_code == 403
    assert Offer.objects.get().name == "Keep"


def test_offer_detail_shows_rules_and_results(analyst_client):
    segment = SegmentFactory(name="VIP")
    profiled_customer(external_id="c", segments=[segment])
    offer = OfferFactory(
        name="Bundle", type="bundle", segment=segment, placements=["cart"], max_impressions=10
    )
    result = offers_rank(customer_external_id="c", context={}, candidates=[offer.pk])
    reward_record(event_id=result.event_id, reward=1.0)
    offer_log_process()

    content = analyst_client.get(reverse("recommender:offer-detail", args=[offer.pk])).content
    text = content.decode()
    assert "<h1>Bundle</h1>" in text
    assert "VIP" in text
    assert "<dd>cart</dd>" in text
    assert "impressions 10 total" in text
    assert "Shown first 1 times, rewarded 1 times (mean reward 1.0000)." in text


def test_offer_detail_404(analyst_client):
    assert analyst_client.get(reverse("recommender:offer-detail", args=[999])).status_code == 404


def test_start_evaluation_from_the_page(marketer_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        response = marketer_client.post(reverse("recommender:offer-evaluation-start"), headers=HTMX)
    assert response.status_code == 200
    job = Job.objects.get(kind=EVALUATION_JOB_KIND)
    assert len(callbacks) == 1
    content = response.content.decode()
    assert content.lstrip().startswith('<section class="card" id="offer-learning">')
    assert f'id="job-{job.pk}"' in content
    assert 'hx-trigger="every 2s"' in content


def test_analysts_cannot_start_an_evaluation(analyst_client):
    response = analyst_client.post(reverse("recommender:offer-evaluation-start"))
    assert response.status_code == 403
    assert not Job.objects.exists()
