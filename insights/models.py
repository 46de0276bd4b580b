"""Social listening: the brands and products we watch, the posts we ingest, the mentions
found in them, their sentiment, and the alerts raised when negative mentions spike.

The detection and scoring code is Django-free (insights/mentions.py, insights/sentiment.py);
these models only store what it found.
"""

from django.db import models
from django.db.models import Q

from marketing.common.models import TimeStampedModel


class BrandKind(models.TextChoices):
    BRAND = "brand", "Brand"
    PRODUCT = "product", "Product"


class Brand(TimeStampedModel):
    """A brand or product we listen for: our own, or a competitor's.

    A mention is any of `name`, `aliases`, `hashtags` (without "#") or `handles` (without "@")
    found in a post, also untagged and misspelled (see insights/mentions.py).
    """

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=16, choices=BrandKind.choices, default=BrandKind.BRAND)
    parent = models.ForeignKey(
        "self",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="products",
        help_text="The brand a product belongs to.",
    )
    aliases = models.JSONField(default=list, blank=True)
    hashtags = models.JSONField(default=list, blank=True)
    handles = models.JSONField(default=list, blank=True)
    is_own = models.BooleanField(default=True, help_text="Ours (else a competitor).")
    is_active = models.BooleanField(default=True)
    alert_emails = models.JSONField(
        default=list, blank=True, help_text="Who is emailed when negative mentions spike."
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SentimentLabel(models.TextChoices):
    POSITIVE = "positive", "Positive"
    NEUTRAL = "neutral", "Neutral"
    NEGATIVE = "negative", "Negative"


class Post(TimeStampedModel):
    """A public social-media post, unique by (source, external_id).

    `sentiment` is a score in [-1, 1] and `sentiment_label` its class, both set by the
    model named in `sentiment_model` when the post is scored.
    """

    source = models.CharField(max_length=32)
    external_id = models.CharField(max_length=128)
    author = models.CharField(max_length=200, blank=True)
    author_email = models.EmailField(blank=True)
    text = models.TextField()
    language = models.CharField(max_length=16, blank=True)
    url = models.URLField(max_length=1000, blank=True)
    posted_at = models.DateTimeField()
    likes = models.PositiveIntegerField(default=0)
    shares = models.PositiveIntegerField(default=0)
    comments = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(default=dict, blank=True, help_text="Other metrics as given.")
    customer = models.ForeignKey(
        "profiles.Customer",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="posts",
        help_text="The known customer who wrote it (matched by handle or email).",
    )
    sentiment = models.FloatField(null=True, blank=True)
    sentiment_label = models.CharField(max_length=16, choices=SentimentLabel.choices, blank=True)
    sentiment_model = models.CharField(max_length=64, blank=True)
    aspects = models.JSONField(default=list, blank=True, help_text="Aspect keywords found.")

    class Meta:
        ordering = ["-posted_at"]
        constraints = [
            models.UniqueConstraint(fields=["source", "external_id"], name="post_unique_source_id"),
        ]
        indexes = [
            models.Index(fields=["posted_at"], name="post_posted_at_idx"),
            models.Index(fields=["customer", "posted_at"], name="post_customer_posted_idx"),
        ]

    @property
    def engagement(self) -> int:
        return self.likes + self.shares + self.comments

    def __str__(self) -> str:
        return f"{self.source}:{self.external_id}"


class MatchType(models.TextChoices):
    NAME = "name", "Name or alias"
    HASHTAG = "hashtag", "Hashtag"
    HANDLE = "handle", "Handle"
    FUZZY = "fuzzy", "Fuzzy (misspelled)"


class Mention(models.Model):
    """A brand or product found in a post, with the matched span of the post's text.

    `posted_at` and `sentiment_label` are copied from the post so that brand-health
    aggregates read one table with one index.
    """

    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="mentions")
    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="mentions")
    start = models.PositiveIntegerField()
    end = models.PositiveIntegerField()
    matched_text = models.CharField(max_length=200)
    match_type = models.CharField(max_length=16, choices=MatchType.choices)
    similarity = models.FloatField(default=1.0)
    posted_at = models.DateTimeField()
    sentiment = models.FloatField(null=True, blank=True)
    sentiment_label = models.CharField(max_length=16, choices=SentimentLabel.choices, blank=True)

    class Meta:
        ordering = ["post", "start"]
        constraints = [
            models.UniqueConstraint(fields=["post", "brand", "start"], name="mention_unique_span"),
            models.CheckConstraint(condition=Q(end__gt=models.F("start")), name="mention_span"),
        ]
        indexes = [
            models.Index(fields=["brand", "posted_at"], name="mention_brand_posted_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.brand} in {self.post} [{self.start}:{self.end}]"


class SentimentModel(TimeStampedModel):
    """A sentiment model we can score posts with: the VADER lexicon, or a scikit-learn
    pipeline trained on labelled posts (pickled in `artifact`). The active one scores new
    posts; `metrics` holds its accuracy and macro-F1 on held-out labelled posts.
    """

    name = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=16)
    artifact = models.BinaryField(null=True, blank=True, editable=False)
    metrics = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"], condition=Q(is_active=True), name="one_active_sentiment"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class AlertStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"


class BrandAlert(TimeStampedModel):
    """Negative mentions of a brand spiked above their usual level in one window."""

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="alerts")
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    negative_count = models.PositiveIntegerField()
    baseline = models.FloatField(help_text="Usual negative mentions per window.")
    threshold = models.FloatField()
    status = models.CharField(max_length=16, choices=AlertStatus.choices, default=AlertStatus.OPEN)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-window_end"]
        constraints = [
            models.UniqueConstraint(fields=["brand", "window_start"], name="alert_unique_window"),
        ]

    def __str__(self) -> str:
        return f"{self.brand}: {self.negative_count} negative mentions"
