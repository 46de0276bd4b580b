"""Customers: identify, alias merge, endpoint flags."""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from marketing.common.errors import ApplicationError
from profiles.models import (
    ChannelEndpoint,
    Customer,
    CustomerAlias,
    CustomerFeatures,
    Event,
    FeatureBacklog,
)
from profiles.services._db import bulk_cursor
from profiles.services.features import FEATURES_LOCK, features_recompute

logger = logging.getLogger(__name__)


class AliasConflictError(ApplicationError):
    code = "alias_conflict"
    http_status = 409


def customer_alias_add(*, customer: Customer, alias: str) -> Customer:
    """Link `alias` (say an anonymous cookie id) to `customer`: the alias's profile, if any,
    merges into the customer (its events move over) and later events with the alias land
    on the customer."""
    if alias == customer.external_id:
        raise ApplicationError("A customer cannot be its own alias.", code="alias_is_self")
    with transaction.atomic():
        with bulk_cursor() as cursor:
            # The features consumer must not fold this customer's events while we recompute.
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [FEATURES_LOCK])
        existing = CustomerAlias.objects.select_for_update().filter(alias=alias).first()
        if existing is not None:
            if existing.customer_id == customer.pk:
                return customer
            raise AliasConflictError(
                f"'{alias}' is already an alias of another customer.",
                extra={"customer_id": existing.customer.external_id},
            )
        source = (
            Customer.objects.select_for_update(of=("self",))
            .filter(external_id=alias)
            .exclude(pk=customer.pk)
            .first()
        )
        if source is not None:
            if not source.is_anonymous:
                raise AliasConflictError(
                    f"'{alias}' is a known customer; only anonymous profiles merge.",
                    extra={"customer_id": alias},
                )
            Event.objects.filter(customer=source).update(customer=customer)
            CustomerAlias.objects.filter(customer=source).update(customer=customer)
            source.delete()
        CustomerAlias.objects.create(alias=alias, customer=customer)
        # The recompute covers every event of the customer, queued ones included.
        FeatureBacklog.objects.filter(
            event_pk__in=Event.objects.filter(customer=customer).values("pk")
        ).delete()
        state = features_recompute(customer=customer)
        CustomerFeatures.objects.update_or_create(
            customer=customer,
            defaults={
                "state": state,
                "events_applied": sum(state["counts"].values()),
            },
        )
    logger.info("alias linked", extra={"customer": customer.pk, "merged": source is not None})
    return customer


def customer_upsert(*, external_id: str, data: dict) -> tuple[Customer, bool]:
    """Create or update a known customer from an identify call. Attributes merge (None
    removes a key); endpoints are added or updated by (channel, address)."""
    fields = {k: v for k, v in data.items() if k not in ("attributes", "endpoints")}
    with transaction.atomic():
        found = Customer.objects.select_for_update().filter(external_id=external_id).first()
        created = found is None
        customer = Customer(external_id=external_id) if found is None else found
        if customer.erased_at is not None:
            raise ApplicationError("This customer was erased.", code="customer_erased")
        for name, value in fields.items():
            setattr(customer, name, value)
        attributes = dict(customer.attributes)
        for key, value in (data.get("attributes") or {}).items():
            if value is None:
                attributes.pop(key, None)
            else:
                attributes[key] = value
        customer.attributes = attributes
        customer.is_anonymous = False
        customer.full_clean(exclude=["external_id"] if not created else None)
        customer.save()
        for endpoint in data.get("endpoints") or []:
            ChannelEndpoint.objects.update_or_create(
                customer=customer,
                channel=endpoint["channel"],
                address=endpoint["address"],
                defaults={"opted_out": endpoint.get("opted_out", False)},
            )
    return customer, created


def endpoints_update(*, endpoints: QuerySet[ChannelEndpoint], **changes) -> int:
    """Set fields on the given endpoints where they differ (so unchanged rows keep their
    updated_at); returns how many rows changed. Used by provider webhooks."""
    differing = Q()
    for name, value in changes.items():
        differing |= ~Q(**{name: value})
    return endpoints.filter(differing).update(**changes, updated_at=timezone.now())


def endpoints_mark_bounced(*, channel: str, address: str) -> int:
    """Flag `attributes["bounced"]` on every live endpoint with this address (any case)."""
    changed = 0
    with transaction.atomic():
        rows = (
            ChannelEndpoint.objects.select_for_update(of=("self",), no_key=True)
            .filter(channel=channel, address__iexact=address, customer__erased_at=None)
            .order_by("pk")
        )
        for endpoint in rows:
            if endpoint.attributes.get("bounced") is True:
                continue
            endpoint.attributes = {**endpoint.attributes, "bounced": True}
            endpoint.save(update_fields=["attributes", "updated_at"])
            changed += 1
    return changed
