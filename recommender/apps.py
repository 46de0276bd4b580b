from django.apps import AppConfig


class RecommenderConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "recommender"

    def ready(self) -> None:
        from profiles.services import item_category_lookup_register
        from recommender.selectors import item_categories

        item_category_lookup_register(item_categories)
