from django.apps import AppConfig


class InsightsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "insights"

    def ready(self) -> None:
        from insights.selectors_health import brand_choices, posts_mentioning
        from profiles.segments.compiler import posts_mentioning_register
        from profiles.segments.selectors import brand_list_register

        # Segment rules: "mentioned a brand negatively in the last 30 days".
        posts_mentioning_register(posts_mentioning)
        brand_list_register(brand_choices)
