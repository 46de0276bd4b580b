"""Admin for clustering runs (imported by profiles/admin.py): read-only, the runs are made
from the Find clusters page."""

from django.contrib import admin

from profiles.models import ClusterAssignment, ClusterRun


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ClusterRun)
class ClusterRunAdmin(ReadOnlyAdmin):
    list_display = ["pk", "created_at", "created_by", "customers", "k", "silhouette"]
    list_select_related = ["created_by"]
    raw_id_fields = ["job"]


@admin.register(ClusterAssignment)
class ClusterAssignmentAdmin(ReadOnlyAdmin):
    list_display = ["run", "customer", "cluster", "distance"]
    list_filter = ["run"]
    search_fields = ["=customer__external_id"]
    raw_id_fields = ["run", "customer"]
    list_select_related = ["customer"]
    show_full_result_count = False
