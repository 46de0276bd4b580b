"""Load a simulated store into PostgreSQL: the Django side of marketing.simulation.

One transaction: with `reset`, the simulated tables are truncated in it too, so a failed load
leaves the previous data in place.
"""

import time
from collections.abc import Callable

import numpy as np
from django.db import connection, models, transaction

from marketing.common.errors import ConflictError
from marketing.simulation.demo_objects import demo_objects_create
from marketing.simulation.events import (
    EVENT_CHANNELS,
    EVENT_TYPES,
    estimate_events,
    generate_events,
)
from marketing.simulation.store import (
    BRANDS,
    CATEGORIES,
    COUNTRIES,
    ENDPOINT_CHANNELS,
    FIRST_NAMES,
    LAST_NAMES,
    StoreConfig,
    StoreTruth,
    generate_truth,
)
from profiles.bulk import Coded, customers_copy, endpoints_copy, events_copy
from profiles.models import ChannelEndpoint, Customer, Event
from recommender.bulk import items_copy
from recommender.models import Item

# Children first: the order TRUNCATE lists them in does not matter, the order we report does.
SIMULATED_MODELS: tuple[type[models.Model], ...] = (Event, ChannelEndpoint, Customer, Item)
EVENT_CHUNK_SIZE = 250_000

Progress = Callable[[str, int, int], None]


class StoreNotEmptyError(ConflictError):
    code = "simulated_store_not_empty"


class StoreResetBlockedError(ConflictError):
    code = "simulated_store_reset_blocked"


def store_simulate(
    *, config: StoreConfig, reset: bool = False, progress: Progress | None = None
) -> dict[str, int]:
    """Generate the store for `config` and write it; returns row counts per kind.

    `progress(stage, done, total)` is called after each step and each event chunk.
    """
    started = time.perf_counter()
    truth = generate_truth(config)
    report = progress or (lambda stage, done, total: None)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")
            cursor.execute(
                "LOCK TABLE profiles_customer, recommender_item IN SHARE ROW EXCLUSIVE MODE"
            )
        if reset:
            _truncate_simulated()
        else:
            _ensure_empty()
        counts = _load(truth, report)
        counts["consents"] = _consents_create()
        counts.update(demo_objects_create(truth=truth))
    with connection.cursor() as cursor:
        for model in SIMULATED_MODELS:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
    counts["milliseconds"] = round((time.perf_counter() - started) * 1000)
    return counts


def _ensure_empty() -> None:
    customers = Customer.objects.count()
    items = Item.objects.count()
    if customers or items:
        raise StoreNotEmptyError(
            f"The store already has {customers} customers and {items} items; "
            "reset it to simulate a new one.",
            extra={"customers": customers, "items": items},
        )


def _dependent_relations(model: type[models.Model]):
    """Foreign keys from models outside the simulated set into `model` (M2M tables too)."""
    for rel in model._meta.get_fields(include_hidden=True):
        reverse_fk = rel.auto_created and not rel.concrete and (rel.one_to_many or rel.one_to_one)
        if reverse_fk and rel.related_model not in SIMULATED_MODELS:
            yield rel


def _truncate_simulated() -> None:
    """Empty the simulated tables and what depends on them, honouring on_delete.

    CASCADE dependents (recursively) are emptied with them, SET_NULL references are cleared
    (offers keep existing without their item), PROTECT ones block the reset. PostgreSQL will
    not TRUNCATE a table that any other table references, so tables behind a SET_NULL
    reference are emptied with DELETE (the catalog is small) and the rest with one TRUNCATE
    that lists every table explicitly, without CASCADE: a reference we did not expect fails
    the load instead of silently emptying a table.
    """
    tables: list[type[models.Model]] = []
    set_null: list[models.ForeignObjectRel] = []
    pending = list(SIMULATED_MODELS)
    while pending:
        model = pending.pop(0)
        if model in tables:
            continue
        tables.append(model)
        for rel in _dependent_relations(model):
            if rel.on_delete is models.CASCADE:
                pending.append(rel.related_model)
            elif rel.on_delete is models.SET_NULL:
                set_null.append(rel)
            elif rel.related_model.objects.filter(**{f"{rel.field.name}__isnull": False}).exists():
                raise StoreResetBlockedError(
                    f"{rel.related_model._meta.label} rows refer to {model._meta.label}; "
                    "delete them before resetting the store.",
                    extra={"model": rel.related_model._meta.label},
                )
    set_null = [rel for rel in set_null if rel.related_model not in tables]
    for rel in set_null:
        rel.related_model._default_manager.filter(**{f"{rel.field.name}__isnull": False}).update(
            **{rel.field.name: None}
        )
    deleted = {rel.model for rel in set_null}
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        # TRUNCATE refuses tables with queued deferred FK checks (rows written earlier in
        # an enclosing transaction): run those checks now, then defer again (Django's FKs
        # are all INITIALLY DEFERRED).
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        names = ", ".join(quote(m._meta.db_table) for m in tables if m not in deleted)
        cursor.execute(f"TRUNCATE {names}")
        for model in deleted:
            cursor.execute(f"DELETE FROM {quote(model._meta.db_table)}")  # noqa: S608 - model table


