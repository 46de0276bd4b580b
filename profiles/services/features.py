"""Profile features: the queued-events consumer, the recompute and the nightly rebuild."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from profiles.features import (
    FeatureConfig,
    FeatureEvent,
    features_apply,
    features_drift,
    features_empty,
)
from profiles.models import (
    Customer,
    Event,
    FeatureBacklog,
)
from profiles.services._db import bulk_cursor, json_dumps, json_value

logger = logging.getLogger(__name__)


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


FEATURES_BATCH_SIZE = 20_000
FEATURES_LOCK = 7_300_001  # pg advisory lock: one features consumer at a time
REBUILD_CUSTOMERS_PER_CHUNK = 5_000


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
    with transaction.atomic(), bulk_cursor() as cursor:
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
        states = {pk: json_value(state) for pk, state in cursor.fetchall()}
        now = timezone.now()
        _stage_empty(cursor)
        with cursor.copy("COPY profiles_features_stage FROM STDIN") as copy:
            for pk in pks:
                events = by_customer[pk]
                state = features_apply(states.get(pk), events, config=config, in_place=True)
                copy.write_row((pk, json_dumps(state), len(events)))
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


def _stage_empty(cursor) -> None:
    """The session's staging table for computed states (customer_id, state, n events),
    empty: it empties itself at commit, unless an outer transaction is still open."""
    cursor.execute(
        "CREATE TEMP TABLE IF NOT EXISTS profiles_features_stage "
        "(customer_id bigint, state jsonb, n int) ON COMMIT DELETE ROWS"
    )
    cursor.execute("TRUNCATE profiles_features_stage")


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
    with transaction.atomic(), bulk_cursor() as cursor:
        if outermost:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [FEATURES_LOCK])
        cursor.execute("DELETE FROM profiles_featurebacklog")
        cursor.execute("SELECT customer_id, state::text FROM profiles_customerfeatures")
        stored = {pk: json_value(state) for pk, state in cursor.fetchall()}
        categories = _item_categories_all()
        _stage_empty(cursor)
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
                    to_store.append((pk, json_dumps(state), len(events)))
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
