"""The simulated store's generator: pure numpy, no database."""

from dataclasses import fields
from datetime import datetime

import numpy as np
import pytest

from marketing.simulation import (
    EVENT_TYPES,
    EventChunk,
    StoreConfig,
    StoreTruth,
    estimate_events,
    generate_events,
    generate_truth,
    save_truth,
)
from marketing.simulation.store import US_PER_DAY

CONFIG = StoreConfig(customers=1500, items=300, days=30, seed=7)


@pytest.fixture(scope="module")
def truth() -> StoreTruth:
    return generate_truth(CONFIG)


@pytest.fixture(scope="module")
def events(truth) -> EventChunk:
    return EventChunk.concat(list(generate_events(truth)))


def _truth_arrays(truth: StoreTruth) -> dict[str, np.ndarray]:
    return {f.name: getattr(truth, f.name) for f in fields(truth) if f.name != "config"}


def _event_arrays(chunk: EventChunk) -> dict[str, np.ndarray]:
    return {f.name: getattr(chunk, f.name) for f in fields(chunk)}


def test_same_seed_gives_byte_identical_truth_and_events_whatever_the_chunk_size(truth, events):
    again = generate_truth(CONFIG)
    for name, array in _truth_arrays(truth).items():
        assert array.tobytes() == getattr(again, name).tobytes(), name
    small_chunks = list(generate_events(again, chunk_size=1000))
    assert len(small_chunks) > 1
    replay = EventChunk.concat(small_chunks)
    for name, array in _event_arrays(events).items():
        assert array.tobytes() == getattr(replay, name).tobytes(), name


def test_different_seed_gives_different_store(truth, events):
    other = generate_truth(StoreConfig(customers=1500, items=300, days=30, seed=8))
    other_events = EventChunk.concat(list(generate_events(other)))
    assert not np.array_equal(truth.taste, other.taste)
    assert not np.array_equal(truth.item_price, other.item_price)
    assert len(other_events) != len(events)
    assert not set(map(bytes, events.event_id[:100])) & set(map(bytes, other_events.event_id))


def test_event_ids_are_unique_version_4_uuids(events):
    assert len({bytes(row) for row in events.event_id}) == len(events)
    assert set((events.event_id[:, 6] >> 4).tolist()) == {4}
    assert set((events.event_id[:, 8] >> 6).tolist()) == {2}


def test_cold_start_customers_and_late_items_exist(truth, events):
    window_us = CONFIG.days * US_PER_DAY
    cold = np.flatnonzero(truth.signup_us >= CONFIG.start_us + 0.9 * window_us)
    late = np.flatnonzero(truth.item_release_us >= CONFIG.start_us + 0.85 * window_us)
    assert 0.12 < len(cold) / CONFIG.customers < 0.18
    assert 0.07 < len(late) / CONFIG.items < 0.14
    # Some of them are already active, on a thin history.
    assert np.isin(cold, events.customer).sum() > 20
    assert np.isin(late, events.item).sum() > 10
    assert (truth.signup_us < CONFIG.start_us).sum() > CONFIG.customers * 0.4


def test_endpoints_and_opt_outs_have_the_configured_shares(truth):
    present = truth.has_endpoint.mean(axis=0)
    assert present[0] == pytest.approx(0.95, abs=0.02)
    assert present[1] == pytest.approx(0.60, abs=0.04)
    assert present[2] == pytest.approx(0.40, abs=0.04)
    assert not (truth.opted_out & ~truth.has_endpoint).any()
    opted_out = truth.opted_out.sum(axis=0) / truth.has_endpoint.sum(axis=0)
    assert opted_out.tolist() == pytest.approx([0.08, 0.08, 0.08], abs=0.03)
    assert truth.endpoint_address(0, 1) == "+15550000001"
    assert truth.endpoint_address(0, 0).endswith(".1@example.com")
    assert len(truth.endpoint_address(0, 2)) == len("push-") + 32


