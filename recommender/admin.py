from django.contrib import admin

from recommender.models import (
    Item,
    ModelVersion,
    Offer,
    OfferDecision,
    OfferPolicySnapshot,
    RecommendationList,
    SimilarItemList,
)


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["external_id", "title", "category", "brand", "price", "in_stock", "created_at"]
    list_filter = ["in_stock", "category", "brand"]
    search_fields = ["=external_id", "title", "brand"]
    show_full_result_count = False


@admin.register(Offer)
class OfferAdmin(admin.ModelAdmin):
    list_display = ["name", "type", "status", "item", "priority", "starts_at", "ends_at"]
    list_filter = ["status", "type"]
    search_fields = ["name", "title", "description", "=item__external_id"]
    raw_id_fields = ["item", "items", "segment"]
    list_select_related = ["item"]


@admin.register(OfferDecision)
class OfferDecisionAdmin(admin.ModelAdmin):
    """The decision log, read-only: the rank API and the flush task write it."""

    list_display = ["event_id", "created_at", "placement", "chosen_id", "mode", "reward"]
    list_filter = ["mode", "placement", "reward_source", "experiment"]
    search_fields = ["=event_id", "=chosen_id"]
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = [
        "pk",
        "algorithm",
        "status",
        "is_active",
        "n_items",
        "n_interactions",
        "training_seconds",
        "trained_at",
    ]
    list_filter = ["algorithm", "status", "is_active"]
    readonly_fields = ["metrics", "params", "trained_at", "training_seconds", "created_at"]
    exclude = ["artifact"]


class _ListAdmin(admin.ModelAdmin):
    """The precomputed serving lists, read-only: the training pipeline writes them."""

    list_select_related = ["model_version"]
    list_filter = ["model_version__algorithm"]
    readonly_fields = ["model_version", "item_ids", "scores"]
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(RecommendationList)
class RecommendationListAdmin(_ListAdmin):
    list_display = ["pk", "model_version", "customer"]
    raw_id_fields = ["customer"]
    search_fields = ["=customer__external_id"]
    list_select_related = ["model_version", "customer"]


@admin.register(SimilarItemList)
class SimilarItemListAdmin(_ListAdmin):
    list_display = ["pk", "model_version", "item"]
    raw_id_fields = ["item"]
    search_fields = ["=item__external_id"]
    list_select_related = ["model_version", "item"]


@admin.register(OfferPolicySnapshot)
class OfferPolicySnapshotAdmin(admin.ModelAdmin):
    """Read-only: the learner writes a snapshot of the ranker's state every few minutes (the
    state itself is binary; the list shows its version, settings and statistics)."""

    list_display = ["version", "created_at"]
    readonly_fields = ["version", "config", "stats", "created_at"]
    exclude = ["state"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
