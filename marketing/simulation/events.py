"""The simulated store's event history, drawn from the hidden truth. Pure numpy, no Django.

Customers are processed in fixed blocks, each with its own generator seeded from
(seed, block), so the output is the same whatever `chunk_size` the caller asks for.
Every step is vectorized over a block; there is no loop over events.
"""

from collections.abc import Iterator
from dataclasses import dataclass, fields

import numpy as np

from marketing.simulation.store import (
    US_PER_DAY,
    StoreConfig,
    StoreTruth,
    generate_truth,
)

EVENT_TYPES = (
    "view", "click", "add_to_cart", "purchase", "offer_shown", "offer_click",
    "email_open", "email_click", "sms_click", "push_open", "unsubscribe",
)  # fmt: skip
EVENT_CHANNELS = ("web", "app", "email", "sms", "push")
(VIEW, CLICK, CART, PURCHASE, OFFER_SHOWN, OFFER_CLICK, EMAIL_OPEN, EMAIL_CLICK, SMS_CLICK,
 PUSH_OPEN, UNSUBSCRIBE) = range(len(EVENT_TYPES))  # fmt: skip
WEB, APP = 0, 1
ENDPOINT_EVENT_CHANNEL = np.array([2, 3, 4])  # email, sms, push endpoints -> event channel
# Campaigns: one send a week, channels in this rotation; (response type, base response rate).
CAMPAIGN_ROTATION = (0, 2, 0, 1)
CAMPAIGN_RESPONSE = {0: (EMAIL_OPEN, 0.25), 1: (SMS_CLICK, 0.06), 2: (PUSH_OPEN, 0.10)}
EMAIL_CLICK_RATE = 0.3
MEAN_EXTRA_VIEWS = 2.6
OFFER_SHOWN_RATE = 0.3
# Average events per session (views, funnel, offers) and per customer-campaign, for estimates.
EVENTS_PER_SESSION = 5.33
SECOND = 1.0 / 86_400


@dataclass(frozen=True)
class EventChunk:
    customer: np.ndarray  # int64 customer index
    item: np.ndarray  # int64 item index, -1 for none
    type: np.ndarray  # int8 index into EVENT_TYPES
    value: np.ndarray  # float64 revenue for purchases, NaN otherwise
    channel: np.ndarray  # int8 index into EVENT_CHANNELS
    occurred_at: np.ndarray  # int64 epoch microseconds
    campaign: np.ndarray  # int64 campaign number (1-based), -1 for none
    offer: np.ndarray  # int8 offer slot into truth.offer_items, -1 for none
    event_id: np.ndarray  # (n, 16) uint8, a version-4 UUID's bytes

    def __len__(self) -> int:
        return len(self.customer)

    @classmethod
    def concat(cls, chunks: list["EventChunk"]) -> "EventChunk":
        return cls(
            **{f.name: np.concatenate([getattr(c, f.name) for c in chunks]) for f in fields(cls)}
        )


def campaign_schedule(config: StoreConfig) -> list[tuple[int, int, float]]:
    """(campaign number, endpoint channel, send day): weekly sends at 10:00 from day 3."""
    sends: list[tuple[int, int, float]] = []
    day = 3
    while day < config.days:
        k = len(sends)
        sends.append((k + 1, CAMPAIGN_ROTATION[k % len(CAMPAIGN_ROTATION)], day + 10 / 24))
        day += 7
    return sends


