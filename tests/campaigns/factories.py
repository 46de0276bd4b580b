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


def emailable_customer(**fields) -> Customer:
    """A customer with an email endpoint and marketing-email consent: dispatch sends to them."""
    customer = CustomerFactory(**fields)
    ChannelEndpoint.objects.create(customer=customer, channel="email", address=customer.email)
    Consent.objects.create(
        customer=customer,
        purpose="marketing_email",
        granted=True,
        source="api",
        changed_at=timezone.now(),
    )
    return customer
