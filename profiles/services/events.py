"""Event ingestion: resolve customers, store each event once, queue it for the features."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from profiles.ingest import EventRow
from profiles.models import (
    ConsentPurpose,
    ConsentSource,
    Customer,
)
from profiles.services._db import bulk_cursor, json_dumps


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


# Run after the commit of every ingest that stored new events (no arguments): how other apps
# react to the stream in near real time without profiles importing them (campaigns wakes its
# journey consumer). Registered from an AppConfig.ready().
_EVENTS_COMMITTED_HOOKS: list[Callable[[], None]] = []


def events_committed_hook_add(hook: Callable[[], None]) -> None:
    """Run `hook` after each ingest that stored new events commits; it should only enqueue
    (debounced), as it runs in the request. Adding the same hook twice adds it once."""
    if hook not in _EVENTS_COMMITTED_HOOKS:
        _EVENTS_COMMITTED_HOOKS.append(hook)


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
    with bulk_cursor() as cursor:
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
        with bulk_cursor() as cursor:
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
                            json_dumps(r.properties),
                        )
                    )
            cursor.execute(_EVENT_INSERT, [received_at])
            accepted = cursor.rowcount
        _unsubscribes_apply(rows, customer_pks, source=consent_source)
        if accepted:
            # Robust: the events are stored by now, so a wake-up failing (Redis or the broker
            # down) is logged, not turned into an error; beat runs every consumer each minute.
            for hook in (features_update_schedule, *_EVENTS_COMMITTED_HOOKS):
                transaction.on_commit(hook, robust=True)
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