def _block_size(n_items: int) -> int:
    return int(max(16, min(1024, 2**22 // max(n_items, 1))))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _sample_items(rng, flat_cdf, rows, times, release_days, n_items, rounds=8) -> np.ndarray:
    """Inverse-CDF sampling of one item per row; items not yet released are redrawn."""
    items = np.full(len(rows), -1, dtype=np.int64)
    todo = np.arange(len(rows))
    for _ in range(rounds):
        if not len(todo):
            break
        r = rows[todo]
        pos = np.searchsorted(flat_cdf, r + rng.random(len(todo)), side="right")
        item = np.clip(pos - r * n_items, 0, n_items - 1)
        ok = release_days[item] <= times[todo]
        items[todo[ok]] = item[ok]
        todo = todo[~ok]
    return items


class _Parts:
    """Collects event columns from the generator's steps for one block."""

    def __init__(self) -> None:
        self.cols: dict[str, list[np.ndarray]] = {
            k: [] for k in ("row", "item", "type", "value", "channel", "t", "campaign", "offer")
        }

    def add(self, row, type_, t, channel, item=None, value=None, campaign=None, offer=None):
        n = len(row)
        self.cols["row"].append(row)
        self.cols["type"].append(np.full(n, type_, dtype=np.int8))
        self.cols["t"].append(t)
        self.cols["channel"].append(np.broadcast_to(np.asarray(channel, np.int8), (n,)))
        self.cols["item"].append(np.full(n, -1, np.int64) if item is None else item)
        self.cols["value"].append(np.full(n, np.nan) if value is None else value)
        self.cols["campaign"].append(
            np.full(n, -1, np.int64) if campaign is None else np.broadcast_to(campaign, (n,))
        )
        self.cols["offer"].append(np.full(n, -1, np.int8) if offer is None else offer)

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: np.concatenate(v) if v else np.zeros(0) for k, v in self.cols.items()}


def _block_events(truth: StoreTruth, block: int, lo: int, hi: int) -> EventChunk:
    cfg = truth.config
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 1, block]))
    n, n_items, days = hi - lo, truth.n_items, float(cfg.days)
    affinity = truth.true_affinity_block(slice(lo, hi))
    logits = cfg.view_temperature * affinity
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    cdf = np.cumsum(weights, axis=1)
    cdf /= cdf[:, -1:]
    cdf += np.arange(n)[:, None]  # row r lives in (r, r + 1]: one sorted array for the block
    flat_cdf = cdf.ravel()
    release = (truth.item_release_us - cfg.start_us) / US_PER_DAY
    active_from = np.maximum((truth.signup_us[lo:hi] - cfg.start_us) / US_PER_DAY, 0.0)
    active_days = days - active_from
    parts = _Parts()

    # Sessions: Poisson in time while signed up, at the customer's usual hour.
    s_row = np.repeat(np.arange(n), rng.poisson(truth.activity[lo:hi] * active_days))
    ns = len(s_row)
    day = active_from[s_row] + rng.random(ns) * active_days[s_row]
    hour = (truth.preferred_hour[lo:hi][s_row] + rng.normal(0, 2.0, ns)) % 24
    s_time = np.floor(day) + hour / 24
    s_time = np.where(s_time < active_from[s_row], day, s_time)
    app = truth.has_endpoint[lo:hi, 2][s_row] & (rng.random(ns) < 0.7)
    s_channel = np.where(app, APP, WEB).astype(np.int8)

    # Views ~ softmax(affinity) among released items, then the funnel.
    n_views = 1 + rng.poisson(MEAN_EXTRA_VIEWS, ns)
    v_sess = np.repeat(np.arange(ns), n_views)
    k = np.arange(len(v_sess)) - (np.cumsum(n_views) - n_views)[v_sess]
    v_time = s_time[v_sess] + (k * 40 + rng.random(len(v_sess)) * 30) * SECOND
    v_row = s_row[v_sess]
    v_item = _sample_items(rng, flat_cdf, v_row, v_time, release, n_items)
    keep = v_item >= 0
    v_sess, v_row, v_time, v_item = v_sess[keep], v_row[keep], v_time[keep], v_item[keep]
    nv = len(v_row)
    a = affinity[v_row, v_item]
    mismatch = np.abs(truth.price_level[lo:hi][v_row] - truth.item_price_level[v_item])
    v_channel = s_channel[v_sess]
    click = rng.random(nv) < _sigmoid(-2.6 + 0.9 * a)
    cart = click & truth.item_in_stock[v_item]
    cart &= rng.random(nv) < _sigmoid(-1.9 + 0.9 * a - 0.6 * mismatch)
    buy = cart & (rng.random(nv) < _sigmoid(-0.9 + 0.7 * a - 0.6 * mismatch))
    c_time = v_time + (5 + 20 * rng.random(nv)) * SECOND
    a_time = c_time + (20 + 60 * rng.random(nv)) * SECOND
    p_time = a_time + (60 + 240 * rng.random(nv)) * SECOND
    quantity = 1 + (rng.random(nv) < 0.1)
    parts.add(v_row, VIEW, v_time, v_channel, item=v_item)
    parts.add(v_row[click], CLICK, c_time[click], v_channel[click], item=v_item[click])
    parts.add(v_row[cart], CART, a_time[cart], v_channel[cart], item=v_item[cart])
    revenue = np.round(truth.item_price[v_item[buy]] * quantity[buy], 2)
    parts.add(v_row[buy], PURCHASE, p_time[buy], v_channel[buy], item=v_item[buy], value=revenue)

    # On-site offers: one of the offer slots, clicked when the customer likes its item.
    shown = rng.random(ns) < OFFER_SHOWN_RATE
    slot = rng.integers(0, len(truth.offer_items), ns).astype(np.int8)
    o_item = truth.offer_items[slot]
    o_click = shown & (rng.random(ns) < _sigmoid(-2.0 + 0.9 * affinity[s_row, o_item]))
    o_time = s_time + 2 * SECOND
    oc_time = o_time + (15 + 45 * rng.random(ns)) * SECOND
    for mask, type_, t in ((shown, OFFER_SHOWN, o_time), (o_click, OFFER_CLICK, oc_time)):
        parts.add(s_row[mask], type_, t[mask], s_channel[mask], item=o_item[mask], offer=slot[mask])

    # Messaging: weekly campaigns to reachable customers; the preferred channel responds more.
    reachable = truth.has_endpoint[lo:hi] & ~truth.opted_out[lo:hi]
    signup_day = (truth.signup_us[lo:hi] - cfg.start_us) / US_PER_DAY
    engagement = np.clip(truth.activity[lo:hi] / cfg.mean_sessions_per_day, 0.3, 2.5)
    for number, channel, send_day in campaign_schedule(cfg):
        response, rate = CAMPAIGN_RESPONSE[channel]
        boost = np.where(truth.preferred_channel[lo:hi] == channel, 1.8, 0.8)
        hit = reachable[:, channel] & (signup_day < send_day)
        hit &= rng.random(n) < rate * boost * engagement
        rows = np.flatnonzero(hit)
        t = send_day + rng.exponential(3 / 24, len(rows))
        ev_channel = ENDPOINT_EVENT_CHANNEL[channel]
        item = None
        if response == SMS_CLICK:
            item = _sample_items(rng, flat_cdf, rows, t, release, n_items)
        parts.add(rows, response, t, ev_channel, item=item, campaign=number)
        if response == EMAIL_OPEN:
            mask = rng.random(len(rows)) < EMAIL_CLICK_RATE
            clicked, tc = rows[mask], t[mask] + (30 + 300 * rng.random(int(mask.sum()))) * SECOND
            item = _sample_items(rng, flat_cdf, clicked, tc, release, n_items)
            parts.add(clicked, EMAIL_CLICK, tc, ev_channel, item=item, campaign=number)

    # Opted-out endpoints unsubscribed within two days of the customer becoming active.
    u_row, u_channel = np.nonzero(truth.opted_out[lo:hi])
    u_time = active_from[u_row] + 2 * rng.random(len(u_row))
    parts.add(u_row, UNSUBSCRIBE, u_time, ENDPOINT_EVENT_CHANNEL[u_channel])

    cols = parts.arrays()
    keep = cols["t"] < days
    cols = {name: col[keep] for name, col in cols.items()}
    occurred = cfg.start_us + np.round(cols["t"] * US_PER_DAY).astype(np.int64)
    customer = cols["row"].astype(np.int64) + lo
    order = np.lexsort((occurred, customer))
    m = len(order)
    event_id = np.frombuffer(rng.bytes(16 * m), dtype=np.uint8).reshape(m, 16).copy()
    event_id[:, 6] = (event_id[:, 6] & 0x0F) | 0x40
    event_id[:, 8] = (event_id[:, 8] & 0x3F) | 0x80
    return EventChunk(
        customer=customer[order],
        item=cols["item"].astype(np.int64)[order],
        type=cols["type"].astype(np.int8)[order],
        value=cols["value"].astype(np.float64)[order],
        channel=cols["channel"].astype(np.int8)[order],
        occurred_at=occurred[order],
        campaign=cols["campaign"].astype(np.int64)[order],
        offer=cols["offer"].astype(np.int8)[order],
        event_id=event_id,
    )


