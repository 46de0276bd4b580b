"""The demo's recommendation traffic: lists served to simulated customers, and their clicks.

The dashboard's recommendation panel counts what the recommendations API serves and the
clicks on recommended items; the simulated store has neither. This step, run after
`train_models` (and `demo_campaigns`), serves lists to a sample of the simulated customers over
the last few days before now and simulates their clicks from the store's hidden tastes:

- each list comes from `recommender.serving.recommend`, as for `GET /api/v1/customers/{id}/
  recommendations` (default strategy, k items, purchases excluded), and is counted by
  `marketing.rollups.rollup_recommendations_served` at its simulated time (lists, impressions,
  category diversity, the HyperLogLogs of distinct recommended items);
- a customer clicks at most one item of a list, with a probability that rises with their true
  affinity for the best item shown, the clicked one likelier the more they like it, so the
  click-through rate is as good as the model's lists: a model that learned the tastes gets
  clicks, a popular list fewer (the step also reports the CTR expected had the same customers
  been shown the popular list, which is not served nor recorded);
- the clicks are `click` events with `properties={"rec_id": ..., "source": "recommendation"}`,
  ingested through `profiles.services.events_ingest`, so the event consumer and
  `rollups_rebuild` count them as clicks on recommendations.

Which customers get a list, when, is drawn from the store's seed alone (not the model), and
each list's possible click has an event id derived from the list's key. Before anything is
recorded the step looks those ids up: if any is stored, the step ran for this store already
and does nothing (running the demo setup twice changes nothing). The clicks are ingested first
and the served counts recorded after, then flushed into the rollups (`rollups_flush`, so the
`rollups_rebuild` that follows in the demo keeps them): a crash in between leaves the served
counts short, never doubled. With no click drawn at all nothing is recorded.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from django.utils import timezone

from marketing.rollups import rollup_recommendations_served, rollups_flush
from marketing.simulation.store import StoreTruth
from profiles.ingest import EventRow
from profiles.models import Event, EventType
from profiles.services import events_ingest
from recommender import serving

logger = logging.getLogger(__name__)

EVENT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "marketing.simulation.demo-recommendations")
DAYS = 7
LISTS_PER_DAY = 200
K = 10
# P(a shown item is clicked) = sigmoid(base + affinity * the customer's true affinity for it,
# which is standardised per customer, - position * its slot).
CLICK_BASE, CLICK_AFFINITY, CLICK_POSITION = -4.0, 1.2, 0.1
CLICK_DELAY_MEAN_SECONDS = 45.0
ID_CHUNK = 10_000


@dataclass(frozen=True)
class ListPlan:
    """When which customers get a list: drawn from the store's seed alone."""

    customers: np.ndarray  # customer indexes into the truth
    served_at: list[datetime]
    keys: list[str]  # one per list: the click event id derives from it


@dataclass(frozen=True)
class ListClicks:
    clicked: np.ndarray  # (n, k) bool: the shown item in this slot was clicked
    p_click: np.ndarray  # (n, k) its probability (0 where nothing is shown)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _seed(seed: int, key: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{seed}|{key}".encode(), digest_size=8).digest())


def click_event_id(key: str, slot: int) -> uuid.UUID:
    """The id of the click on the item in `slot` of the list `key`."""
    return uuid.uuid5(EVENT_NAMESPACE, f"{key}|{slot}|click")


def _served_before(keys: list[str], k: int) -> bool:
    """Whether any click the plan's lists may get is stored (ids drawn from the plan alone,
    so a model trained anew meanwhile does not matter)."""
    ids = [click_event_id(key, slot) for key in keys for slot in range(k)]
    return any(
        Event.objects.filter(event_id__in=ids[i : i + ID_CHUNK]).exists()
        for i in range(0, len(ids), ID_CHUNK)
    )


def lists_plan(
    *, truth: StoreTruth, end: datetime, days: int = DAYS, per_day: int = LISTS_PER_DAY
) -> ListPlan:
    """`per_day` lists in each of the `days` 24-hour windows before `end`, to customers who
    had signed up by then (uniformly drawn, a customer may get several lists)."""
    rng = np.random.default_rng(_seed(truth.config.seed, "demo-recommendations-plan"))
    customers: list[int] = []
    served_at: list[datetime] = []
    keys: list[str] = []
    external = truth.customer_external_ids
    for day in range(days):
        offsets = np.sort(rng.random(per_day) * 86_400.0)
        picks = rng.integers(0, truth.n_customers, per_day)
        window_start = end - timedelta(days=day + 1)
        for n, (offset, customer) in enumerate(zip(offsets, picks, strict=True)):
            at = window_start + timedelta(seconds=float(offset))
            if truth.signup_us[customer] > at.timestamp() * 1_000_000:
                continue  # not a customer yet
            customers.append(int(customer))
            served_at.append(at)
            keys.append(f"{external[customer]}|day-{day}|{n}")
    return ListPlan(customers=np.array(customers, dtype=np.int64), served_at=served_at, keys=keys)


