from django.db import models

from marketing.common.models import TimeStampedModel


class Brand(TimeStampedModel):
    """A brand we listen for: its own, or a competitor's."""

    name = models.CharField(max_length=200, unique=True)
    keywords = models.JSONField(default=list, blank=True)
    is_own = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Post(TimeStampedModel):
    """A public social-media post; `sentiment` is in [-1, 1] once scored."""

    source = models.CharField(max_length=32)
    external_id = models.CharField(max_length=128)
    author = models.CharField(max_length=200, blank=True)
    text = models.TextField()
    posted_at = models.DateTimeField()
    brand = models.ForeignKey(
        Brand, on_delete=models.SET_NULL, null=True, blank=True, related_name="posts"
    )
    sentiment = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-posted_at"]
        constraints = [
            models.UniqueConstraint(fields=["source", "external_id"], name="post_unique_source_id"),
        ]

    def __str__(self) -> str:
        return f"{self.source}:{self.external_id}"
