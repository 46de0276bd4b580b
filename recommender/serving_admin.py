"""Admin for the precomputed serving lists (read-only: the training pipeline writes them).

Registered from RecommenderConfig.ready(); it can move into admin.py.
"""

from django.contrib import admin

from recommender.models import RecommendationList, SimilarItemList


class _ListAdmin(admin.ModelAdmin):
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
