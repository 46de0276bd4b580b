"""Serving recommendations: precomputed lists, then filters, exclusions and fill-up.

The hot path reads a serving snapshot (active versions, the popular list and the active
catalog) kept in process for a few seconds and in Redis per cache generation; per-customer
and per-item lists are cached in Redis keyed by model version. Whatever Redis does, the
answer comes from PostgreSQL or the popular list; an error is never the answer.

Order of sources: the customer's precomputed list of the serving version (the first active
version of `settings.RECOMMENDER_SERVING_ALGORITHMS`), or for `because_you_viewed` the similar
lists of the last items viewed, weighted by recency. An unknown customer, one without
personalization consent, or one without a list gets the popular list (the newest active
items when no popularity version is active). The result is then topped up to `k` from the
popular list, then from the newest items, under the same filters and without duplicates.
Without consent the customer's history is not used at all, exclusions included.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

from django.conf import settings

from recommender import selectors
from recommender.models import Algorithm, Item
from recommender.serving_cache import (
    cache_delete_many,
    cache_get,
    cache_get_many,
    cache_set,
    cache_set_many,
    generation_and_get,
    local_listener_add,
)

logger = logging.getLogger(__name__)

LOCAL_SECONDS = 5.0
SNAPSHOT_REDIS_SECONDS = 30
LIST_REDIS_SECONDS = 3600
POPULAR_HEAD = 1000
NEWEST_HEAD = 1000
VIEWED_SOURCES = 5
RECENCY_DECAY = 0.5
SIMILAR_ALGORITHMS = (Algorithm.ITEM_ITEM, Algorithm.CONTENT)
EXCLUSIONS = ("purchased", "viewed")
STRATEGIES = ("default", "because_you_viewed", "popular")


class Source:
    PERSONALIZED = "personalized"
    BECAUSE_YOU_VIEWED = "because_you_viewed"
    SIMILAR = "similar"
    POPULAR = "popular"
    NEWEST = "newest"


class CatalogEntry(NamedTuple):
    """A tuple, not a dataclass: the snapshot of thousands travels through Redis, and tuples
    unpickle several times faster."""

    title: str
    category: str
    brand: str
    price: Decimal | None
    in_stock: bool
    image_url: str
    deep_link: str
    attributes: dict


@dataclass(frozen=True)
class VersionRef:
    id: int
    algorithm: str


@dataclass(frozen=True)
class ServingSnapshot:
    generation: int | None
    serving: VersionRef | None
    popularity: VersionRef | None
    similar: VersionRef | None
    popular_ids: tuple[str, ...]
    popular_scores: tuple[float, ...]
    newest_ids: tuple[str, ...]
    catalog: dict[str, CatalogEntry]
    stamp: int = 0  # when it was read from PostgreSQL (time_ns): tells copies apart


class ScoredItem(NamedTuple):
    item_id: str
    score: float
    source: str


@dataclass(frozen=True)
class Recommendation:
    items: list[ScoredItem]
    model_version_id: int | None
    model_version_algorithm: str | None
    strategy_used: str
    personalized: bool
    catalog: dict[str, CatalogEntry] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class ItemFilters:
    """Filters on catalog fields; `attributes` matches Item.attributes (list values: any)."""

    category: str | None = None
    brand: str | None = None
    in_stock: bool | None = None
    price_min: Decimal | None = None
    price_max: Decimal | None = None
    attributes: dict[str, str] = field(default_factory=dict)


# --- the snapshot --------------------------------------------------------------------------

_local: dict[str, Any] = {"snapshot": None, "loaded_at": 0.0}


def _local_drop() -> None:
    _local["snapshot"] = None


local_listener_add(_local_drop)


def _stamp_key(generation: int) -> str:
    return f"stamp:{generation}"


def snapshot_stamp_keys() -> list[str]:
    """Keys to read with the generation so `snapshot_get` can keep an unchanged copy."""
    local = _local["snapshot"]
    if local is None or local.generation is None:
        return []
    return [_stamp_key(local.generation)]


def snapshot_get(
    generation: int | None = None, *, known: bool = False, prefetched: dict | None = None
) -> ServingSnapshot:
    """The serving snapshot: in process for LOCAL_SECONDS while the Redis generation holds,
    else from Redis, else from PostgreSQL (then stored in both, for SNAPSHOT_REDIS_SECONDS).

    A local copy that is still the one in Redis (same stamp) is kept without reloading: each
    reload makes thousands of long-lived objects, and their churn brings on full garbage
    collections that stall requests. Pass `known=True` with a generation (and the stamp keys
    in `prefetched`) already read from Redis.
    """
    if not known:
        generation, prefetched = generation_and_get(snapshot_stamp_keys())
    now = time.monotonic()
    local = _local["snapshot"]
    if local is not None and local.generation == generation:
        current = (
            generation is not None and (prefetched or {}).get(_stamp_key(generation)) == local.stamp
        )
        if current or now - _local["loaded_at"] < LOCAL_SECONDS:
            if current:
                _local["loaded_at"] = now
            return local
    snapshot = None
    if generation is not None:
        cached = cache_get(f"snapshot:{generation}")
        if isinstance(cached, ServingSnapshot):
            snapshot = cached
    if snapshot is None:
        snapshot = _snapshot_load(generation)
        if generation is not None:
            cache_set_many(
                {f"snapshot:{generation}": snapshot, _stamp_key(generation): snapshot.stamp},
                timeout=SNAPSHOT_REDIS_SECONDS,
            )
    _local["snapshot"] = snapshot
    _local["loaded_at"] = now
    return snapshot


def _snapshot_load(generation: int | None) -> ServingSnapshot:
    active = {
        algorithm: VersionRef(pk, algorithm)
        for pk, algorithm in selectors.modelversion_active_list()
    }
    serving = next(
        (active[a] for a in settings.RECOMMENDER_SERVING_ALGORITHMS if a in active), None
    )
    popularity = active.get(Algorithm.POPULARITY)
    similar = next((active[a] for a in SIMILAR_ALGORITHMS if a in active), None)
    popular_ids: list[str] = []
    popular_scores: list[float] = []
    if popularity is not None:
        popular_ids, popular_scores = selectors.modelversion_ranking_head(
            pk=popularity.id, limit=POPULAR_HEAD
        )
    catalog: dict[str, CatalogEntry] = {}
    newest: list[str] = []
    for row in selectors.item_rows_for_serving():
        catalog[row[0]] = CatalogEntry(*row[1:])
        if len(newest) < NEWEST_HEAD:
            newest.append(row[0])
    return ServingSnapshot(
        generation=generation,
        serving=serving,
        popularity=popularity,
        similar=similar,
        popular_ids=tuple(popular_ids),
        popular_scores=tuple(popular_scores),
        newest_ids=tuple(newest),
        catalog=catalog,
        stamp=time.time_ns(),
    )


# --- filters -------------------------------------------------------------------------------


def _norm(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip().casefold()


def _attribute_matches(stored: Any, wanted: str) -> bool:
    if isinstance(stored, list):
        return any(_norm(v) == wanted for v in stored)
    return stored is not None and _norm(stored) == wanted


def filter_compile(filters: ItemFilters | None) -> Callable[[CatalogEntry], bool]:
    if filters is None:
        return lambda entry: True
    category = None if filters.category is None else _norm(filters.category)
    brand = None if filters.brand is None else _norm(filters.brand)
    attributes = [(name, _norm(value)) for name, value in filters.attributes.items()]

    def matches(entry: CatalogEntry) -> bool:
        if category is not None and entry.category.casefold() != category:
            return False
        if brand is not None and entry.brand.casefold() != brand:
            return False
        if filters.in_stock is not None and entry.in_stock != filters.in_stock:
            return False
        if filters.price_min is not None and (
            entry.price is None or entry.price < filters.price_min
        ):
            return False
        if filters.price_max is not None and (
            entry.price is None or entry.price > filters.price_max
        ):
            return False
        return all(
            _attribute_matches(entry.attributes.get(name), wanted) for name, wanted in attributes
        )

    return matches


# --- cached lists --------------------------------------------------------------------------


def _list_key(version_id: int, customer_id: int) -> str:
    return f"list:{version_id}:{customer_id}"


def _customer_list(
    version_id: int, customer_id: int, prefetched: dict[str, Any]
) -> tuple[list[str], list[float]] | None:
    key = _list_key(version_id, customer_id)
    cached = prefetched[key] if key in prefetched else cache_get(key)
    if cached is not None:
        return cached or None  # () caches "no list"
    found = selectors.recommendation_list_get(version_id=version_id, customer_id=customer_id)
    cache_set(key, found or (), timeout=LIST_REDIS_SECONDS)
    return found


def similar_cache_drop(*, version_id: int, item_ids: Sequence[str]) -> None:
    """Forget cached related-item lists after they were rewritten in place."""
    cache_delete_many([f"sim:{version_id}:{item_id}" for item_id in item_ids])


def _similar_lists(
    version_id: int, item_ids: Sequence[str]
) -> dict[str, tuple[list[str], list[float]]]:
    keys = {f"sim:{version_id}:{item_id}": item_id for item_id in item_ids}
    cached = cache_get_many(list(keys))
    found = {keys[k]: v for k, v in cached.items() if v}
    missing = [item_id for k, item_id in keys.items() if k not in cached]
    if missing:
        loaded = selectors.similar_lists_get(version_id=version_id, item_external_ids=missing)
        found.update(loaded)
        cache_set_many(
            {f"sim:{version_id}:{i}": loaded.get(i, ()) for i in missing},
            timeout=LIST_REDIS_SECONDS,
        )
    return found


def _merge_by_recency(
    viewed: Sequence[str], lists: dict[str, tuple[list[str], list[float]]]
) -> tuple[list[str], list[float]]:
    """Sum of similarity scores weighted RECENCY_DECAY^position (the last view weighs 1)."""
    totals: dict[str, float] = {}
    for position, source in enumerate(viewed):
        if source not in lists:
            continue
        weight = RECENCY_DECAY**position
        ids, scores = lists[source]
        for item_id, score in zip(ids, scores, strict=False):
            totals[item_id] = totals.get(item_id, 0.0) + weight * float(score)
    ranked = sorted(totals.items(), key=lambda pair: (-pair[1], pair[0]))
    return [i for i, _ in ranked], [s for _, s in ranked]


# --- assembling ----------------------------------------------------------------------------


def _assemble(
    snapshot: ServingSnapshot,
    sources: Iterable[tuple[Sequence[str], Sequence[float] | None, str]],
    *,
    k: int,
    matches: Callable[[CatalogEntry], bool],
    excluded: set[str],
) -> list[ScoredItem]:
    out: list[ScoredItem] = []
    seen = set(excluded)
    catalog = snapshot.catalog
    for ids, scores, source in sources:
        for index, item_id in enumerate(ids):
            if item_id in seen:
                continue
            entry = catalog.get(item_id)
            if entry is None or not matches(entry):  # unknown or inactive, or filtered out
                continue
            seen.add(item_id)
            score = float(scores[index]) if scores is not None and index < len(scores) else 0.0
            out.append(ScoredItem(item_id, round(score, 6), source))
            if len(out) >= k:
                return out
    return out


def _popular_sources(snapshot: ServingSnapshot) -> list:
    return [
        (snapshot.popular_ids, snapshot.popular_scores, Source.POPULAR),
        (snapshot.newest_ids, None, Source.NEWEST),
    ]


def recommend(
    *,
    customer_external_id: str,
    k: int = 10,
    filters: ItemFilters | None = None,
    exclude: Sequence[str] = ("purchased",),
    strategy: str = "default",
    context: str = "",
) -> Recommendation:
    """Recommendations for one customer; see the module docstring for the order of sources.
    `context` is accepted for later use (placement-specific models) and not used yet."""
    matches = filter_compile(filters)
    customer = selectors.customer_for_serving(external_id=customer_external_id)
    allowed = customer is not None and customer.personalization
    # One Redis round trip on the warm path: the generation, and the customer's list under
    # the version this process serves now (checked against the snapshot below).
    local = _local["snapshot"]
    wanted = snapshot_stamp_keys()
    serving_now = local.serving if local is not None else None
    if (
        customer is not None
        and allowed
        and strategy == "default"
        and serving_now is not None
        and serving_now.algorithm != Algorithm.POPULARITY
    ):
        wanted.append(_list_key(serving_now.id, customer.pk))
    generation, prefetched = generation_and_get(wanted)
    snapshot = snapshot_get(generation, known=True, prefetched=prefetched)
    excluded: set[str] = set()
    primary: tuple[Sequence[str], Sequence[float], str] | None = None
    version: VersionRef | None = None
    strategy_used = Source.POPULAR
    if customer is not None and allowed:
        customer_id, views, purchases = customer.pk, customer.views, customer.purchases
        if "purchased" in exclude:
            excluded.update(purchases)
        if "viewed" in exclude:
            excluded.update(views)
        if (
            strategy == "default"
            and snapshot.serving is not None
            and snapshot.serving.algorithm != Algorithm.POPULARITY
        ):
            found = _customer_list(snapshot.serving.id, customer_id, prefetched)
            if found:
                primary = (found[0], found[1], Source.PERSONALIZED)
                version, strategy_used = snapshot.serving, Source.PERSONALIZED
        # Asked for, or the default for a customer active only since the last training (no
        # list yet): related items of what they viewed last, fresher than popularity.
        if (
            primary is None
            and strategy in ("because_you_viewed", "default")
            and views
            and snapshot.similar is not None
        ):
            viewed = views[:VIEWED_SOURCES]
            ids, scores = _merge_by_recency(viewed, _similar_lists(snapshot.similar.id, viewed))
            if ids:
                excluded.update(viewed)
                primary = (ids, scores, Source.BECAUSE_YOU_VIEWED)
                version, strategy_used = snapshot.similar, Source.BECAUSE_YOU_VIEWED
    sources = _popular_sources(snapshot)
    if primary is not None:
        sources.insert(0, primary)
    else:
        version = snapshot.popularity
        if version is None or not snapshot.popular_ids:
            strategy_used = Source.NEWEST
    items = _assemble(snapshot, sources, k=k, matches=matches, excluded=excluded)
    return Recommendation(
        items=items,
        model_version_id=version.id if version else None,
        model_version_algorithm=version.algorithm if version else None,
        strategy_used=strategy_used,
        personalized=primary is not None,
        catalog={i.item_id: snapshot.catalog[i.item_id] for i in items},
    )


def similar(
    *, item_external_id: str, k: int = 10, filters: ItemFilters | None = None
) -> Recommendation:
    """Items related to one item: the active item-item (or content) version's similar list,
    else popular items of the same category. Raises Item.DoesNotExist for an unknown id."""
    snapshot = snapshot_get()
    entry = snapshot.catalog.get(item_external_id)
    if entry is not None:
        category = entry.category
    else:
        stored = selectors.item_category_for_serving(external_id=item_external_id)
        if stored is None:
            raise Item.DoesNotExist(f"No item '{item_external_id}'.")
        category = stored
    matches = filter_compile(filters)
    same_category = filter_compile(ItemFilters(category=category))
    primary = None
    if snapshot.similar is not None:
        found = _similar_lists(snapshot.similar.id, [item_external_id]).get(item_external_id)
        if found:
            primary = (found[0], found[1], Source.SIMILAR)
    excluded = {item_external_id}
    items = []
    if primary is not None:
        items = _assemble(snapshot, [primary], k=k, matches=matches, excluded=excluded)
    if len(items) < k:
        items += _assemble(
            snapshot,
            _popular_sources(snapshot),
            k=k - len(items),
            matches=lambda e: matches(e) and same_category(e),
            excluded=excluded | {i.item_id for i in items},
        )
    version = snapshot.similar if primary is not None else snapshot.popularity
    strategy_used = Source.SIMILAR if primary is not None else Source.POPULAR
    return Recommendation(
        items=items,
        model_version_id=version.id if version else None,
        model_version_algorithm=version.algorithm if version else None,
        strategy_used=strategy_used,
        personalized=False,
        catalog={i.item_id: snapshot.catalog[i.item_id] for i in items},
    )
