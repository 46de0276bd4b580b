from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q

from marketing.common.models import TimeStampedModel


class Item(TimeStampedModel):
    """A catalog item; `external_id` is the storefront's SKU or product id."""

    external_id = models.CharField(max_length=128, unique=True)
    title = models.CharField(max_length=300)
    description = models.TextField(blank=True, default="", db_default="")
    category = models.CharField(max_length=100, blank=True, db_index=True)
    brand = models.CharField(max_length=100, blank=True)
    price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    in_stock = models.BooleanField(default=True)
    image_url = models.URLField(max_length=500, blank=True)
    deep_link = models.CharField(max_length=500, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    # Inactive items stay in the catalog (history, reports) but are never recommended.
    is_active = models.BooleanField(default=True, db_default=True, db_index=True)

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title


class OfferType(models.TextChoices):
    DISCOUNT = "discount", "Discount"
    BUNDLE = "bundle", "Bundle"
    FREE_SHIPPING = "free_shipping", "Free shipping"
    CONTENT = "content", "Content"


class OfferStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    ARCHIVED = "archived", "Archived"


OFFER_CHANNELS = ("web", "app", "email", "sms", "push")


class Offer(TimeStampedModel):
    """Something a storefront can show a customer: a discount, a bundle, a content slot.

    `name` is the marketers' handle, `title` what the customer reads. Eligibility (status,
    dates, placements, channels, segment, linked items in stock, caps) is checked by the
    ranker on a cached catalog (recommender/offers_catalog.py), not per request in SQL.
    Empty `placements` / `channels` mean every placement / channel.
    """

    name = models.CharField(max_length=200)
    title = models.CharField(max_length=200, blank=True, default="", db_default="")
    description = models.TextField(blank=True)
    image_url = models.URLField(max_length=500, blank=True, default="", db_default="")
    deep_link = models.CharField(max_length=500, blank=True, default="", db_default="")
    type = models.CharField(
        max_length=16, choices=OfferType.choices, default=OfferType.DISCOUNT,
        db_default=OfferType.DISCOUNT,
    )  # fmt: skip
    status = models.CharField(
        max_length=16, choices=OfferStatus.choices, default=OfferStatus.ACTIVE,
        db_default=OfferStatus.ACTIVE,
    )  # fmt: skip
    item = models.ForeignKey(
        Item, on_delete=models.SET_NULL, null=True, blank=True, related_name="offers"
    )
    # Further linked items (a bundle's other parts); every linked item must be in stock.
    items = models.ManyToManyField(Item, blank=True, related_name="linked_offers")
    discount_percent = models.DecimalField(max_digits=5, decimal_places=2, default=0)
    segment = models.ForeignKey(
        "profiles.Segment",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="offers",
        help_text="Only members of this segment see the offer.",
    )
    channels = models.JSONField(default=list, blank=True, db_default=[])
    placements = models.JSONField(default=list, blank=True, db_default=[])
    priority = models.IntegerField(
        default=0, db_default=0, help_text="Higher first in the default (baseline) order."
    )
    max_impressions = models.PositiveIntegerField(null=True, blank=True)
    max_redemptions = models.PositiveIntegerField(null=True, blank=True)
    max_impressions_per_customer = models.PositiveIntegerField(null=True, blank=True)
    max_redemptions_per_customer = models.PositiveIntegerField(null=True, blank=True)
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(discount_percent__gte=0) & Q(discount_percent__lte=100),
                name="offer_discount_range",
            ),
            models.CheckConstraint(condition=Q(type__in=OfferType.values), name="offer_type_valid"),
            models.CheckConstraint(
                condition=Q(status__in=OfferStatus.values), name="offer_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(starts_at__isnull=True)
                | Q(ends_at__isnull=True)
                | Q(ends_at__gt=F("starts_at")),
                name="offer_ends_after_start",
                violation_error_message="The offer must end after it starts.",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        """The old boolean, kept for callers that switch an offer on or off."""
        return self.status == OfferStatus.ACTIVE

    @is_active.setter
    def is_active(self, value: bool) -> None:
        self.status = OfferStatus.ACTIVE if value else OfferStatus.PAUSED

    def clean(self) -> None:
        super().clean()
        errors = {}
        unknown = [c for c in self.channels or [] if c not in OFFER_CHANNELS]
        if not isinstance(self.channels, list) or unknown:
            errors["channels"] = f"Channels must be among {', '.join(OFFER_CHANNELS)}."
        placements = self.placements
        if not isinstance(placements, list) or not all(
            isinstance(p, str) and p and len(p) <= 64 for p in placements
        ):
            errors["placements"] = "Placements must be a list of names."
        if self.type == OfferType.DISCOUNT and not self.discount_percent:
            errors["discount_percent"] = "A discount offer needs a discount."
        if errors:
            raise ValidationError(errors)


class DecisionMode(models.TextChoices):
    LEARNED = "learned", "Learned policy"
    EXPLORE = "explore", "Exploration"
    BASELINE = "baseline", "Baseline (apprentice)"


class OfferDecision(models.Model):
    """One ranking served by `POST /api/v1/offers/rank`, with what the offline evaluation and
    the learner need: the raw inputs (context, customer features, candidates with their
    features), the top candidate and the probability it was drawn with, and the reward.

    Written in batches from a Redis buffer (offers_decisions_flush), keyed by `event_id`
    so a repeated flush inserts nothing. `learned_version` is the policy version whose state
    includes this reward (see offers_learning).
    """

    event_id = models.UUIDField(unique=True)
    created_at = models.DateTimeField()
    # Erasing a customer erases their decisions. `customer_ref` is the id the storefront sent:
    # a first-time visitor has no profile yet when ranked, but their click creates one, and
    # the tracked-event rewards join on it.
    customer = models.ForeignKey(
        "profiles.Customer",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="offer_decisions",
    )
    customer_ref = models.CharField(max_length=128)
    placement = models.CharField(max_length=64, blank=True)
    context = models.JSONField(default=dict)
    customer_features = models.JSONField(default=dict)
    candidates = models.JSONField(default=list)  # [{"id", "features"}], in ranking input order
    ranking = models.JSONField(default=list)  # ids returned, best first
    chosen_id = models.CharField(max_length=128)
    chosen_index = models.PositiveSmallIntegerField()
    chosen_item = models.CharField(max_length=128, blank=True)  # the offer's item, for purchases
    probability = models.FloatField()
    mode = models.CharField(max_length=16, choices=DecisionMode.choices)
    model_version = models.PositiveBigIntegerField()
    reward = models.FloatField(null=True, blank=True)
    reward_source = models.CharField(max_length=16, blank=True)  # api, click, purchase, default
    rewarded_at = models.DateTimeField(null=True, blank=True)
    learned_version = models.PositiveBigIntegerField(null=True, blank=True)
    # The experiment the request named and the variant that ranked (blank: none, or the
    # customer was not in it). Columns, not context keys: every JSON field above is a
    # featurizer input, and a variant key there would become a feature the ranker learns.
    experiment = models.CharField(max_length=64, blank=True, default="")
    variant = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        indexes = [
            models.Index(fields=["created_at"], name="offerdecision_created"),
            models.Index(fields=["customer_ref", "created_at"], name="offerdecision_customer_time"),
            # The learner's queue: rewarded, not yet in the served state.
            models.Index(
                fields=["rewarded_at", "id"],
                name="offerdecision_to_learn",
                condition=Q(reward__isnull=False, learned_version__isnull=True),
            ),
            # Stamped rows newer than a restored state (see offers_learning).
            models.Index(
                fields=["learned_version"],
                name="offerdecision_learned",
                condition=Q(learned_version__isnull=False),
            ),
            # The settler's queue: still waiting for a reward.
            models.Index(
                fields=["created_at"],
                name="offerdecision_unrewarded",
                condition=Q(reward__isnull=True),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(mode__in=DecisionMode.values), name="offerdecision_mode_valid"
            ),
            models.CheckConstraint(
                condition=Q(probability__gt=0) & Q(probability__lte=1),
                name="offerdecision_probability_range",
            ),
            models.CheckConstraint(
                condition=Q(reward__isnull=True) | (Q(reward__gte=0) & Q(reward__lte=1)),
                name="offerdecision_reward_range",
            ),
        ]

    def __str__(self) -> str:
        return str(self.event_id)


class OfferPolicySnapshot(models.Model):
    """A periodic copy of the ranker's state (the served copy lives in Redis), so a flushed
    Redis restarts from the last snapshot instead of from nothing."""

    version = models.PositiveBigIntegerField(unique=True)
    state = models.BinaryField()
    config = models.JSONField(default=dict)
    stats = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]

    def __str__(self) -> str:
        return f"policy v{self.version}"


