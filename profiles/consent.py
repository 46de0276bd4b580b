"""Consent: the one place that says whether a customer may be messaged or personalized.

Every sender (campaigns) and the recommendation and offer APIs ask `consent_filter` or
`consent_reachable_endpoints`; nothing else decides. A missing consent means no.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from django.core import signing
from django.db import transaction
from django.db.models import Exists, Expression, OuterRef, QuerySet
from django.utils import timezone

from marketing.common.errors import ApplicationError
from profiles.models import (
    ChannelEndpoint,
    Consent,
    ConsentChange,
    ConsentPurpose,
    ConsentSource,
    Customer,
)

logger = logging.getLogger(__name__)

CHANNEL_PURPOSE = {
    "email": ConsentPurpose.MARKETING_EMAIL,
    "sms": ConsentPurpose.SMS,
    "push": ConsentPurpose.PUSH,
    "in_app": ConsentPurpose.PUSH,
}
UNSUBSCRIBE_SALT = "profiles.unsubscribe"


class InvalidConsentError(ApplicationError):
    code = "invalid_consent"


def consent_set(
    *,
    customer: Customer,
    purpose: str,
    granted: bool,
    source: str,
    actor: str = "",
    note: str = "",
    at: datetime | None = None,
) -> Consent:
    """Record a consent decision and its audit entry. Setting the value it already has is a
    no-op (nothing is added to the trail)."""
    if purpose not in ConsentPurpose.values:
        raise InvalidConsentError(
            f"Unknown purpose '{purpose}'.", extra={"purposes": ConsentPurpose.values}
        )
    if source not in ConsentSource.values:
        raise InvalidConsentError(f"Unknown source '{source}'.")
    at = at or timezone.now()
    with transaction.atomic():
        current = (
            Consent.objects.select_for_update().filter(customer=customer, purpose=purpose).first()
        )
        if current is not None and current.granted == granted:
            return current
        if current is None:
            current = Consent(customer=customer, purpose=purpose)
        current.granted = granted
        current.source = source
        current.changed_at = at
        current.save()
        ConsentChange.objects.create(
            customer=customer,
            purpose=purpose,
            granted=granted,
            source=source,
            actor=actor[:200],
            note=note[:500],
            changed_at=at,
        )
    logger.info(
        "consent changed",
        extra={"customer": customer.pk, "purpose": purpose, "granted": granted, "source": source},
    )
    return current


def consent_filter(*, customer_ids: Iterable[int], purpose: str) -> set[int]:
    """The customers among `customer_ids` who have granted `purpose`."""
    ids = list(customer_ids)
    if not ids:
        return set()
    # Erasure deletes a customer's consents, so no join on the customer is needed.
    return set(
        Consent.objects.filter(customer_id__in=ids, purpose=purpose, granted=True).values_list(
            "customer_id", flat=True
        )
    )


def consent_reachable_endpoints(*, customer_ids: Iterable[int], channel: str):
    """The endpoints a message on `channel` may go to: consent granted for the channel's
    purpose and the endpoint itself not opted out."""
    return consent_reachable_endpoints_for(customers=list(customer_ids), channel=channel)


def consent_reachable_endpoints_for(
    *, customers: QuerySet | Expression | list[int], channel: str
) -> QuerySet[ChannelEndpoint]:
    """`consent_reachable_endpoints` for a set of customers given as a subquery of customer
    ids (a `values("pk")` queryset or a `RawSQL`), so that a whole segment is filtered in
    one SQL statement instead of through a Python list."""
    purpose = CHANNEL_PURPOSE[channel]
    # Erasure deletes a customer's consents, so no join on the customer is needed.
    granted = Consent.objects.filter(
        customer=OuterRef("customer_id"), purpose=purpose, granted=True
    )
    return ChannelEndpoint.objects.filter(
        Exists(granted), customer_id__in=customers, channel=channel, opted_out=False
    ).order_by("customer_id", "pk")


def unsubscribe_token(*, customer: Customer, purpose: str) -> str:
    return signing.dumps({"c": customer.pk, "p": purpose}, salt=UNSUBSCRIBE_SALT, compress=True)


def unsubscribe_token_read(token: str) -> tuple[Customer, str]:
    try:
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature as exc:
        raise InvalidConsentError("This unsubscribe link is not valid.") from exc
    customer = Customer.objects.filter(pk=data.get("c"), erased_at=None).first()
    if customer is None or data.get("p") not in ConsentPurpose.values:
        raise InvalidConsentError("This unsubscribe link is not valid.")
    return customer, data["p"]


def consent_withdraw_by_token(*, token: str) -> Consent:
    customer, purpose = unsubscribe_token_read(token)
    return consent_set(
        customer=customer,
        purpose=purpose,
        granted=False,
        source=ConsentSource.UNSUBSCRIBE_LINK,
        actor="recipient",
    )
