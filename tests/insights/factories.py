import datetime as dt

import factory
from django.utils import timezone

from insights.models import Brand, Post


class BrandFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Brand

    name = factory.Sequence(lambda n: f"Brand {n}")
    keywords = factory.LazyFunction(list)


class PostFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Post

    source = "mastodon"
    external_id = factory.Sequence(lambda n: f"post-{n}")
    author = factory.Sequence(lambda n: f"author{n}")
    text = "Nice shoes"
    posted_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(hours=2))
    brand = factory.SubFactory(BrandFactory)
    sentiment = 0.5
