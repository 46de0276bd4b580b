from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from campaigns.models import Campaign, CampaignVariant, JourneyEntry, Message, MessageTemplate
from campaigns.template_services import TEMPLATE_FIELDS
from campaigns.templating import template_compile


class MessageTemplateAdminForm(forms.ModelForm):
    """Admin saves check the template syntax like the editor does."""

    class Meta:
        model = MessageTemplate
        fields = "__all__"  # noqa: DJ007 - the admin edits every field

    def clean(self) -> dict:
        cleaned = super().clean() or {}
        candidate = MessageTemplate(
            **{name: cleaned.get(name) or "" for name in TEMPLATE_FIELDS if name != "name"}
        )
        try:
            template_compile(candidate)
        except ValidationError as exc:
            for name, messages in exc.message_dict.items():
                self.add_error(name if name in self.fields else None, messages)
        return cleaned


@admin.register(MessageTemplate)
class MessageTemplateAdmin(admin.ModelAdmin):
    form = MessageTemplateAdminForm
    list_display = ["name", "channel", "subject", "updated_at"]
    list_filter = ["channel"]
    search_fields = ["name", "subject", "body"]


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ["name", "channel", "status", "segment", "template", "scheduled_at", "sent_at"]
    list_filter = ["status", "channel"]
    search_fields = ["name", "segment__name", "template__name"]
    list_select_related = ["segment", "template"]
    date_hierarchy = "created_at"


@admin.register(CampaignVariant)
class CampaignVariantAdmin(admin.ModelAdmin):
    list_display = ["campaign", "name", "template", "weight"]
    list_select_related = ["campaign", "template"]
    search_fields = ["campaign__name", "name"]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    """Read-only: messages are written by dispatch alone (the idempotency key is the record
    that a message was or may have been sent)."""

    list_display = [
        "idempotency_key",
        "channel",
        "status",
        "skip_reason",
        "attempts",
        "sent_at",
        "opened_at",
        "clicked_at",
        "converted_at",
    ]
    list_filter = ["status", "skip_reason", "channel"]
    search_fields = ["idempotency_key", "address", "provider_message_id"]
    raw_id_fields = ["campaign", "variant", "customer"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(JourneyEntry)
class JourneyEntryAdmin(admin.ModelAdmin):
    """Read-only: entries are written by the journey consumer and decided at their due time
    (campaigns/journeys.py); editing one by hand would bypass the exit check."""

    list_display = ["campaign", "customer", "triggered_at", "due_at", "status", "decided_at"]
    list_filter = ["status"]
    search_fields = ["campaign__name", "customer__external_id"]
    raw_id_fields = ["campaign", "customer"]
    list_select_related = ["campaign", "customer"]
    date_hierarchy = "triggered_at"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
