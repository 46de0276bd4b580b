from django.contrib import admin
from rest_framework_api_key.admin import APIKeyModelAdmin

from marketing.models import ApiKey, ImportFile, Job, MetricRollup, RollupFlush


@admin.register(ApiKey)
class ApiKeyAdmin(APIKeyModelAdmin):
    list_display = (  # type: ignore[assignment]
        *APIKeyModelAdmin.list_display,
        "scopes",
        "rate_limit",
        "last_used_at",
    )


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = [
        "pk",
        "kind",
        "status",
        "done",
        "total",
        "created_by",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", "kind"]
    search_fields = ["kind", "message", "error"]
    readonly_fields = ["created_at", "started_at", "finished_at"]


@admin.register(ImportFile)
class ImportFileAdmin(admin.ModelAdmin):
    list_display = [
        "pk",
        "original_name",
        "kind",
        "status",
        "rows",
        "imported",
        "unchanged",
        "rejected",
        "created_by",
        "created_at",
    ]
    list_filter = ["kind", "status"]
    search_fields = ["original_name", "sha256", "error"]
    raw_id_fields = ["job"]
    list_select_related = ["created_by"]
    readonly_fields = ["created_at", "finished_at"]


@admin.register(MetricRollup)
class MetricRollupAdmin(admin.ModelAdmin):
    """Read-only: the flush task owns these rows (a hand edit would be added to, not kept)."""

    list_display = ["grain", "bucket", "metric", "key", "value"]
    list_filter = ["grain", "metric"]
    search_fields = ["key"]
    date_hierarchy = "bucket"
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(RollupFlush)
class RollupFlushAdmin(admin.ModelAdmin):
    list_display = ["token", "flushed_at"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
