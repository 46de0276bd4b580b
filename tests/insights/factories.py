import datetime as dt

import factory
from django.utils import timezone

from insights.models import Brand, Mention, Post


class BrandFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Brand

    name = factory.Sequence(lambda n: f"Brand {n}")
    aliases = factory.LazyFunction(list)


class PostFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Post

    source = "mastodon"
    external_id = factory.Sequence(lambda n: f"post-{n}")
    author = factory.Sequence(lambda n: f"author{n}")
    text = "Nice shoes"
    posted_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(hours=2))
    sentiment = 0.5
    sentiment_label = factory.LazyAttribute(
        lambda p: (
            ""
            if p.sentiment is None
            else "positive"
            if p.sentiment > 0.05
            else "negative"
            if p.sentiment < -0.05
            else "neutral"
        )
    )

    @factory.post_generation
    def brands(self, create, extracted, **kwargs):
        """PostFactory(brands=[acme]) adds a mention of each brand at the start of the text."""
        for brand in extracted or []:
            Mention.objects.create(
                post=self,
                brand=brand,
                start=0,
                end=max(1, min(4, len(self.text))),
                matched_text=self.text[:4],
                match_type="name",
                posted_at=self.posted_at,
                sentiment=self.sentiment,
                sentiment_label=self.sentiment_label,
            )


class MentionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Mention

    post = factory.SubFactory(PostFactory)
    brand = factory.SubFactory(BrandFactory)
    start = 0
    end = 4
    matched_text = factory.LazyAttribute(lambda m: m.post.text[m.start : m.end])
    match_type = "name"
    posted_at = factory.LazyAttribute(lambda m: m.post.posted_at)
    sentiment = factory.LazyAttribute(lambda m: m.post.sentiment)
    sentiment_label = factory.LazyAttribute(lambda m: m.post.sentiment_label)