# The simulated customers' consents: each channel with an endpoint is granted, or withdrawn
# where the endpoint opted out; personalization is granted by nine in ten (by a hash of the
# id, so the same customers each run). Each gets its audit entry.
_CONSENTS_SQL = """
WITH wanted AS (
    SELECT DISTINCT ON (customer_id, purpose) customer_id, purpose, granted, changed_at
    FROM (
        SELECT e.customer_id,
               CASE e.channel WHEN 'email' THEN 'marketing_email' WHEN 'sms' THEN 'sms'
                              ELSE 'push' END AS purpose,
               NOT e.opted_out AS granted, e.created_at AS changed_at
        FROM profiles_channelendpoint e
        UNION ALL
        SELECT c.id, 'personalization', true, c.created_at
        FROM profiles_customer c WHERE abs(hashtext(c.external_id)) %% 10 <> 0
    ) AS x
    ORDER BY customer_id, purpose, granted
), consents AS (
    INSERT INTO profiles_consent (customer_id, purpose, granted, source, changed_at)
    SELECT customer_id, purpose, granted, 'simulation', changed_at FROM wanted
    RETURNING customer_id, purpose, granted, changed_at
)
INSERT INTO profiles_consentchange
    (customer_id, purpose, granted, source, actor, note, changed_at)
SELECT customer_id, purpose, granted, 'simulation', 'simulate_store', '', changed_at
FROM consents
"""


def _consents_create() -> int:
    with connection.cursor() as cursor:
        cursor.execute(_CONSENTS_SQL, [])
        return cursor.rowcount


def _load(truth: StoreTruth, report: Progress) -> dict[str, int]:
    cfg = truth.config
    item_ext = truth.item_external_ids
    items_copy(
        external_ids=item_ext,
        titles=truth.item_titles(),
        created_at_us=truth.item_release_us,
        categories=Coded(truth.item_category, CATEGORIES),
        brands=Coded(truth.item_brand, BRANDS),
        prices=truth.item_price,
        in_stock=truth.item_in_stock,
        image_urls=[f"https://img.example.com/items/{e}.jpg" for e in item_ext],
        deep_links=[f"shop://item/{e}" for e in item_ext],
    )
    report("items", truth.n_items, truth.n_items)

    has_email = truth.has_endpoint[:, 0]
    emails = [
        truth.endpoint_address(i, 0) if has_email[i] else "" for i in range(truth.n_customers)
    ]
    customer_pks = customers_copy(
        external_ids=truth.customer_external_ids,
        created_at_us=truth.signup_us,
        emails=emails,
        phones=[
            truth.endpoint_address(i, 1) if h else ""
            for i, h in enumerate(truth.has_endpoint[:, 1].tolist())
        ],
        first_names=Coded(truth.first_name, FIRST_NAMES),
        last_names=Coded(truth.last_name, LAST_NAMES),
        countries=Coded(truth.country, [c[0] for c in COUNTRIES]),
        languages=Coded(truth.country, [c[1] for c in COUNTRIES]),
        timezones=Coded(truth.country, [c[2] for c in COUNTRIES]),
    )
    report("customers", truth.n_customers, truth.n_customers)

    rows, channels = np.nonzero(truth.has_endpoint)
    n_endpoints = endpoints_copy(
        customer_ids=customer_pks[rows],
        channels=Coded(channels, ENDPOINT_CHANNELS),
        addresses=[
            truth.endpoint_address(r, c)
            for r, c in zip(rows.tolist(), channels.tolist(), strict=True)
        ],
        opted_out=truth.opted_out[rows, channels],
        created_at_us=truth.signup_us[rows],
    )
    report("endpoints", n_endpoints, n_endpoints)

    offer_props = [f'{{"offer": "{item_ext[i]}"}}' for i in truth.offer_items]
    expected = estimate_events(truth.config, truth)
    n_events, n_purchases = 0, 0
    for chunk in generate_events(truth, chunk_size=EVENT_CHUNK_SIZE):
        n_events += events_copy(
            customer_ids=customer_pks[chunk.customer],
            types=Coded(chunk.type, EVENT_TYPES),
            occurred_at_us=chunk.occurred_at,
            event_ids=chunk.event_id,
            item_external_ids=Coded(chunk.item, item_ext),
            values=chunk.value,
            channels=Coded(chunk.channel, EVENT_CHANNELS),
            campaign_ids=chunk.campaign,
            properties=Coded(chunk.offer, offer_props, missing="{}"),
        )
        n_purchases += int((chunk.type == EVENT_TYPES.index("purchase")).sum())
        report("events", n_events, max(expected, n_events))
    return {
        "customers": truth.n_customers,
        "items": truth.n_items,
        "endpoints": n_endpoints,
        "events": n_events,
        "purchases": n_purchases,
        "days": cfg.days,
    }
