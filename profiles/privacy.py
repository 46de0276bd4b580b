"""Privacy: a full export of what we hold about a person, and erasure.

Other apps add what they store about a customer (deliveries, assignments...) through
`privacy_export_register` / `privacy_erase_register`, so profiles never imports them.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable

from django.db import transaction
from django.forms.models import model_to_dict
from django.utils import timezone

from profiles.models import (
    ChannelEndpoint,
    ClusterAssignment,
    Consent,
    Customer,
    CustomerAlias,
    CustomerFeatures,
    Erasure,
    Event,
    FeatureBacklog,
    SegmentMembership,
)

logger = logging.getLogger(__name__)

ExportPart = Callable[[Customer], dict]
ErasePart = Callable[[Customer], int]  # how many rows it removed or blanked
_export_parts: dict[str, ExportPart] = {}
_erase_parts: dict[str, ErasePart] = {}

PERSONAL_FIELDS: dict[str, object] = {
    "email": "",
    "phone": "",
    "first_name": "",
    "last_name": "",
    "country": "",
    "timezone": "",
    "language": "",
    "birth_date": None,
    "gender": "",
    "attributes": {},
}


def privacy_export_register(name: str, part: ExportPart) -> None:
    _export_parts[name] = part


def privacy_erase_register(name: str, part: ErasePart) -> None:
    _erase_parts[name] = part


def privacy_erase_unregister(name: str) -> None:
    _erase_parts.pop(name, None)


def _rows(qs, exclude=("customer",)) -> list[dict]:
    return [{k: v for k, v in model_to_dict(o).items() if k not in exclude} for o in qs]


def privacy_export(*, customer: Customer) -> dict:
    """Everything stored about the customer, as JSON-able data."""
    profile = model_to_dict(customer)
    profile["created_at"] = customer.created_at
    features = CustomerFeatures.objects.filter(customer=customer).first()
    export = {
        "exported_at": timezone.now(),
        "customer": profile,
        "aliases": list(customer.aliases.values_list("alias", flat=True)),
        "endpoints": _rows(customer.endpoints.order_by("pk")),
        "consents": _rows(customer.consents.order_by("purpose")),
        "consent_history": _rows(customer.consent_changes.order_by("changed_at", "pk")),
        "features": features.state if features else {},
        "segments": sorted(
            SegmentMembership.objects.filter(customer=customer).values_list(
                "segment__name", flat=True
            )
        ),
        "clusters": list(
            ClusterAssignment.objects.filter(customer=customer)
            .order_by("run_id")
            .values("run_id", "cluster", "distance")
        ),
        "events": [
            {**e, "event_id": str(e["event_id"])}
            for e in customer.events.order_by("occurred_at", "pk").values(
                "event_id",
                "type",
                "item_external_id",
                "value",
                "channel",
                "campaign_id",
                "occurred_at",
                "properties",
            )
        ],
    }
    for name, part in sorted(_export_parts.items()):
        export[name] = part(customer)
    return export


def customer_erase(*, customer: Customer, source: str, actor: str = "") -> Erasure:
    """Remove the person's data everywhere in one transaction. The customer row stays as a
    pseudonym holding only aggregate features, so counts and revenue still add up."""
    pseudonym = "erased-" + hashlib.sha256(secrets.token_bytes(32)).hexdigest()[:24]
    with transaction.atomic():
        locked = Customer.objects.select_for_update().get(pk=customer.pk)
        removed: dict[str, object] = {
            "events": Event.objects.filter(customer=locked).count(),
            "endpoints": ChannelEndpoint.objects.filter(customer=locked).delete()[0],
            "aliases": CustomerAlias.objects.filter(customer=locked).delete()[0],
            "consents": Consent.objects.filter(customer=locked).delete()[0],
            "segment_memberships": SegmentMembership.objects.filter(customer=locked).delete()[0],
            "cluster_assignments": ClusterAssignment.objects.filter(customer=locked).delete()[0],
        }
        # The consent audit trail stays: it names no one once the customer is a pseudonym.
        FeatureBacklog.objects.filter(
            event_pk__in=Event.objects.filter(customer=locked).values("pk")
        ).delete()
        Event.objects.filter(customer=locked).delete()
        features = CustomerFeatures.objects.filter(customer=locked).first()
        if features is not None:
            state = dict(features.state)
            state["recent_views"] = []
            state["recent_purchases"] = []
            features.state = state
            features.save(update_fields=["state", "updated_at"])
        for name, part in sorted(_erase_parts.items()):
            removed[name] = part(locked)
        for field, empty in PERSONAL_FIELDS.items():
            setattr(locked, field, empty)
        locked.external_id = pseudonym
        locked.is_anonymous = True
        locked.erased_at = timezone.now()
        locked.save()
        erasure = Erasure.objects.create(
            pseudonym=pseudonym, source=source, actor=actor[:200], removed=removed
        )
    logger.info("customer erased", extra={"pseudonym": pseudonym, "source": source})
    return erasure
