"""What the offer ranker benchmarks share: the simulated storefront's offers, customers and
profiles written into a scratch database, so the Rank API sees them as live data.

Each simulated customer becomes a Customer with personalization consent, a features state
whose affinity shares, orders, revenue and last purchase reproduce the storefront's profile
view (`OfferStorefront.customer_features`), and memberships of three static segments
standing for its noisy price-sensitive / premium / frequent labels. Each simulated offer
becomes an Item (category, price) and an active Offer (type, discount) on every placement.
"""

import time
from decimal import Decimal

import _scratch  # noqa: F401  (puts the project on sys.path)

from recommender.contextual.simulation import (
    SEGMENT_FREQUENT,
    SEGMENT_PREMIUM,
    SEGMENT_PRICE_SENSITIVE,
    OfferStorefront,
)

SEGMENT_NAMES = {
    SEGMENT_PRICE_SENSITIVE: "Price sensitive",
    SEGMENT_PREMIUM: "Premium",
    SEGMENT_FREQUENT: "Frequent",
}


def customer_id(index: int) -> str:
    return f"sim-{index}"


def offers_create(storefront: OfferStorefront) -> dict[str, int]:
    """Items and offers for the storefront's offers; returns {offer pk: storefront index}."""
    from recommender.models import Item, Offer, OfferType

    mapping = {}
    for j, action in enumerate(storefront.offers):
        features = action["features"]
        item = Item.objects.create(
            external_id=f"sim-item-{j}",
            title=f"Item {j}",
            category=features["category"],
            price=Decimal(str(round(features["price"], 2))),
            in_stock=True,
        )
        offer = Offer.objects.create(
            name=action["id"],
            type=OfferType(features["type"]),
            discount_percent=Decimal(str(features["discount"])),
            item=item,
        )
        mapping[str(offer.pk)] = j
    return mapping


def customers_create(storefront: OfferStorefront, count: int) -> None:
    """`count` customers with consent, features and segment memberships (bulk writes)."""
    from django.utils import timezone

    from profiles.models import Consent, CustomerFeatures
    from profiles.segments.services import segment_create_static
    from profiles.services import customers_resolve

    ids = [customer_id(i) for i in range(count)]
    pks, _ = customers_resolve(external_ids=ids)
    now = time.time()
    changed = timezone.now()
    features, consents = [], []
    members: dict[int, list[int]] = {s: [] for s in SEGMENT_NAMES}
    for i in range(count):
        profile = storefront.customer_features(i)
        pk = pks[customer_id(i)]
        state = {
            "counts": {"view": 10, "purchase": profile["orders"]},
            "orders": profile["orders"],
            "revenue": profile["revenue"],
            "last_at": (
                {"purchase": now - profile["recency_days"] * 86400}
                if profile["recency_days"] is not None
                else {}
            ),
            "affinity": profile["category_affinity"],
            "affinity_as_of": now,
        }
        features.append(CustomerFeatures(customer_id=pk, state=state))
        consents.append(
            Consent(
                customer_id=pk,
                purpose="personalization",
                granted=True,
                source="api",
                changed_at=changed,
            )
        )
        for segment in profile["segments"]:
            members[segment].append(pk)
    CustomerFeatures.objects.bulk_create(features, batch_size=2000)
    Consent.objects.bulk_create(consents, batch_size=2000)
    for segment, customer_pks in members.items():
        segment_create_static(
            name=SEGMENT_NAMES[segment], kind="imported", customer_ids=customer_pks
        )
