import factory

from campaigns.models import Campaign, MessageTemplate
from tests.profiles.factories import SegmentFactory


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
