from django.contrib import admin

from recommender.models import Item, ModelVersion, Offer


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["external_id", "title", "category", "brand", "price", "in_stock", "created_at"]
    list_filter = ["in_stock", "category", "brand"]
    search_fields = ["=external_id", "title", "brand"]
    show_full_result_count = False


@admin.register(Offer)
class OfferAdmin(admin.ModelAdmin):
    list_display = ["name", "item", "discount_percent", "is_active", "starts_at", "ends_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "description", "=item__external_id"]
    raw_id_fields = ["item"]
    list_select_related = ["item"]


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
