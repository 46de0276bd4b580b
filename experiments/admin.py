from django.contrib import admin

from experiments.models import AllocationChange, Experiment, Exposure, SequentialLook, Variant


class VariantInline(admin.TabularInline):
    model = Variant
    extra = 0
    readonly_fields = ["allocation_weight"]


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "key",
        "kind",
        "allocation",
        "status",
        "metric_event_type",
        "started_at",
        "stopped_at",
    ]
    list_filter = ["kind", "allocation", "status"]
    search_fields = ["name", "key", "hypothesis"]
    prepopulated_fields = {"key": ["name"]}
    raw_id_fields = ["audience_segment", "campaign"]
    inlines = [VariantInline]


@admin.register(Variant)
class VariantAdmin(admin.ModelAdmin):
    list_display = ["name", "key", "experiment", "weight", "allocation_weight", "is_control"]
    list_filter = ["is_control", "experiment__kind"]
    search_fields = ["name", "key", "experiment__name"]
    list_select_related = ["experiment"]


@admin.register(AllocationChange)
class AllocationChangeAdmin(admin.ModelAdmin):
    list_display = ["experiment", "changed_at", "reason", "weights"]
    list_filter = ["reason"]
    list_select_related = ["experiment"]
    date_hierarchy = "changed_at"


@admin.register(Exposure)
class ExposureAdmin(admin.ModelAdmin):
    list_display = ["experiment", "customer", "variant", "exposed_at", "propensity"]
    list_select_related = ["experiment", "customer", "variant"]
    raw_id_fields = ["experiment", "customer", "variant"]
    date_hierarchy = "exposed_at"


@admin.register(SequentialLook)
class SequentialLookAdmin(admin.ModelAdmin):
    """The stored daily always-valid p-values; written by the results computation only."""

    list_display = ["experiment", "variant", "metric", "day", "p_value", "users"]
    list_filter = ["metric"]
    list_select_related = ["experiment", "variant"]
    date_hierarchy = "day"
    readonly_fields = ["experiment", "variant", "metric", "day", "p_value", "users"]
