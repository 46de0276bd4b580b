from django.contrib import admin

from insights.models import Brand, Post


@admin.register(Brand)
class BrandAdmin(admin.ModelAdmin):
    list_display = ["name", "is_own", "created_at"]
    list_filter = ["is_own"]
    search_fields = ["name"]


@admin.register(Post)
class PostAdmin(admin.ModelAdmin):
    list_display = ["source", "author", "brand", "sentiment", "posted_at"]
    list_filter = ["source", "brand"]
    search_fields = ["text", "author", "=external_id"]
    list_select_related = ["brand"]
    date_hierarchy = "posted_at"
