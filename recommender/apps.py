from django.apps import AppConfig
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save


def _invalidate_serving_cache(sender, **kwargs) -> None:
    """Cache invalidation only: a saved item or model version changes what serving shows."""
    from recommender.serving_cache import serving_cache_invalidate

    transaction.on_commit(serving_cache_invalidate)


def _invalidate_offer_catalog(sender, **kwargs) -> None:
    """Cache invalidation only: web processes rebuild their offer catalog copy."""
    from recommender.offers_catalog import offer_catalog_invalidate

    transaction.on_commit(offer_catalog_invalidate)


class RecommenderConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "recommender"

    def ready(self) -> None:
        from campaigns.personalization import recommendations_lookup_register
        from profiles.segments.compiler import items_in_category_register
        from profiles.segments.selectors import category_list_register
        from profiles.services import item_category_lookup_register
        from profiles.services.events import events_committed_hook_add
        from recommender.models import Item, ModelVersion, Offer
        from recommender.selectors import item_categories, item_category_names, items_in_category
        from recommender.serving_batch import items_for_templates, recommendations_for_customers
        from recommender.tasks import offer_log_process_schedule

        item_category_lookup_register(item_categories)
        items_in_category_register(items_in_category)
        category_list_register(item_category_names)
        recommendations_lookup_register(recommendations_for_customers, items_for_templates)
        # Offer rewards from tracked offer_click / purchase events.
        events_committed_hook_add(offer_log_process_schedule)
        for offer_model in (Offer, Item):
            post_save.connect(
                _invalidate_offer_catalog,
                sender=offer_model,
                dispatch_uid=f"offers-{offer_model.__name__}",
            )
            post_delete.connect(
                _invalidate_offer_catalog,
                sender=offer_model,
                dispatch_uid=f"offers-del-{offer_model.__name__}",
            )
        m2m_changed.connect(
            _invalidate_offer_catalog, sender=Offer.items.through, dispatch_uid="offers-items"
        )
        for model in (Item, ModelVersion):
            post_save.connect(
                _invalidate_serving_cache, sender=model, dispatch_uid=f"serving-{model.__name__}"
            )
            post_delete.connect(
                _invalidate_serving_cache,
                sender=model,
                dispatch_uid=f"serving-del-{model.__name__}",
            )