class Algorithm(models.TextChoices):
    POPULARITY = "popularity", "Popularity"
    ALS = "als", "Implicit ALS"
    BPR = "bpr", "Implicit BPR"
    ITEM_ITEM = "item_item", "Item-item"
    CONTENT = "content", "Content-based"
    EASE = "ease", "EASE"
    HYBRID = "hybrid", "Hybrid"


class ModelStatus(models.TextChoices):
    TRAINING = "training", "Training"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class ModelVersion(TimeStampedModel):
    """One trained model: its parameters, its measured quality and the artifact it serves."""

    algorithm = models.CharField(max_length=32, choices=Algorithm.choices)
    status = models.CharField(
        max_length=16, choices=ModelStatus.choices, default=ModelStatus.TRAINING
    )
    is_active = models.BooleanField(default=False)
    params = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    n_users = models.PositiveIntegerField(default=0)
    n_items = models.PositiveIntegerField(default=0)
    n_interactions = models.PositiveBigIntegerField(default=0)
    training_seconds = models.FloatField(null=True, blank=True)
    trained_at = models.DateTimeField(null=True, blank=True)
    artifact = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=ModelStatus.values), name="modelversion_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(algorithm__in=Algorithm.values), name="modelversion_algorithm_valid"
            ),
            models.UniqueConstraint(
                fields=["algorithm"],
                condition=Q(is_active=True),
                name="modelversion_one_active_per_algorithm",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_algorithm_display()} #{self.pk}"


MAX_LIST_LENGTH = 100


class RecommendationList(models.Model):
    """One customer's precomputed recommendations from one model version (best first).

    Keyed by (version, customer) so a retraining writes new rows beside the served ones and
    activation switches atomically; old versions' rows go when the version is deleted.
    """

    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="recommendation_lists"
    )
    customer = models.ForeignKey(
        "profiles.Customer", on_delete=models.CASCADE, related_name="recommendation_lists"
    )
    item_ids = models.JSONField(default=list)
    scores = models.JSONField(default=list)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["model_version", "customer"], name="recommendationlist_one_per_customer"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model_version_id}/{self.customer_id}"


class SimilarItemList(models.Model):
    """One item's precomputed related items from one model version (best first)."""

    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="similar_lists"
    )
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="similar_lists")
    item_ids = models.JSONField(default=list)
    scores = models.JSONField(default=list)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["model_version", "item"], name="similaritemlist_one_per_item"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model_version_id}/{self.item_id}"
