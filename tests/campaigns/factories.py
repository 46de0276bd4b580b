import factory
from django.utils import timezone

from campaigns.models import Campaign, MessageTemplate
from profiles.models import ChannelEndpoint, Consent, Customer
from tests.profiles.factories import CustomerFactory, SegmentFactory


class MessageTemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MessageTemplate

    name = factory.Sequence(lambda n: f"Template {n}")
    channel = "email"
    subject = "Hello"
    body = "Hi {{ customer.first_name }}"


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign

    name = factory.Sequence(lambda n: f"Campaign {n}")
    channel = "email"
    status = "draft"
    template = factory.SubFactory(MessageTemplateFactory)
    segment = factory.SubFactory(SegmentFactory)


def emailable_customer(*, consent: bool = True, **fields) -> Customer:
    """A customer with an email endpoint and marketing-email consent: dispatch sends to them
    (without `consent`, it skips them)."""
    customer = CustomerFactory(**fields)
    ChannelEndpoint.objects.create(customer=customer, channel="email", address=customer.email)
    if not consent:
        return customer
    Consent.objects.create(
        customer=customer,
        purpose="marketing_email",
        granted=True,
        source="api",
        changed_at=timezone.now(),
    )
    return customer


def emailable_customers(n: int, *, prefix: str) -> list[int]:
    """`n` such customers in three bulk inserts (for audiences of thousands); their pks."""
    customers = Customer.objects.bulk_create(
        Customer(external_id=f"{prefix}-{i}", email=f"{prefix}-{i}@example.com") for i in range(n)
    )
    ChannelEndpoint.objects.bulk_create(
        ChannelEndpoint(customer=c, channel="email", address=c.email) for c in customers
    )
    now = timezone.now()
    Consent.objects.bulk_create(
        Consent(customer=c, purpose="marketing_email", granted=True, source="api", changed_at=now)
        for c in customers
    )
    return [c.pk for c in customers]
