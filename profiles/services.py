"""Every state change of customer data: event ingestion, features, identity merge."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import orjson
import psycopg
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from marketing.common.errors import ApplicationError
from profiles.features import (
    FeatureConfig,
    FeatureEvent,
    features_apply,
    features_drift,
    features_empty,
)
from profiles.ingest import EventRow
from profiles.models import (
    ChannelEndpoint,
    ConsentPurpose,
    ConsentSource,
    Customer,
    CustomerAlias,
    CustomerFeatures,
    Event,
    FeatureBacklog,
)

logger = logging.getLogger(__name__)

# Called with a list of item ids, or with None for every item.
ItemCategoryLookup = Callable[[Sequence[str] | None], dict[str, str]]
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


def _bulk_cursor():
    """A psycopg cursor with server-side parameter binding, on Django's connection (so inside
    its transaction). Django's own cursor binds on the client, which quotes 1,000-element
    arrays in Python; this one sends them as they are."""
    connection.ensure_connection()
    return psycopg.Cursor(connection.connection)


def _json(value):
    """jsonb arrives as text through Django's adapters and as a dict in binary mode."""
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def _dumps(value) -> str:
    return orjson.dumps(value).decode()


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
RETURNING external_id, id
"""

_EVENT_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS profiles_event_stage (
    event_id uuid, customer_id bigint, type text, item text, value numeric, channel text,
    campaign_id bigint, occurred_at timestamptz, properties jsonb
) ON COMMIT DELETE ROWS
"""

# Store the new events and queue them for the features consumer in one statement; an
# event_id already stored (a resend) is skipped, and so is a repeat inside the batch.
_EVENT_INSERT = """
WITH ins AS (
    INSERT INTO profiles_event (event_id, customer_id, type, item_external_id, value, channel,
        campaign_id, occurred_at, received_at, properties)
    SELECT event_id, customer_id, type, item, value, channel, campaign_id, occurred_at, %s,
        properties
    FROM profiles_event_stage
    ON CONFLICT (event_id) DO NOTHING
    RETURNING id
)
INSERT INTO profiles_featurebacklog (event_pk) SELECT id FROM ins
"""

FEATURES_BATCH_SIZE = 20_000
FEATURES_LOCK = 7_300_001
REBUILD_CUSTOMERS_PER_CHUNK = 5_000  # pg advisory lock: one features consumer at a time


def customers_resolve(*, external_ids: Sequence[str]) -> tuple[dict[str, int], int]:
    """Map storefront ids (or aliases) to customer pks, creating anonymous profiles for
    unknown ids. Returns the mapping and how many customers were created.

    An alias never equals a live customer's id (a merge deletes the aliased profile), so
    customers are looked up first, then aliases for what is left.
    """
    wanted = sorted(set(external_ids))
    lookups = (
        "SELECT external_id, id FROM profiles_customer WHERE external_id = ANY(%s)",
        "SELECT alias, customer_id FROM profiles_customeralias WHERE alias = ANY(%s)",
    )
    mapping: dict[str, int] = {}
    created = 0
    with _bulk_cursor() as cursor:
        for query in lookups:
            missing = [i for i in wanted if i not in mapping]
            if not missing:
                break
            cursor.execute(query, [missing], binary=True)
            mapping.update(cursor.fetchall())
        missing = [i for i in wanted if i not in mapping]
        if missing:
            cursor.execute(_CUSTOMER_INSERT, {"ids": missing, "now": timezone.now()}, binary=True)
            inserted = dict(cursor.fetchall())
            created = len(inserted)
            mapping.update(inserted)
            raced = [i for i in missing if i not in inserted]
            if raced:  # created by a concurrent request since our first look
                cursor.execute(lookups[0], [raced], binary=True)
                mapping.update(cursor.fetchall())
    return mapping, created


