from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from profiles.features import as_datetime, features_empty, features_summary
from profiles.models import (
    Consent,
    ConsentChange,
    ConsentPurpose,
    Customer,
    CustomerFeatures,
    Event,
    Segment,
)
from profiles.services import feature_config


def customer_list(*, filters: dict | None = None) -> QuerySet[Customer]:
    """Customers for the list page; every search word must match id, email or a name."""
    filters = filters or {}
    qs = Customer.objects.defer("attributes")
    for term in (filters.get("q") or "").split():
        qs = qs.filter(
            Q(external_id__icontains=term)
            | Q(email__icontains=term)
            | Q(first_name__icontains=term)
            | Q(last_name__icontains=term)
        )
    if country := filters.get("country"):
        qs = qs.filter(country=country)
    if (anonymous := filters.get("anonymous")) is not None:
        qs = qs.filter(is_anonymous=anonymous)
    return qs.order_by("-pk")


def customer_get(*, pk: int) -> Customer | None:
    return Customer.objects.prefetch_related("endpoints").filter(pk=pk).first()


def event_list_for_customer(*, customer_id: int, limit: int = 50) -> list[Event]:
    """The customer's newest events (the index on (customer, occurred_at) serves this)."""
    return list(
        Event.objects.filter(customer_id=customer_id).order_by("-occurred_at", "-pk")[:limit]
    )


@dataclass(frozen=True)
class TimelineEntry:
    """One line of a customer's timeline: an event, or a social post they wrote."""

    at: datetime
    event: Event | None = None
    post: Any = None  # insights.Post, read through Customer.posts (profiles does not import it)


def customer_timeline(
    *, customer: Customer, events: list[Event], limit: int = 50
) -> list[TimelineEntry]:
    """The customer's newest events and social posts (matched by the listening ingest to
    this customer), newest first: two index ranges ((customer, occurred_at) and
    (customer, posted_at)) plus the posts' mentions."""
    posts = list(
        customer.posts.prefetch_related("mentions__brand").order_by("-posted_at", "-pk")[:limit]
    )
    entries = [TimelineEntry(at=e.occurred_at, event=e) for e in events]
    entries += [TimelineEntry(at=p.posted_at, post=p) for p in posts]
    entries.sort(key=lambda entry: entry.at, reverse=True)
    return entries[:limit]


def segment_list(*, filters: dict | None = None) -> QuerySet[Segment]:
    filters = filters or {}
    qs = Segment.objects.all()
    if q := filters.get("q"):
        qs = qs.filter(Q(name__icontains=q) | Q(description__icontains=q))
    if kind := filters.get("kind"):
        qs = qs.filter(kind=kind)
    return qs.order_by("name")


def customer_get_for_api(*, external_id: str) -> Customer | None:
    """The customer by storefront id or by one of its aliases, with endpoints and aliases."""
    qs = Customer.objects.prefetch_related("endpoints", "aliases")
    return (
        qs.filter(external_id=external_id).first() or qs.filter(aliases__alias=external_id).first()
    )


def customer_features(*, customer: Customer) -> dict:
    """Stored incremental features plus the values derived from them as of now."""
    row = CustomerFeatures.objects.filter(customer=customer).first()
    state = row.state if row and row.state else features_empty()
    summary = features_summary(state, now=timezone.now(), config=feature_config())
    return {
        "event_counts": state["counts"],
        "last_event_at": {k: as_datetime(v) for k, v in state["last_at"].items()},
        "first_seen": as_datetime(state["first_seen"]),
        "last_seen": as_datetime(state["last_seen"]),
        "sessions": state["sessions"],
        "total_revenue": round(state["revenue"], 2),
        "recent_views": state["recent_views"],
        "recent_purchases": state["recent_purchases"],
        **summary,
    }


def consent_list(*, customer: Customer) -> list:
    return list(Consent.objects.filter(customer=customer).order_by("purpose"))


def consent_history(*, customer: Customer, limit: int = 100) -> list:
    return list(
        ConsentChange.objects.filter(customer=customer).order_by("-changed_at", "-pk")[:limit]
    )


def consent_rows(*, customer: Customer) -> list[dict]:
    """One row per purpose, given or not, for the customer page."""
    current = {c.purpose: c for c in consent_list(customer=customer)}
    return [
        {"purpose": value, "label": label, "consent": current.get(value)}
        for value, label in ConsentPurpose.choices
    ]