def test_catalog_and_ids_follow_the_formats(truth):
    assert truth.customer_external_ids[:2] == ["c0000001", "c0000002"]
    assert truth.item_external_ids[-1] == "i000300"
    assert 0.88 < truth.item_in_stock.mean() < 0.96
    assert (truth.item_price >= 0.99).all()
    assert np.array_equal(truth.item_price, np.round(truth.item_price, 2))
    assert len(set(truth.offer_items.tolist())) == 5
    assert truth.item_in_stock[truth.offer_items].all()
    assert (truth.item_release_us[truth.offer_items] <= CONFIG.start_us).all()


def test_purchases_concentrate_on_high_affinity_items(truth, events):
    purchase = events.type == EVENT_TYPES.index("purchase")
    view = events.type == EVENT_TYPES.index("view")
    affinity = truth.true_affinity_block(slice(None))
    bought = affinity[events.customer[purchase], events.item[purchase]]
    viewed = affinity[events.customer[view], events.item[view]]
    assert affinity.mean() == pytest.approx(0.0, abs=1e-9)
    assert purchase.sum() > 300
    assert viewed.mean() > 0.8
    assert bought.mean() > viewed.mean() + 0.5
    # And each customer's purchases sit high in their own true ranking.
    c = int(np.bincount(events.customer[purchase]).argmax())
    top = truth.true_top_items(c, 30)
    mine = events.item[purchase & (events.customer == c)]
    assert np.isin(mine, top).mean() > 0.5


def test_true_top_items_are_sorted_by_true_affinity(truth):
    affinity = truth.true_affinity(3)
    top = truth.true_top_items(3, 10)
    assert top.tolist() == np.argsort(-affinity, kind="stable")[:10].tolist()
    assert np.array_equal(affinity, truth.true_affinity_block(np.array([3]))[0])


def test_events_respect_signup_release_and_window(truth, events):
    assert (events.occurred_at >= CONFIG.start_us).all()
    assert (events.occurred_at < CONFIG.end_us).all()
    assert (events.occurred_at >= truth.signup_us[events.customer]).all()
    has_item = events.item >= 0
    released = truth.item_release_us[events.item[has_item]]
    assert (events.occurred_at[has_item] >= released).all()
    order = np.lexsort((events.occurred_at, events.customer))
    assert np.array_equal(order, np.arange(len(events)))


def test_event_columns_are_consistent(truth, events):
    purchase = events.type == EVENT_TYPES.index("purchase")
    assert not np.isnan(events.value[purchase]).any()
    assert np.isnan(events.value[~purchase]).all()
    price = truth.item_price[events.item[purchase]]
    assert np.isin(np.round(events.value[purchase] / price), [1, 2]).all()
    funnel = np.isin(events.type, [0, 1, 2, 3])
    assert (events.item[funnel] >= 0).all()
    assert (events.offer[funnel] == -1).all()
    offer = np.isin(events.type, [4, 5])
    assert np.array_equal(events.item[offer], truth.offer_items[events.offer[offer]])
    messages = np.isin(events.type, [6, 7, 8, 9])
    assert (events.campaign[messages] >= 1).all()
    assert (events.campaign[~messages] == -1).all()
    counts = np.bincount(events.type, minlength=len(EVENT_TYPES))
    assert all(counts > 0), dict(zip(EVENT_TYPES, counts.tolist(), strict=True))
    assert counts[3] < counts[2] < counts[1] < counts[0]
    # One unsubscribe per opted-out endpoint, unless it would fall after the window.
    assert 0.9 * truth.opted_out.sum() < counts[10] <= truth.opted_out.sum()


def test_estimate_is_close_and_the_demo_size_is_about_a_hundred_thousand(events):
    assert estimate_events(CONFIG) == pytest.approx(len(events), rel=0.05)
    assert 100_000 <= estimate_events(StoreConfig()) <= 150_000


def test_save_truth_writes_arrays_for_other_tools(truth, tmp_path):
    path = tmp_path / "truth.npz"
    save_truth(truth, str(path))
    with np.load(path) as data:
        assert np.array_equal(data["taste"], truth.taste)
        assert data["item_external_ids"][0] == "i000001"
        assert int(data["config_seed"]) == 7


def test_config_rejects_naive_start_and_empty_sizes():
    with pytest.raises(ValueError, match="timezone-aware"):
        StoreConfig(start=datetime(2026, 1, 1))  # noqa: DTZ001
    with pytest.raises(ValueError, match="customers >= 1"):
        StoreConfig(customers=0)
