"""Every state change of customer data: event ingestion, features, identity merge."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from marketing.common.errors import ApplicationError
from profiles.features import FeatureConfig, FeatureEvent, features_apply
from profiles.ingest import EventRow
from profiles.models import Customer, CustomerAlias, CustomerFeatures, Event

logger = logging.getLogger(__name__)

ItemCategoryLookup = Callable[[Sequence[str]], dict[str, str]]
_item_category_lookup: ItemCategoryLookup | None = None


def item_category_lookup_register(lookup: ItemCategoryLookup) -> None:
    """The catalog (recommender app) tells profiles each item's category this way, so that
    profiles never imports the recommender."""
    global _item_category_lookup  # noqa: PLW0603 - a registry set once at start-up
    _item_category_lookup = lookup


def _item_categories(item_ids: Iterable[str]) -> dict[str, str]:
    ids = sorted({i for i in item_ids if i})
    if not ids or _item_category_lookup is None:
        return {}
    return _item_category_lookup(ids)


def feature_config() -> FeatureConfig:
    return FeatureConfig(
        last_n=settings.PROFILE_FEATURES_LAST_N,
        half_life_days=settings.PROFILE_FEATURES_HALF_LIFE_DAYS,
    )


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    duplicates: int
    customers_created: int


_CUSTOMER_INSERT = """
INSERT INTO profiles_customer (external_id, is_anonymous, email, phone, first_name, last_name,
    country, timezone, language, gender, attributes, created_at, updated_at)
SELECT x, true, '', '', '', '', '', '', '', '', '{}'::jsonb, %(now)s, %(now)s
FROM unnest(%(ids)s::text[]) AS x
ON CONFLICT (external_id) DO NOTHING
RETURNING id
"""

_EVENT_INSERT = """
INSERT INTO profiles_event (event_id, customer_id, type, item_external_id, value, channel,
    campaign_id, occurred_at, received_at, properties)
SELECT * FROM unnest(%s::uuid[], %s::bigint[], %s::text[], %s::text[], %s::numeric[],
    %s::text[], %s::bigint[], %s::timestamptz[], %s::timestamptz[], %s::jsonb[])
ON CONFLICT (event_id) DO NOTHING
RETURNING event_id
"""


def customers_resolve(*, external_ids: Sequence[str]) -> tuple[dict[str, int], int]:
    """Map storefront ids (or aliases) to customer pks, creating anonymous profiles for
    unknown ids. Returns the mapping and how many customers were created."""
    wanted = sorted(set(external_ids))
    mapping = dict(
        CustomerAlias.objects.filter(alias__in=wanted).values_list("alias", "customer_id")
    )
    missing = [i for i in wanted if i not in mapping]
    created = 0
    if missing:
        with connection.cursor() as cursor:
            cursor.execute(_CUSTOMER_INSERT, {"ids": missing, "now": timezone.now()})
            created = len(cursor.fetchall())
            cursor.execute(
                "SELECT external_id, id FROM profiles_customer WHERE external_id = ANY(%s)",
                [missing],
            )
            mapping.update(cursor.fetchall())
    return mapping, created


def events_ingest(*, rows: Sequence[EventRow]) -> IngestResult:
    """Store a validated batch once (event_id is the idempotency key) and fold the new
    events into their customers' features, all in one transaction."""
    received_at = timezone.now()
    with transaction.atomic():
        customer_pks, created = customers_resolve(external_ids=[r.customer_id for r in rows])
        with connection.cursor() as cursor:
            cursor.execute(
                _EVENT_INSERT,
                [
                    [r.event_id for r in rows],
                    [customer_pks[r.customer_id] for r in rows],
                    [r.type for r in rows],
                    [r.item_id for r in rows],
                    [r.value for r in rows],
                    [r.channel for r in rows],
                    [r.campaign_id for r in rows],
                    [r.occurred_at for r in rows],
                    [received_at] * len(rows),
                    [json.dumps(r.properties, separators=(",", ":")) for r in rows],
                ],
            )
            new_ids = {row[0] for row in cursor.fetchall()}
        by_customer: dict[int, list[EventRow]] = defaultdict(list)
        for row in rows:
            if row.event_id in new_ids:
                new_ids.discard(row.event_id)  # an id repeated inside the batch counts once
                by_customer[customer_pks[row.customer_id]].append(row)
        accepted = sum(len(v) for v in by_customer.values())
        if by_customer:
            _features_fold(by_customer)
    return IngestResult(
        accepted=accepted, duplicates=len(rows) - accepted, customers_created=created
    )


def _to_feature_events(rows: Iterable[EventRow], categories: dict[str, str]) -> list:
    return [
        FeatureEvent(
            occurred_at=r.occurred_at,
            type=r.type,
            item_id=r.item_id,
            category=categories.get(r.item_id, ""),
            value=r.value,
            channel=r.channel,
        )
        for r in rows
    ]


def _features_fold(by_customer: dict[int, list[EventRow]]) -> None:
    """Lock the customers' feature rows in pk order, fold the events in, write them back."""
    pks = sorted(by_customer)
    categories = _item_categories(r.item_id for rows in by_customer.values() for r in rows)
    config = feature_config()
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO profiles_customerfeatures (customer_id, state, events_applied, updated_at)
            SELECT x, '{}'::jsonb, 0, %s FROM unnest(%s::bigint[]) AS x
            ON CONFLICT (customer_id) DO NOTHING
            """,
            [now, pks],
        )
        cursor.execute(
            """
            SELECT customer_id, state FROM profiles_customerfeatures
            WHERE customer_id = ANY(%s) ORDER BY customer_id FOR NO KEY UPDATE
            """,
            [pks],
        )
        # Django sets psycopg to hand jsonb over as text.
        states = {pk: json.loads(state) for pk, state in cursor.fetchall()}
        new_states, counts = [], []
        for pk in pks:
            events = _to_feature_events(by_customer[pk], categories)
            new_states.append(json.dumps(features_apply(states.get(pk), events, config=config)))
            counts.append(len(events))
        cursor.execute(
            """
            UPDATE profiles_customerfeatures f
            SET state = v.state, events_applied = f.events_applied + v.n, updated_at = %s
            FROM unnest(%s::bigint[], %s::jsonb[], %s::int[]) AS v(pk, state, n)
            WHERE f.customer_id = v.pk
            """,
            [now, pks, new_states, counts],
        )


def features_recompute(*, customer: Customer) -> dict:
    """Fold a customer's whole history from scratch (used after a merge and by the drift
    check). Returns the new state; does not store it."""
    events = list(
        Event.objects.filter(customer=customer)
        .order_by("occurred_at", "pk")
        .values_list("occurred_at", "type", "item_external_id", "value", "channel")
    )
    categories = _item_categories(e[2] for e in events)
    feature_events = [
        FeatureEvent(
            occurred_at=t,
            type=kind,
            item_id=item,
            category=categories.get(item, ""),
            value=float(value) if value is not None else None,
            channel=channel,
        )
        for t, kind, item, value, channel in events
    ]
    return features_apply(None, feature_events, config=feature_config())


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
