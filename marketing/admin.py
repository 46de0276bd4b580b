from django.contrib import admin
from rest_framework_api_key.admin import APIKeyModelAdmin

from marketing.models import ApiKey, Job


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
