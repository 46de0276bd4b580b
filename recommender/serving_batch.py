"""Recommendations for many customers at once, for message personalization.

Campaign dispatch renders thousands of messages per second, so it cannot call `recommend` once
per recipient (a Redis round trip and up to three queries each). This reads the same serving
snapshot and, for a whole batch, consent in one query, recent purchases in one query and the
precomputed lists of the serving version in one query; then assembles each customer's list
exactly as `recommend` does (their list, topped up from the popular and the newest items,
purchased items excluded, without duplicates). Customers without a list or without
personalization consent get the popular list. The "because you viewed" fallback of the
single-customer path is left out: it needs the related lists of every recipient's views.

Registered in campaigns from `recommender/apps.py` (campaigns never imports the recommender).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection

from profiles.consent import consent_filter
from profiles.models import ConsentPurpose
from recommender.models import Algorithm
from recommender.selectors import _json_list, _json_value
from recommender.serving import (
    CatalogEntry,
    Source,
    _assemble,
    _popular_sources,
    filter_compile,
    snapshot_get,
)

_LISTS_SQL = (
    "SELECT customer_id, item_ids, scores FROM recommender_recommendationlist"
    " WHERE model_version_id = %s AND customer_id = ANY(%s)"
)
_PURCHASES_SQL = (
    "SELECT customer_id, state -> 'recent_purchases' FROM profiles_customerfeatures"
    " WHERE customer_id = ANY(%s)"
)


def item_dict(item_id: str, entry: CatalogEntry) -> dict[str, Any]:
    """What a message template sees of an item (`{{ recommendations.0.title }}`)."""
    return {
        "id": item_id,
        "title": entry.title,
        "image_url": entry.image_url,
        "url": entry.deep_link,
        "price": entry.price,
        "category": entry.category,
        "brand": entry.brand,
    }


def recommendations_for_customers(
    customer_ids: Sequence[int], k: int
) -> dict[int, list[dict[str, Any]]]:
    """{customer pk: up to `k` item dicts, best first} for every pk given."""
    ids = sorted({int(i) for i in customer_ids})
    if not ids:
        return {}
    snapshot = snapshot_get()
    allowed = sorted(consent_filter(customer_ids=ids, purpose=ConsentPurpose.PERSONALIZATION))
    purchases: dict[int, list[str]] = {}
    lists: dict[int, tuple[list[str], list[float]]] = {}
    if allowed:
        with connection.cursor() as cursor:
            cursor.execute(_PURCHASES_SQL, [allowed])
            purchases = {pk: _json_list(value) for pk, value in cursor.fetchall()}
            serving = snapshot.serving
            if serving is not None and serving.algorithm != Algorithm.POPULARITY:
                cursor.execute(_LISTS_SQL, [serving.id, allowed])
                lists = {
                    pk: (_json_list(items), [float(s) for s in _json_value(scores) or []])
                    for pk, items, scores in cursor.fetchall()
                }
    matches = filter_compile(None)
    popular = _popular_sources(snapshot)
    catalog = snapshot.catalog
    out: dict[int, list[dict[str, Any]]] = {}
    for pk in ids:
        sources = popular
        if pk in lists:
            item_ids, scores = lists[pk]
            sources = [(item_ids, scores, Source.PERSONALIZED), *popular]
        items = _assemble(
            snapshot, sources, k=k, matches=matches, excluded=set(purchases.get(pk, ()))
        )
        out[pk] = [item_dict(i.item_id, catalog[i.item_id]) for i in items]
    return out


def items_for_templates(item_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """{item id: item dict} of the active catalog items among `item_ids` (no query)."""
    catalog = snapshot_get().catalog
    return {i: item_dict(i, catalog[i]) for i in item_ids if i in catalog}