def events_ingest(
    *, rows: Sequence[EventRow], consent_source: str = ConsentSource.API
) -> IngestResult:
    """Store a validated batch once (event_id is the idempotency key) and queue the new
    events for the features consumer, in one transaction; then wake the consumer."""
    from profiles.tasks import features_update_schedule

    received_at = timezone.now()
    with transaction.atomic():
        customer_pks, created = customers_resolve(external_ids=[r.customer_id for r in rows])
        with _bulk_cursor() as cursor:
            cursor.execute(_EVENT_STAGE)
            # Empty already unless an outer transaction (a test, a caller) is still open.
            cursor.execute("TRUNCATE profiles_event_stage")
            with cursor.copy(
                "COPY profiles_event_stage (event_id, customer_id, type, item, value, channel, "
                "campaign_id, occurred_at, properties) FROM STDIN"
            ) as copy:
                for r in rows:
                    copy.write_row(
                        (
                            r.event_id,
                            customer_pks[r.customer_id],
                            r.type,
                            r.item_id,
                            r.value,
                            r.channel,
                            r.campaign_id,
                            r.occurred_at,
                            _dumps(r.properties),
                        )
                    )
            cursor.execute(_EVENT_INSERT, [received_at])
            accepted = cursor.rowcount
        _unsubscribes_apply(rows, customer_pks, source=consent_source)
        if accepted:
            transaction.on_commit(features_update_schedule)
    return IngestResult(
        accepted=accepted, duplicates=len(rows) - accepted, customers_created=created
    )


def _unsubscribes_apply(
    rows: Sequence[EventRow], customer_pks: dict[str, int], *, source: str
) -> None:
    """An `unsubscribe` event withdraws consent: the purpose named in its properties, else
    the one of its channel, else marketing email. Resends are harmless (no-op)."""
    from profiles.consent import CHANNEL_PURPOSE, consent_set

    for row in rows:
        if row.type != "unsubscribe":
            continue
        purpose = row.properties.get("purpose") or CHANNEL_PURPOSE.get(
            row.channel, ConsentPurpose.MARKETING_EMAIL
        )
        if purpose not in ConsentPurpose.values:
            continue
        consent_set(
            customer=Customer(pk=customer_pks[row.customer_id]),
            purpose=purpose,
            granted=False,
            source=source,
            actor="event",
            at=row.occurred_at,
        )


@dataclass(frozen=True)
class FeaturesUpdateResult:
    events: int
    customers: int
    locked_out: bool = False


def features_update_pending(*, limit: int = FEATURES_BATCH_SIZE) -> FeaturesUpdateResult:
    """Fold up to `limit` queued events into their customers' features.

    One consumer at a time (an advisory lock): the backlog rows are deleted in the same
    transaction that writes the features, so a crash or a redelivered task counts nothing
    twice. Returns locked_out=True when another consumer holds the lock.
    """
    config = feature_config()
    with transaction.atomic(), _bulk_cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [FEATURES_LOCK])
        if not cursor.fetchone()[0]:
            return FeaturesUpdateResult(events=0, customers=0, locked_out=True)
        cursor.execute(
            """
            WITH d AS (
                DELETE FROM profiles_featurebacklog WHERE event_pk IN (
                    SELECT event_pk FROM profiles_featurebacklog ORDER BY event_pk LIMIT %s)
                RETURNING event_pk
            )
            SELECT e.customer_id, extract(epoch FROM e.occurred_at)::float8, e.type,
                   e.item_external_id, e.value::float8, e.channel
            FROM profiles_event e JOIN d ON e.id = d.event_pk
            """,
            [limit],
        )
        rows = cursor.fetchall()
        if not rows:
            return FeaturesUpdateResult(events=0, customers=0)
        categories = _item_categories(r[3] for r in rows)
        by_customer: dict[int, list[FeatureEvent]] = defaultdict(list)
        for customer_pk, occurred_at, kind, item, value, channel in rows:
            by_customer[customer_pk].append(
                FeatureEvent(occurred_at, kind, item, categories.get(item, ""), value, channel)
            )
        pks = sorted(by_customer)
        cursor.execute(
            "SELECT customer_id, state::text FROM profiles_customerfeatures "
            "WHERE customer_id = ANY(%s)",
            [pks],
        )
        states = {pk: _json(state) for pk, state in cursor.fetchall()}
        now = timezone.now()
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS profiles_features_stage "
            "(customer_id bigint, state jsonb, n int) ON COMMIT DELETE ROWS"
        )
        cursor.execute("TRUNCATE profiles_features_stage")
        with cursor.copy("COPY profiles_features_stage FROM STDIN") as copy:
            for pk in pks:
                events = by_customer[pk]
                state = features_apply(states.get(pk), events, config=config, in_place=True)
                copy.write_row((pk, _dumps(state), len(events)))
        cursor.execute(
            """
            INSERT INTO profiles_customerfeatures (customer_id, state, events_applied, updated_at)
            SELECT customer_id, state, n, %s FROM profiles_features_stage
            ON CONFLICT (customer_id) DO UPDATE SET state = EXCLUDED.state,
                events_applied = profiles_customerfeatures.events_applied
                    + EXCLUDED.events_applied,
                updated_at = EXCLUDED.updated_at
            """,
            [now],
        )
    return FeaturesUpdateResult(events=len(rows), customers=len(pks))


