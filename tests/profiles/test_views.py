import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.profiles.factories import (
    ChannelEndpointFactory,
    CustomerFactory,
    EventFactory,
    SegmentFactory,
)

HTMX = {"HX-Request": "true"}


def _ids(response) -> list[str]:
    return [c.external_id for c in response.context["page_obj"]]


@pytest.mark.parametrize("client_fixture", ["marketer_client", "analyst_client"])
def test_customer_list_shows_customers(request, client_fixture):
    client = request.getfixturevalue(client_fixture)
    customer = CustomerFactory(
        external_id="shop-42", first_name="Grace", last_name="Hopper", email="grace@example.com"
    )
    response = client.get(reverse("profiles:customer-list"))
    assert response.status_code == 200
    content = response.content.decode()
    assert "<h1>Customers</h1>" in content
    assert f'<a href="/customers/{customer.pk}/">shop-42</a>' in content
    assert "Grace Hopper" in content
    assert "grace@example.com" in content
    assert response["Vary"] == "HX-Request, Cookie"


def test_customer_list_edit_links_only_for_editors(marketer_client, analyst, client):
    customer = CustomerFactory()
    change_url = reverse("admin:profiles_customer_change", args=[customer.pk])
    assert change_url in marketer_client.get(reverse("profiles:customer-list")).content.decode()
    client.force_login(analyst)
    content = client.get(reverse("profiles:customer-list")).content.decode()
    assert customer.external_id in content
    assert "/admin/profiles/" not in content
    assert "Add customer" not in content


def test_customer_list_htmx_returns_only_the_table(marketer_client):
    CustomerFactory(external_id="shop-1")
    response = marketer_client.get(reverse("profiles:customer-list"), headers=HTMX)
    content = response.content.decode()
    assert response.status_code == 200
    assert content.lstrip().startswith('<div id="customer-table"')
    assert "shop-1" in content
    assert "<nav" not in content
    assert "<html" not in content
    assert 'name="q"' not in content


def test_customer_list_history_restore_gets_the_full_page(marketer_client):
    response = marketer_client.get(
        reverse("profiles:customer-list"),
        headers={**HTMX, "HX-History-Restore-Request": "true"},
    )
    assert b"<nav" in response.content


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("shop-2", ["shop-2"]),
        ("LINUS@", ["shop-3"]),
        ("grace", ["shop-2"]),
        ("grace hopper", ["shop-2"]),
        ("torvalds", ["shop-3"]),
        ("shop", ["shop-3", "shop-2", "shop-1"]),
        ("nobody", []),
    ],
)
def test_customer_list_search(marketer_client, q, expected):
    CustomerFactory(external_id="shop-1", first_name="Ada", last_name="Lovelace", email="")
    CustomerFactory(
        external_id="shop-2", first_name="Grace", last_name="Hopper", email="g@example.com"
    )
    CustomerFactory(
        external_id="shop-3", first_name="Linus", last_name="Torvalds", email="linus@example.org"
    )
    response = marketer_client.get(reverse("profiles:customer-list"), {"q": q})
    assert _ids(response) == expected


def test_customer_list_filters_country_and_anonymous(marketer_client):
    CustomerFactory(external_id="de-known", country="DE")
    CustomerFactory(external_id="de-anon", country="DE", is_anonymous=True)
    CustomerFactory(external_id="fr-known", country="FR")
    url = reverse("profiles:customer-list")
    assert _ids(marketer_client.get(url, {"country": "de"})) == ["de-anon", "de-known"]
    assert _ids(marketer_client.get(url, {"anonymous": "true"})) == ["de-anon"]
    assert _ids(marketer_client.get(url, {"country": "DE", "anonymous": "false"})) == ["de-known"]
    assert _ids(marketer_client.get(url, {"anonymous": ""})) == ["fr-known", "de-anon", "de-known"]


def test_customer_list_invalid_filter_is_ignored(marketer_client):
    CustomerFactory(external_id="de-known", country="DE")
    response = marketer_client.get(reverse("profiles:customer-list"), {"country": "GERMANY"})
    assert response.status_code == 200
    assert _ids(response) == ["de-known"]
    assert response.context["form"].errors["country"]


def test_customer_list_paginates_by_50_with_htmx_links(marketer_client):
    CustomerFactory.create_batch(51, country="IT")
    url = reverse("profiles:customer-list")
    first = marketer_client.get(url, {"country": "IT"})
    assert len(_ids(first)) == 50
    content = first.content.decode()
    assert "Page 1 of 2" in content
    assert "51 customers" in content
    assert 'hx-get="?country=IT&amp;page=2"' in content
    assert 'hx-target="#customer-table"' in content
    second = marketer_client.get(url, {"country": "IT", "page": "2"}, headers=HTMX)
    assert len(_ids(second)) == 1
    assert "Page 2 of 2" in second.content.decode()
    assert _ids(marketer_client.get(url, {"country": "IT", "page": "99"})) == _ids(second)


def test_customer_list_empty_states(marketer_client):
    url = reverse("profiles:customer-list")
    assert "No customers yet." in marketer_client.get(url).content.decode()
    CustomerFactory(country="DE")
    content = marketer_client.get(url, {"country": "FR"}).content.decode()
    assert "No customers match these filters." in content
    assert "<table" not in content


