from django.db import models
from django.db.models import Q

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


class Offer(TimeStampedModel):
    """Something a storefront can show a customer: a discount, a bundle, a content slot."""

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    item = models.ForeignKey(
        Item, on_delete=models.SET_NULL, null=True, blank=True, related_name="offers"
    )
    discount_percent = models.DecimalField(max_digits=5, decimal_places=2, default=0)
    is_active = models.BooleanField(default=True)
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(discount_percent__gte=0) & Q(discount_percent__lte=100),
                name="offer_discount_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name


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