def features_backlog_size() -> int:
    return FeatureBacklog.objects.count()


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
        with _bulk_cursor() as cursor:
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


@dataclass(frozen=True)
class FeaturesRebuildReport:
    customers: int
    events: int
    drifted: int
    drift_fields: dict[str, int]
    repaired: bool
    samples: list[dict]


def features_rebuild(*, repair: bool = True, sample_size: int = 10) -> FeaturesRebuildReport:
    """Recompute every customer's features from the whole history and compare them with the
    incremental values (the nightly drift check); with `repair`, store the recomputed ones.

    Holds the features lock so the consumer waits, and reads one snapshot: the queued events
    it covers leave the backlog in the same transaction.
    """
    config = feature_config()
    outermost = not connection.in_atomic_block
    drift_fields: dict[str, int] = defaultdict(int)
    samples: list[dict] = []
    customers = events_total = drifted = 0
    with transaction.atomic(), _bulk_cursor() as cursor:
        if outermost:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [FEATURES_LOCK])
        cursor.execute("DELETE FROM profiles_featurebacklog")
        cursor.execute("SELECT customer_id, state::text FROM profiles_customerfeatures")
        stored = {pk: _json(state) for pk, state in cursor.fetchall()}
        categories = dict(_item_categories_all())
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS profiles_features_stage "
            "(customer_id bigint, state jsonb, n int) ON COMMIT DELETE ROWS"
        )
        cursor.execute("TRUNCATE profiles_features_stage")
        cursor.execute("SELECT min(customer_id), max(customer_id) FROM profiles_event")
        low, high = cursor.fetchone()
        chunk_low = low
        while chunk_low is not None and chunk_low <= high:
            chunk_high = chunk_low + REBUILD_CUSTOMERS_PER_CHUNK
            cursor.execute(
                "SELECT customer_id, occurred_at, type, item_external_id, value::float8, "
                "channel FROM profiles_event WHERE customer_id >= %s AND customer_id < %s "
                "ORDER BY customer_id, occurred_at, id",
                [chunk_low, chunk_high],
            )
            by_customer: dict[int, list[FeatureEvent]] = defaultdict(list)
            for customer_pk, occurred_at, kind, item, value, channel in cursor.fetchall():
                by_customer[customer_pk].append(
                    FeatureEvent(occurred_at, kind, item, categories.get(item, ""), value, channel)
                )
            to_store = []
            for pk, events in by_customer.items():
                state = features_apply(None, events, config=config)
                customers += 1
                events_total += len(events)
                diff = features_drift(stored.get(pk) or features_empty(), state)
                if diff:
                    drifted += 1
                    for name in diff:
                        drift_fields[name] += 1
                    if len(samples) < sample_size:
                        samples.append({"customer_pk": pk, "fields": sorted(diff)})
                if repair and (diff or pk not in stored):
                    to_store.append((pk, _dumps(state), len(events)))
            if to_store:
                with cursor.copy("COPY profiles_features_stage FROM STDIN") as copy:
                    for row in to_store:
                        copy.write_row(row)
            chunk_low = chunk_high
        if repair:
            cursor.execute(
                """
                INSERT INTO profiles_customerfeatures
                    (customer_id, state, events_applied, updated_at)
                SELECT customer_id, state, n, %s FROM profiles_features_stage
                ON CONFLICT (customer_id) DO UPDATE SET state = EXCLUDED.state,
                    events_applied = EXCLUDED.events_applied, updated_at = EXCLUDED.updated_at
                """,
                [timezone.now()],
            )
    report = FeaturesRebuildReport(
        customers=customers,
        events=events_total,
        drifted=drifted,
        drift_fields=dict(drift_fields),
        repaired=repair,
        samples=samples,
    )
    logger.info("features rebuilt", extra={"customers": customers, "drifted": drifted})
    return report


def _item_categories_all() -> dict[str, str]:
    if _item_category_lookup is None:
        return {}
    return _item_category_lookup(None)


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