@pytest.mark.parametrize("n", [1, 20])
def test_customer_list_query_count_is_constant(marketer_client, django_assert_num_queries, n):
    CustomerFactory.create_batch(n)
    # session, user, count, page, can_edit groups
    with django_assert_num_queries(5):
        response = marketer_client.get(reverse("profiles:customer-list"))
    assert len(_ids(response)) == n


def test_customer_detail_shows_attributes_endpoints_and_last_50_events(analyst_client):
    customer = CustomerFactory(
        external_id="shop-7", first_name="Ada", last_name="Lovelace", attributes={"tier": "gold"}
    )
    ChannelEndpointFactory(customer=customer, channel="email", address="ada@example.com")
    ChannelEndpointFactory(customer=customer, channel="sms", address="+4915550001", opted_out=True)
    now = timezone.now()
    for i in range(52):
        EventFactory(
            customer=customer,
            type="purchase" if i == 0 else "view",
            item_external_id=f"sku-{i:03d}",
            occurred_at=now - dt.timedelta(minutes=i),
        )
    EventFactory(item_external_id="someone-elses")
    response = analyst_client.get(reverse("profiles:customer-detail", args=[customer.pk]))
    assert response.status_code == 200
    content = response.content.decode()
    assert "Ada Lovelace" in content
    assert "<dt>tier</dt><dd>gold</dd>" in content
    assert "ada@example.com" in content
    assert "+4915550001" in content
    assert '<span class="bad">opted out</span>' in content
    assert "Last 50 events" in content
    events = response.context["events"]
    assert [e.item_external_id for e in events] == [f"sku-{i:03d}" for i in range(50)]
    assert "sku-050" not in content
    assert "someone-elses" not in content
    assert '<span class="badge type-purchase">purchase</span>' in content
    assert "/admin/" not in content


def test_customer_detail_query_count(marketer_client, django_assert_num_queries):
    customer = CustomerFactory()
    for channel in ("email", "sms", "push"):
        ChannelEndpointFactory(customer=customer, channel=channel, address=f"{channel}-address")
    EventFactory.create_batch(5, customer=customer)
    for i in range(4):
        SegmentFactory(
            name=f"Segment {i}",
            rules={"op": "and", "conditions": [{"kind": "event", "event_type": "view"}]},
        )
    # session, user, customer, endpoints, events, social posts, features, segments, their
    # evaluation, consents, consent trail, can_edit groups
    with django_assert_num_queries(12):
        response = marketer_client.get(reverse("profiles:customer-detail", args=[customer.pk]))
    assert response.status_code == 200
    assert len(re.findall(r'href="/segments/\d+/"', response.content.decode())) == 4


def test_customer_detail_404_for_unknown_customer(marketer_client):
    response = marketer_client.get(reverse("profiles:customer-detail", args=[999999]))
    assert response.status_code == 404


def test_customer_detail_requires_login(client, db):
    customer = CustomerFactory()
    url = reverse("profiles:customer-detail", args=[customer.pk])
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


@pytest.mark.parametrize("client_fixture", ["marketer_client", "analyst_client"])
def test_segment_list_shows_segments(request, client_fixture):
    client = request.getfixturevalue(client_fixture)
    SegmentFactory(
        name="VIP buyers",
        kind="model",
        member_count=1234,
        counted_at=timezone.now(),
        description="Top spenders",
    )
    response = client.get(reverse("profiles:segment-list"))
    content = response.content.decode()
    assert response.status_code == 200
    assert "<h1>Segments</h1>" in content
    assert "<b>VIP buyers</b>" in content
    assert "Machine-learned" in content
    assert "1,234" in content
    assert "Top spenders" in content
    assert ('href="/segments/new/"' in content) is (client_fixture == "marketer_client")


def test_segment_list_search_and_kind_filter_narrow_results(marketer_client):
    SegmentFactory(name="VIP buyers", kind="rules", description="")
    SegmentFactory(name="Lapsed", kind="rules", description="No purchase for 90 days")
    SegmentFactory(name="Imported leads", kind="imported", description="")
    url = reverse("profiles:segment-list")

    def names(params):
        response = marketer_client.get(url, params)
        return [s.name for s in response.context["page_obj"]]

    assert names({"q": "vip"}) == ["VIP buyers"]
    assert names({"q": "purchase"}) == ["Lapsed"]
    assert names({"kind": "rules"}) == ["Lapsed", "VIP buyers"]
    assert names({"kind": "imported", "q": "vip"}) == []
    assert names({}) == ["Imported leads", "Lapsed", "VIP buyers"]


def test_segment_list_htmx_returns_only_the_table(analyst_client):
    SegmentFactory(name="VIP buyers")
    response = analyst_client.get(reverse("profiles:segment-list"), headers=HTMX)
    content = response.content.decode()
    assert content.lstrip().startswith('<div id="segment-table"')
    assert "VIP buyers" in content
    assert "<nav" not in content


def test_segment_list_empty_state(analyst_client):
    assert (
        "No segments yet." in analyst_client.get(reverse("profiles:segment-list")).content.decode()
    )


@pytest.mark.parametrize("n", [1, 20])
def test_segment_list_query_count_is_constant(marketer_client, django_assert_num_queries, n):
    SegmentFactory.create_batch(n)
    with django_assert_num_queries(5):
        marketer_client.get(reverse("profiles:segment-list"))
