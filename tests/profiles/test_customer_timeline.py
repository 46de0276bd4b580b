import datetime as dt

from django.urls import reverse
from django.utils import timezone

from profiles.selectors import customer_timeline, event_list_for_customer
from tests.insights.factories import BrandFactory, PostFactory
from tests.profiles.factories import CustomerFactory, EventFactory


def test_timeline_interleaves_events_and_the_customers_posts_newest_first(db):
    customer = CustomerFactory()
    now = timezone.now()
    EventFactory(customer=customer, type="view", occurred_at=now - dt.timedelta(hours=3))
    EventFactory(customer=customer, type="purchase", occurred_at=now - dt.timedelta(hours=1))
    post = PostFactory(customer=customer, posted_at=now - dt.timedelta(hours=2))
    PostFactory(posted_at=now - dt.timedelta(minutes=5))  # someone else's
    events = event_list_for_customer(customer_id=customer.pk)
    timeline = customer_timeline(customer=customer, events=events, limit=3)
    assert [(e.event.type if e.event else "post") for e in timeline] == [
        "purchase",
        "post",
        "view",
    ]
    assert timeline[1].post == post
    assert len(customer_timeline(customer=customer, events=events, limit=2)) == 2


def test_customer_page_shows_their_posts_with_brand_and_sentiment(analyst_client):
    customer = CustomerFactory()
    acme = BrandFactory(name="Acme")
    now = timezone.now()
    EventFactory(customer=customer, type="purchase", occurred_at=now - dt.timedelta(hours=1))
    PostFactory(
        customer=customer,
        brands=[acme],
        text="Acme boots fell apart after a week",
        sentiment=-0.7,
        posted_at=now - dt.timedelta(minutes=30),
    )
    PostFactory(text="Not theirs", posted_at=now)
    response = analyst_client.get(reverse("profiles:customer-detail", args=[customer.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Last 1 events and 1 social post" in page
    assert "Acme boots fell apart after a week" in page
    assert '<span class="bad">negative</span>' in page
    assert f'href="{reverse("insights:brand-health", args=[acme.pk])}"' in page
    assert f'href="{reverse("insights:post-list")}?customer={customer.pk}"' in page
    assert "Not theirs" not in page
    assert page.index("Acme boots") < page.index("type-purchase")