def generate_events(truth: StoreTruth, *, chunk_size: int = 250_000) -> Iterator[EventChunk]:
    """Yield the history in chunks of at least `chunk_size` events (the last may be smaller),
    ordered by customer index then time."""
    size = _block_size(truth.n_items)
    pending: list[EventChunk] = []
    pending_n = 0
    for block, lo in enumerate(range(0, truth.n_customers, size)):
        chunk = _block_events(truth, block, lo, min(lo + size, truth.n_customers))
        pending.append(chunk)
        pending_n += len(chunk)
        if pending_n >= chunk_size:
            yield EventChunk.concat(pending)
            pending, pending_n = [], 0
    if pending:
        yield EventChunk.concat(pending)


def estimate_events(config: StoreConfig, truth: StoreTruth | None = None) -> int:
    """Expected number of events for a config (within a few percent)."""
    truth = truth or generate_truth(config)
    active_from = np.maximum((truth.signup_us - config.start_us) / US_PER_DAY, 0.0)
    sessions = float((truth.activity * (config.days - active_from)).sum())
    reachable = truth.has_endpoint & ~truth.opted_out
    engagement = np.clip(truth.activity / config.mean_sessions_per_day, 0.3, 2.5)
    signup_day = (truth.signup_us - config.start_us) / US_PER_DAY
    messages = 0.0
    for _, channel, send_day in campaign_schedule(config):
        response, rate = CAMPAIGN_RESPONSE[channel]
        boost = np.where(truth.preferred_channel == channel, 1.8, 0.8)
        p = np.minimum(rate * boost * engagement, 1.0) * (
            reachable[:, channel] & (signup_day < send_day)
        )
        messages += float(p.sum()) * (1 + EMAIL_CLICK_RATE if response == EMAIL_OPEN else 1)
    return round(sessions * EVENTS_PER_SESSION + messages + int(truth.opted_out.sum()))