def clicks_draw(*, affinity: np.ndarray, shown: np.ndarray, rng: np.random.Generator) -> ListClicks:
    """Each shown item is clicked or not (pure numpy), the likelier the more the customer
    truly likes it and the higher up it is. `affinity` (n, items) is each list's customer's
    true affinity, `shown` (n, k) the item indexes shown (-1 where fewer)."""
    rows = np.arange(len(affinity))
    has = shown >= 0
    shown_aff = affinity[rows[:, None], np.maximum(shown, 0)]
    position = np.arange(shown.shape[1])[None, :]
    logit = CLICK_BASE + CLICK_AFFINITY * shown_aff - CLICK_POSITION * position
    p_click = np.where(has, _sigmoid(logit), 0.0)
    return ListClicks(clicked=rng.random(shown.shape) < p_click, p_click=p_click)


def _shown(results: list[serving.Recommendation], item_index: dict[str, int], k: int) -> np.ndarray:
    shown = np.full((len(results), k), -1, dtype=np.int64)
    for r, result in enumerate(results):
        for slot, scored in enumerate(result.items[:k]):
            shown[r, slot] = item_index.get(scored.item_id, -1)
    return shown


def demo_recommendations_create(
    *,
    truth: StoreTruth,
    days: int = DAYS,
    per_day: int = LISTS_PER_DAY,
    k: int = K,
    now: datetime | None = None,
) -> dict[str, float]:
    """Serve and count the demo's recommendation lists and ingest their clicks, once per
    store (see the module docstring). The store must be the one `truth` describes, with a
    trained model. Returns what was done ({} when it was done before)."""
    now = now or timezone.now()
    # The days before now (the demo's store ends today): the dashboard's windows show them.
    plan = lists_plan(truth=truth, end=now, days=days, per_day=per_day)
    if not plan.keys:
        return {}
    if _served_before(plan.keys, k):
        return {}
    external = truth.customer_external_ids
    results = [serving.recommend(customer_external_id=external[c], k=k) for c in plan.customers]
    # The baseline: the popular list (an unknown customer's, without exclusions) to all.
    popular = serving.recommend(customer_external_id="", k=k, strategy="popular")
    item_index = {e: i for i, e in enumerate(truth.item_external_ids)}
    affinity = truth.true_affinity_block(plan.customers)
    clicks = clicks_draw(
        affinity=affinity,
        shown=_shown(results, item_index, k),
        rng=np.random.default_rng(_seed(truth.config.seed, "demo-recommendations-clicks")),
    )
    baseline = clicks_draw(
        affinity=affinity,
        shown=_shown([popular] * len(results), item_index, k),
        rng=np.random.default_rng(0),
    )
    delays = np.random.default_rng(_seed(truth.config.seed, "demo-recommendations-delay"))
    rows: list[EventRow] = []
    for r, slot in zip(*np.nonzero(clicks.clicked), strict=True):
        key = plan.keys[r]
        delay = 5.0 + float(delays.exponential(CLICK_DELAY_MEAN_SECONDS))
        rows.append(
            EventRow(
                event_id=click_event_id(key, int(slot)),
                customer_id=external[plan.customers[r]],
                type=EventType.CLICK,
                item_id=results[r].items[int(slot)].item_id,
                value=None,
                channel="web",
                campaign_id=None,
                occurred_at=min(plan.served_at[r] + timedelta(seconds=delay), now),
                properties={"rec_id": key, "source": "recommendation"},
            )
        )
    if not rows:
        return {}
    accepted = events_ingest(rows=rows).accepted
    impressions = 0
    for result, served_at in zip(results, plan.served_at, strict=True):
        items = [(item_id, result.catalog[item_id].category) for item_id, _, _ in result.items]
        impressions += len(items)
        rollup_recommendations_served(items=items, now=served_at)
    rollups_flush(now=now)
    popular_shown = len(popular.items) * len(results)
    counts = {
        "lists": len(results),
        "personalized": sum(r.personalized for r in results),
        "impressions": impressions,
        "clicks": len(rows),
        "clicks_new": accepted,
        "ctr": round(len(rows) / impressions, 4) if impressions else 0.0,
        "expected_ctr": round(float(clicks.p_click.sum()) / impressions, 4) if impressions else 0.0,
        "expected_ctr_popular": round(float(baseline.p_click.sum()) / max(popular_shown, 1), 4),
    }
    logger.info("demo recommendations", extra=counts)
    return counts
