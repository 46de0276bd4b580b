"""The variables a message template sees, built for many recipients at once.

`context_for_customers` reads a batch of customers with their features in one query and
their recommendations through the registered lookup (one query per kind, never one per
customer), and returns plain dicts that `campaigns.templating.render` takes:

    customer        first_name, last_name, full_name, email, phone, country, language,
                    timezone, external_id, attributes, features (orders, revenue,
                    average_order_value, recency_days, last_purchase_at, top_category,
                    last_purchased_item, last_purchased_category, preferred_channel)
    recommendations list of items (id, title, image_url, url, price, category, brand)
    campaign        name (empty outside a campaign)
    unsubscribe_url, view_in_browser_url   filled per message by `render(..., links=)`

The recommender fills the lookups from its `apps.py` (campaigns never imports it); without
them (a deployment without the recommender) `recommendations` is an empty list.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.db.models import Q
from django.utils import timezone

from profiles.features import as_datetime, features_summary
from profiles.models import Customer
from profiles.services import feature_config

RecommendationsLookup = Callable[[Sequence[int], int], dict[int, list[dict[str, Any]]]]
ItemsLookup = Callable[[Sequence[str]], dict[str, dict[str, Any]]]

_lookups: dict[str, Any] = {"recommendations": None, "items": None}


def recommendations_lookup_register(
    recommendations: RecommendationsLookup, items: ItemsLookup | None = None
) -> None:
    """`recommendations(customer_pks, k)` → {pk: [item dict, ...]} and `items(item_ids)` →
    {item id: item dict}, set once at start-up by the recommender app."""
    _lookups["recommendations"] = recommendations
    _lookups["items"] = items


def _customer_context(customer: Customer, *, now, config, items: dict[str, dict]) -> dict:
    state = _features_state(customer)
    summary = features_summary(state, now=now, config=config) if state else {}
    affinity = summary.get("category_affinity") or {}
    purchases = state.get("recent_purchases") or []
    last_item = items.get(purchases[0]) if purchases else None
    return {
        "external_id": customer.external_id,
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "full_name": customer.full_name,
        "email": customer.email,
        "phone": customer.phone,
        "country": customer.country,
        "language": customer.language,
        "timezone": customer.timezone,
        "attributes": customer.attributes or {},
        "features": {
            "orders": state.get("orders", 0),
            "revenue": round(state.get("revenue", 0.0), 2),
            "average_order_value": summary.get("average_order_value"),
            "recency_days": summary.get("recency_days"),
            "last_purchase_at": as_datetime((state.get("last_at") or {}).get("purchase")),
            "top_category": next(iter(affinity), None),
            "last_purchased_item": last_item,
            "last_purchased_category": last_item["category"] if last_item else None,
            "preferred_channel": summary.get("preferred_channel"),
        },
    }


def _features_state(customer: Customer) -> dict:
    """The customer's feature state ({} without features); loaded by select_related."""
    try:
        return customer.features.state or {}
    except Customer.features.RelatedObjectDoesNotExist:
        return {}


def context_for_customers(
    customers: Iterable[Customer | int],
    *,
    recommendations: int = 3,
    campaign_name: str = "",
) -> dict[int, dict[str, Any]]:
    """{customer pk: template context} for the given customers (instances or pks), erased
    customers left out. Queries: one for the customers and their features, plus the
    recommendation lookup's (consent, purchases, lists) when `recommendations` > 0."""
    pks = [c.pk if isinstance(c, Customer) else int(c) for c in customers]
    rows = list(
        Customer.objects.filter(pk__in=pks, erased_at=None)
        .select_related("features")
        .order_by("pk")
    )
    now = timezone.now()
    config = feature_config()
    items: dict[str, dict] = {}
    items_lookup = _lookups["items"]
    if items_lookup is not None:
        last_purchases = {
            (_features_state(c).get("recent_purchases") or [None])[0] for c in rows
        } - {None}
        items = items_lookup(sorted(last_purchases)) if last_purchases else {}
    recs: dict[int, list[dict[str, Any]]] = {}
    lookup = _lookups["recommendations"]
    if recommendations > 0 and lookup is not None and rows:
        recs = lookup([c.pk for c in rows], recommendations)
    campaign = {"name": campaign_name}
    return {
        c.pk: {
            "customer": _customer_context(c, now=now, config=config, items=items),
            "recommendations": recs.get(c.pk, []),
            "campaign": campaign,
        }
        for c in rows
    }


def customer_for_preview(query: str = "") -> Customer | None:
    """The customer a preview renders for: by pk, storefront id or email; without a query,
    a random customer who has bought something (any customer when nobody has)."""
    live = Customer.objects.filter(erased_at=None)
    query = query.strip()
    if query:
        lookup = Q(external_id=query) | Q(email__iexact=query)
        if query.isdigit():
            lookup |= Q(pk=int(query))
        return live.filter(lookup).order_by("pk").first()
    buyers = live.filter(is_anonymous=False, features__orders__gt=0)
    for qs in (buyers, live):
        top = qs.order_by("-pk").values_list("pk", flat=True).first()
        if top is None:
            continue
        start = random.randint(0, top)  # noqa: S311 - a sample, not a secret
        found = qs.filter(pk__gte=start).order_by("pk").first()
        return found or qs.order_by("pk").first()
    return None
