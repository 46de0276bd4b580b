from django.contrib import admin

from experiments.models import Experiment, Variant


class VariantInline(admin.TabularInline):
    model = Variant
    extra = 0


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "status", "primary_metric", "started_at", "stopped_at"]
    list_filter = ["kind", "status"]
    search_fields = ["name", "hypothesis"]
    inlines = [VariantInline]


@admin.register(Variant)
class VariantAdmin(admin.ModelAdmin):
    list_display = ["name", "experiment", "weight", "is_control"]
    list_filter = ["is_control", "experiment__kind"]
    search_fields = ["name", "experiment__name"]
    list_select_related = ["experiment"]
