"""Serializers of the social API: they document the shapes in the schema; validation of a
1,000-post batch runs in insights/ingest.py (plain Python, fast)."""

from rest_framework import serializers

from insights.ingest import MAX_AUTHOR, MAX_ID, MAX_LANGUAGE, MAX_SOURCE, MAX_TEXT, MAX_URL


class PostInputSerializer(serializers.Serializer):
    source = serializers.CharField(  # type: ignore[assignment]
        max_length=MAX_SOURCE, help_text="The platform, e.g. 'mastodon', 'x', 'instagram'."
    )
    external_id = serializers.CharField(
        max_length=MAX_ID,
        help_text="The post's id on the platform; with source, the idempotency key. "
        "Also accepted as post_id or id.",
    )
    author = serializers.CharField(
        max_length=MAX_AUTHOR, required=False, help_text="The author's handle."
    )
    author_email = serializers.EmailField(required=False)
    text = serializers.CharField(max_length=MAX_TEXT)
    language = serializers.CharField(max_length=MAX_LANGUAGE, required=False)
    url = serializers.URLField(max_length=MAX_URL, required=False)
    posted_at = serializers.DateTimeField(
        help_text="ISO 8601 or Unix seconds; also accepted as created_time, created_at or "
        "timestamp."
    )
    likes = serializers.IntegerField(min_value=0, required=False)
    shares = serializers.IntegerField(min_value=0, required=False)
    comments = serializers.IntegerField(min_value=0, required=False)
    metrics = serializers.DictField(
        child=serializers.FloatField(), required=False, help_text="Other metrics (numbers)."
    )


class PostIngestOutputSerializer(serializers.Serializer):
    created = serializers.IntegerField(help_text="New posts stored and scored.")
    updated = serializers.IntegerField(help_text="Posts seen before: their metrics updated.")
    mentions = serializers.IntegerField(help_text="Brand mentions found in the new posts.")
    linked = serializers.IntegerField(help_text="Posts by a known customer.")
