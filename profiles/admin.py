from django.contrib import admin

from profiles.models import ChannelEndpoint, Customer, Event, Segment


class ChannelEndpointInline(admin.TabularInline):
    model = ChannelEndpoint
    extra = 0


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = [
        "external_id",
        "email",
        "first_name",
        "last_name",
        "country",
        "is_anonymous",
        "created_at",
    ]
    list_filter = ["is_anonymous", "country", "gender", "language"]
    search_fields = ["=external_id", "email", "phone", "last_name"]
    date_hierarchy = "created_at"
    inlines = [ChannelEndpointInline]
    show_full_result_count = False


@admin.register(ChannelEndpoint)
class ChannelEndpointAdmin(admin.ModelAdmin):
    list_display = ["customer", "channel", "address", "opted_out", "created_at"]
    list_filter = ["channel", "opted_out"]
    search_fields = ["address", "=customer__external_id"]
    raw_id_fields = ["customer"]
    list_select_related = ["customer"]
    show_full_result_count = False


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = [
        "occurred_at",
        "type",
        "customer",
        "item_external_id",
        "value",
        "channel",
        "campaign_id",
    ]
    list_filter = ["type", "channel"]
    search_fields = ["=event_id", "=customer__external_id", "=item_external_id"]
    raw_id_fields = ["customer"]
    list_select_related = ["customer"]
    show_full_result_count = False


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "member_count", "counted_at", "updated_at"]
    list_filter = ["kind"]
    search_fields = ["name", "description"]
