"""Offer writes (the pages and the admin go through the model's validation the same way)."""

from collections.abc import Sequence

from django.db import transaction

from recommender.models import Item, Offer

OFFER_FIELDS = (
    "name",
    "title",
    "description",
    "image_url",
    "deep_link",
    "type",
    "status",
    "item",
    "discount_percent",
    "segment",
    "channels",
    "placements",
    "priority",
    "max_impressions",
    "max_redemptions",
    "max_impressions_per_customer",
    "max_redemptions_per_customer",
    "starts_at",
    "ends_at",
)


def offer_save(*, offer: Offer | None = None, fields: dict, items: Sequence[Item] = ()) -> Offer:
    """Create (offer=None) or update an offer and its linked items. Raises Django's
    ValidationError (field-keyed) from full_clean; the catalog copies of the rank path are
    invalidated on commit by the model signals."""
    offer = offer or Offer()
    for name in OFFER_FIELDS:
        if name in fields:
            setattr(offer, name, fields[name])
    offer.full_clean()
    with transaction.atomic():
        offer.save()
        offer.items.set(items)
    return offer
