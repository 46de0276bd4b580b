"""Shared set-up for the offer ranker tests."""

import datetime as dt

from django.utils import timezone

from profiles.models import Consent, CustomerFeatures, SegmentMembership
from tests.profiles.factories import CustomerFactory


def profiled_customer(*, external_id="cust-a", affinity=None, orders=3, segments=()):
    """A customer with personalization consent, a features state and segment memberships."""
    customer = CustomerFactory(external_id=external_id)
    now = timezone.now().timestamp()
    CustomerFeatures.objects.create(
        customer=customer,
        state={
            "counts": {"view": 10, "purchase": orders},
            "orders": orders,
            "revenue": 120.0,
            "last_at": {"purchase": now - 3 * 86400},
            "affinity": affinity or {"shoes": 6.0, "books": 2.0},
            "affinity_as_of": now,
        },
    )
    Consent.objects.create(
        customer=customer,
        purpose="personalization",
        granted=True,
        source="api",
        changed_at=timezone.now() - dt.timedelta(days=1),
    )
    for segment in segments:
        SegmentMembership.objects.create(
            segment=segment, customer=customer, added_at=timezone.now()
        )
    return customer
