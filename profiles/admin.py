from django.contrib import admin

from profiles.models import (
    ChannelEndpoint,
    Consent,
    ConsentChange,
    Customer,
    CustomerAlias,
    CustomerFeatures,
    Erasure,
    Event,
    FeatureBacklog,
    Segment,
    SegmentKind,
    SegmentMembership,
    SegmentSnapshot,
)
from profiles.privacy import customer_erase
from profiles.segments.services import segment_refresh_schedule


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
    actions = ["erase_selected"]

    @admin.action(description="Erase personal data of the selected customers (GDPR)")
    def erase_selected(self, request, queryset):
        count = 0
        for customer in queryset.filter(erased_at=None):
            customer_erase(customer=customer, source="admin", actor=request.user.get_username())
            count += 1
        self.message_user(request, f"Erased {count} customer(s).")


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
    readonly_fields = ["member_count", "counted_at"]
    actions = ["refresh_now"]

    @admin.action(description="Refresh now (rule segments)")
    def refresh_now(self, request, queryset):
        segments = list(queryset.filter(kind=SegmentKind.RULES))
        for segment in segments:
            segment_refresh_schedule(segment=segment)
        skipped = queryset.count() - len(segments)
        message = f"Scheduled a refresh of {len(segments)} rule segment(s)."
        if skipped:
            message += f" Skipped {skipped} fixed list(s); only rule segments are refreshed."
        self.message_user(request, message)


@admin.register(SegmentMembership)
class SegmentMembershipAdmin(admin.ModelAdmin):
    """Written only by the segment services; shown for looking things up."""

    list_display = ["segment", "customer", "score", "added_at"]
    list_filter = ["segment"]
    search_fields = ["=customer__external_id"]
    raw_id_fields = ["segment", "customer"]
    list_select_related = ["segment", "customer"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(SegmentSnapshot)
class SegmentSnapshotAdmin(admin.ModelAdmin):
    """The size of a segment at each refresh (the history chart), append-only."""

    list_display = ["segment", "taken_at", "size", "entered", "left", "duration_ms"]
    list_filter = ["segment"]
    raw_id_fields = ["segment"]
    list_select_related = ["segment"]
    date_hierarchy = "taken_at"
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Consent)
class ConsentAdmin(admin.ModelAdmin):
    list_display = ["customer", "purpose", "granted", "source", "changed_at"]
    list_filter = ["purpose", "granted", "source"]
    search_fields = ["=customer__external_id"]
    raw_id_fields = ["customer"]
    list_select_related = ["customer"]


@admin.register(ConsentChange)
class ConsentChangeAdmin(admin.ModelAdmin):
    list_display = ["customer", "purpose", "granted", "source", "actor", "changed_at"]
    list_filter = ["purpose", "granted", "source"]
    search_fields = ["=customer__external_id", "actor"]
    raw_id_fields = ["customer"]
    list_select_related = ["customer"]

    def has_change_permission(self, request, obj=None):
        return False  # the audit trail is append-only


@admin.register(CustomerAlias)
class CustomerAliasAdmin(admin.ModelAdmin):
    list_display = ["alias", "customer", "created_at"]
    search_fields = ["=alias", "=customer__external_id"]
    raw_id_fields = ["customer"]


@admin.register(CustomerFeatures)
class CustomerFeaturesAdmin(admin.ModelAdmin):
    list_display = ["customer", "events_applied", "updated_at"]
    search_fields = ["=customer__external_id"]
    raw_id_fields = ["customer"]
    show_full_result_count = False


@admin.register(Erasure)
class ErasureAdmin(admin.ModelAdmin):
    list_display = ["pseudonym", "source", "actor", "erased_at"]
    list_filter = ["source"]
    search_fields = ["=pseudonym"]

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(FeatureBacklog)
class FeatureBacklogAdmin(admin.ModelAdmin):
    """Events waiting to be folded into features; normally empty within seconds."""

    list_display = ["event_pk"]
    search_fields = ["=event_pk"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


from profiles import admin_clusters  # noqa: E402, F401
