import datetime as dt

import factory
from django.utils import timezone

from profiles.models import ChannelEndpoint, Customer, Event, Segment


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    external_id = factory.Sequence(lambda n: f"cust-{n:05d}")
    email = factory.LazyAttribute(lambda o: f"{o.external_id}@example.com")
    first_name = "Ada"
    last_name = factory.Sequence(lambda n: f"Lovelace{n}")
    country = "DE"
    is_anonymous = False


class ChannelEndpointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ChannelEndpoint

    customer = factory.SubFactory(CustomerFactory)
    channel = "email"
    address = factory.LazyAttribute(lambda o: o.customer.email or "someone@example.com")


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    customer = factory.SubFactory(CustomerFactory)
    type = "view"
    item_external_id = "sku-1"
    channel = "web"
    occurred_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(hours=1))


class SegmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Segment

    name = factory.Sequence(lambda n: f"Segment {n}")
    description = "Customers who bought recently"
    kind = "rules"
    member_count = 0
