"""The offer catalog as the rank path sees it: every live offer with its eligibility rules and
ranking features, built by one query and kept in process memory.

Why cached: ranking runs at hundreds of requests per second and needs every candidate's
attributes; the offers change a few times a day. The copy is rebuilt when the catalog
generation in Redis moves (an offer or item saved, see apps.py) or after CATALOG_TTL_SECONDS
(stock changed by bulk imports that send no signals, the popularity prior moved). Per request
only cheap checks remain in Python: dates, placement, channel, segment membership; caps need
the live counters (offers_log.offer_caps_reached).
"""

import logging
import math
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import redis
from django.db.models import Prefetch
from django.utils import timezone

from recommender.models import Item, Offer, OfferStatus

logger = logging.getLogger(__name__)

CATALOG_TTL_SECONDS = 60
PRICE_TIERS = ((25.0, "budget"), (100.0, "standard"))


def price_tier(price: float | None) -> str | None:
    if price is None:
        return None
    for edge, name in PRICE_TIERS:
        if price < edge:
            return name
    return "premium"


def popularity_bucket(rate: float | None) -> str:
    """The popularity prior as a token: log-spaced click-rate buckets, `new` when the offer
    has too little traffic. A customer with no history is still ranked by what works for
    everyone (and by the context crosses)."""
    if rate is None:
        return "new"
    return str(min(6, max(0, int(math.log2(max(rate, 1e-4) * 100) + 3))))


@dataclass(frozen=True)
class CatalogOffer:
    pk: int
    id: str
    priority: int
    item: str  # the main linked item's external id ("" if none)
    placements: frozenset[str]
    channels: frozenset[str]
    segment_id: int | None
    starts_at: datetime | None
    ends_at: datetime | None
    in_stock: bool
    caps: dict[str, int]
    features: dict[str, Any] = field(default_factory=dict)

    def eligible(
        self,
        *,
        now: datetime,
        placement: str | None,
        channel: str | None,
        segments: frozenset[int],
    ) -> bool:
        if not self.in_stock:
            return False
        if self.starts_at is not None and now < self.starts_at:
            return False
        if self.ends_at is not None and now >= self.ends_at:
            return False
        if placement and self.placements and placement not in self.placements:
            return False
        if channel and self.channels and channel not in self.channels:
            return False
        return self.segment_id is None or self.segment_id in segments

    def action(self) -> dict[str, Any]:
        return {"id": self.id, "features": self.features}


def item_features(item: Item | None) -> dict[str, Any]:
    """An item's attributes as ranking features: category, brand, price and its tier."""
    features: dict[str, Any] = {}
    if item is None:
        return features
    if item.category:
        features["category"] = item.category
    if item.brand:
        features["brand"] = item.brand
    if item.price is not None:
        features["price"] = float(item.price)
        features["tier"] = price_tier(float(item.price))
    return features


def offer_features(offer: Offer, items: Sequence[Item], popularity: str) -> dict[str, Any]:
    """The candidate attributes the ranker crosses with context and customer features."""
    return {
        "type": offer.type,
        "discount": float(offer.discount_percent),
        "popularity": popularity,
        "bundle_size": len(items),
        **item_features(items[0] if items else None),
    }


def catalog_build(*, popularity: dict[str, float]) -> dict[str, CatalogOffer]:
    """Every active offer, by id (two queries: offers with their item, the linked items)."""
    offers = (
        Offer.objects.filter(status=OfferStatus.ACTIVE)
        .select_related("item")
        .prefetch_related(Prefetch("items", queryset=Item.objects.order_by("pk")))
        .order_by("-priority", "pk")
    )
    catalog = {}
    for offer in offers:
        linked = ([offer.item] if offer.item is not None else []) + [
            i for i in offer.items.all() if i.pk != offer.item_id
        ]
        caps = {
            name: value
            for name in (
                "max_impressions",
                "max_redemptions",
                "max_impressions_per_customer",
                "max_redemptions_per_customer",
            )
            if (value := getattr(offer, name)) is not None
        }
        offer_id = str(offer.pk)
        catalog[offer_id] = CatalogOffer(
            pk=offer.pk,
            id=offer_id,
            priority=offer.priority,
            item=offer.item.external_id if offer.item is not None else "",
            placements=frozenset(offer.placements or ()),
            channels=frozenset(offer.channels or ()),
            segment_id=offer.segment_id,
            starts_at=offer.starts_at,
            ends_at=offer.ends_at,
            in_stock=all(i.in_stock and i.is_active for i in linked),
            caps=caps,
            features=offer_features(offer, linked, popularity_bucket(popularity.get(offer_id))),
        )
    return catalog


class CachedCatalog:
    """The process's catalog copy, keyed by the Redis generation it was built for."""

    def __init__(self) -> None:
        self._catalog: dict[str, CatalogOffer] | None = None
        self._generation: object = None
        self._built_at = 0.0
        self._lock = threading.Lock()

    def get(self, generation: object, popularity_loader) -> dict[str, CatalogOffer]:
        fresh = time.monotonic() - self._built_at < CATALOG_TTL_SECONDS
        if self._catalog is not None and self._generation == generation and fresh:
            return self._catalog
        with self._lock:
            fresh = time.monotonic() - self._built_at < CATALOG_TTL_SECONDS
            if self._catalog is None or self._generation != generation or not fresh:
                self._catalog = catalog_build(popularity=popularity_loader())
                self._generation = generation
                self._built_at = time.monotonic()
        return self._catalog

    def clear(self) -> None:
        self._catalog = None


cached_catalog = CachedCatalog()


def offer_catalog_invalidate() -> None:
    """Move the generation: every web process rebuilds its copy on its next request."""
    from recommender.offers_policy import CATALOG_GENERATION_KEY, redis_client, redis_key

    try:
        redis_client().incr(redis_key(CATALOG_GENERATION_KEY))
    except redis.RedisError:
        logger.warning("offer catalog generation not moved; copies expire within a minute")


def eligible_offers(
    catalog: dict[str, CatalogOffer],
    *,
    placement: str | None,
    channel: str | None,
    segments: Iterable[int],
    now: datetime | None = None,
    only: Sequence[str] | None = None,
) -> list[CatalogOffer]:
    """The eligible offers in the default order (priority, then age); `only` restricts to
    offers the caller named (placement is then not checked: the caller chose them)."""
    now = now or timezone.now()
    members = frozenset(segments)
    if only is None:
        pool: Iterable[CatalogOffer] = catalog.values()
    else:
        pool = [catalog[i] for i in only if i in catalog]
        placement = None
    return [
        o
        for o in pool
        if o.eligible(now=now, placement=placement, channel=channel, segments=members)
    ]
