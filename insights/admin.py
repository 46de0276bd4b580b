from django.contrib import admin

from insights.models import Brand, BrandAlert, Mention, Post, SentimentModel


@admin.register(Brand)
class BrandAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "is_own", "is_active", "created_at"]
    list_filter = ["kind", "is_own", "is_active"]
    search_fields = ["name"]


@admin.register(Post)
class PostAdmin(admin.ModelAdmin):
    list_display = ["source", "author", "sentiment_label", "sentiment", "posted_at"]
    list_filter = ["source", "sentiment_label"]
    search_fields = ["text", "author", "=external_id"]
    raw_id_fields = ["customer"]
    date_hierarchy = "posted_at"


@admin.register(Mention)
class MentionAdmin(admin.ModelAdmin):
    list_display = ["brand", "matched_text", "match_type", "sentiment_label", "posted_at"]
    list_filter = ["match_type", "sentiment_label", "brand"]
    search_fields = ["matched_text", "post__text"]
    list_select_related = ["brand"]
    raw_id_fields = ["post"]
    date_hierarchy = "posted_at"


@admin.register(SentimentModel)
class SentimentModelAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "is_active", "created_at"]
    list_filter = ["kind", "is_active"]
    readonly_fields = ["metrics"]


@admin.register(BrandAlert)
class BrandAlertAdmin(admin.ModelAdmin):
    list_display = ["brand", "window_start", "negative_count", "baseline", "status", "emailed_at"]
    list_filter = ["status", "brand"]
    list_select_related = ["brand"]
