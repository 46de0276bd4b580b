from django.contrib import admin

from campaigns.models import Campaign, MessageTemplate


@admin.register(MessageTemplate)
class MessageTemplateAdmin(admin.ModelAdmin):
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
