"""Attribution models on small paths whose credit is worked out by hand (no database)."""

import itertools
import math

import numpy as np
import pytest

from experiments.attribution import (
    MODELS,
    AttributionError,
    AttributionSettings,
    attribute,
    attribute_all,
    markov_chain,
    paths_from_sequences,
    paths_from_touchpoints,
    shapley_values,
    shapley_weights,
)
from experiments.attribution.models import touch_weights
from experiments.attribution.shapley import coalition_rates, membership

DAY = 86_400.0


def sequences(*rows):
    """rows: (channels "a>b", conversions, value, nulls)."""
    return paths_from_sequences(
        [r[0].split(">") for r in rows],
        conversions=[r[1] for r in rows],
        values=[r[2] for r in rows],
        nulls=[r[3] for r in rows],
    )


def credit(paths, model, **settings):
    return attribute(
        paths, model=model, settings=AttributionSettings(**settings)
    ).credit_by_channel()


# One converting path A > direct > B > C worth 100, one single-touch path B worth 10, and a
# non-converting path that no path-level model may credit.
HEURISTIC_PATHS = (("a>direct>b>c", 1, 100.0, 0), ("b", 1, 10.0, 0), ("c>c", 0, 0.0, 3))


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("first_touch", {"a": 100, "b": 10, "c": 0, "direct": 0}),
        ("last_touch", {"a": 0, "b": 10, "c": 100, "direct": 0}),
        ("linear", {"a": 25, "b": 35, "c": 25, "direct": 25}),
        # 40 / 20 / 40 with the middle 20% split over direct and b.
        ("position_based", {"a": 40, "b": 20, "c": 40, "direct": 10}),
    ],
)
def test_path_level_models_on_a_hand_example(model, expected):
    assert credit(sequences(*HEURISTIC_PATHS), model) == pytest.approx(expected)


def test_last_non_direct_skips_direct_and_falls_back_to_direct_when_alone():
    paths = sequences(("a>b>direct", 1, 100.0, 0), ("direct>direct", 1, 7.0, 0))
    assert credit(paths, "last_non_direct") == pytest.approx({"a": 0, "b": 100, "direct": 7})
    assert credit(paths, "last_touch") == pytest.approx({"a": 0, "b": 0, "direct": 107})


def test_the_direct_channel_is_configurable_and_case_insensitive():
    paths = sequences(("email>Organic", 1, 50.0, 0))
    assert credit(paths, "last_non_direct", direct_channel="organic") == {"email": 50, "Organic": 0}
    assert credit(paths, "last_non_direct") == {"email": 0, "Organic": 50}


@pytest.mark.parametrize(
    ("n", "expected"),
    [(1, [1.0]), (2, [0.5, 0.5]), (3, [0.4, 0.2, 0.4]), (5, [0.4, 0.2 / 3, 0.2 / 3, 0.2 / 3, 0.4])],
)
def test_position_based_shares_by_path_length(n, expected):
    channels = [f"c{i}" for i in range(n)]
    got = credit(sequences((">".join(channels), 1, 1.0, 0)), "position_based")
    assert [got[c] for c in channels] == pytest.approx(expected)


def test_time_decay_halves_the_weight_every_half_life():
    # Touches 14, 7 and 0 days before the conversion: weights 1/4, 1/2, 1 -> 1/7, 2/7, 4/7.
    paths = paths_from_touchpoints(
        journey_ids=["j"] * 3,
        timestamps=[0.0, 7 * DAY, 14 * DAY],
        channels=["a", "b", "c"],
        conversions=[0, 0, 1],
        values=[0, 0, 70.0],
    )
    assert credit(paths, "time_decay") == pytest.approx({"a": 10, "b": 20, "c": 40})
    # With a 14-day half-life: 2^-1, 2^-0.5, 1.
    w = np.array([0.5, 2**-0.5, 1.0])
    assert list(credit(paths, "time_decay", half_life_days=14).values()) == pytest.approx(
        (70 * w / w.sum()).tolist()
    )


def test_time_decay_needs_timestamps_and_all_skips_it():
    paths = sequences(("a>b", 1, 1.0, 0))
    with pytest.raises(AttributionError, match="timestamps"):
        attribute(paths, model="time_decay")
    results, skipped = attribute_all(paths)
    assert [r.model for r in results] == [m for m in MODELS if m != "time_decay"]
    assert list(skipped) == ["time_decay"]


def test_markov_removal_effects_match_the_hand_computation():
    # Paths: A>B converts (value 10), A ends in null, B converts (value 20), A>B>A ends in null.
    # Transitions: start->A 3, start->B 1; A->B 2, A->null 2; B->conv 2, B->A 1.
    # P: start (A 3/4, B 1/4); A (B 1/2, null 1/2); B (conv 2/3, A 1/3).
    # Absorption: h_A = h_B / 2, h_B = 2/3 + h_A / 3  =>  h_B = 4/5, h_A = 2/5.
    # P(conv) = 3/4 * 2/5 + 1/4 * 4/5 = 1/2.
    # Without A: h_B = 2/3, P = 1/4 * 2/3 = 1/6, removal effect 1 - (1/6) / (1/2) = 2/3.
    # Without B: nothing reaches conversion, P = 0, removal effect 1.
    # Weights: A = (2/3) / (5/3) = 2/5, B = 3/5.
    # Credit: A>B's 10 splits 4 / 6; B's 20 goes to B: A = 4, B = 26.
    paths = sequences(("A>B", 1, 10.0, 0), ("A", 0, 0.0, 1), ("B", 1, 20.0, 0), ("A>B>A", 0, 0, 1))
    chain = markov_chain(paths)
    assert chain.conversion_probability == pytest.approx(1 / 2, abs=1e-12)
    assert chain.removal_effects == pytest.approx([2 / 3, 1.0], abs=1e-12)
    assert chain.weights == pytest.approx([2 / 5, 3 / 5], abs=1e-12)
    assert chain.transitions[0].tolist() == pytest.approx([0, 3 / 4, 1 / 4, 0, 0])
    result = attribute(paths, model="markov")
    assert result.credit_by_channel() == pytest.approx({"A": 4.0, "B": 26.0}, abs=1e-9)
    assert result.conversions_by_channel() == pytest.approx({"A": 0.4, "B": 1.6}, abs=1e-12)
    assert result.channel_weights.tolist() == pytest.approx([0.4, 0.6], abs=1e-12)


def test_markov_self_loops_do_not_change_the_removal_effects():
    plain = sequences(("A>B", 1, 10.0, 0), ("A", 0, 0.0, 1), ("B", 1, 20.0, 0))
    looped = sequences(("A>A>B>B", 1, 10.0, 0), ("A>A", 0, 0.0, 1), ("B", 1, 20.0, 0))
    assert markov_chain(looped).removal_effects == pytest.approx(
        markov_chain(plain).removal_effects, abs=1e-12
    )


def test_markov_with_nothing_converting_gives_no_weight():
    chain = markov_chain(sequences(("a>b", 0, 0.0, 5)))
    assert chain.conversion_probability == 0.0
    assert chain.weights.tolist() == [0.0, 0.0]


SHAPLEY_PATHS = (
    # coalition, conversions, value, nulls -> rate
    ("A", 1, 1.0, 1),  # r(A) = 1/2
    ("B", 1, 1.0, 3),  # r(B) = 1/4
    ("A>B>A", 2, 2.0, 0),  # r(AB) = 1
    ("C", 0, 0.0, 1),  # r(C) = 0
    ("C>B", 1, 1.0, 1),  # r(BC) = 1/2
)


def test_shapley_on_three_channels_matches_the_hand_computation():
    # v(S) = sum of r(T) for observed T within S: v(A)=.5, v(B)=.25, v(C)=0, v(AB)=1.75,
    # v(AC)=.5, v(BC)=.75, v(ABC)=2.25. Textbook Shapley (weights 1/3, 1/6, 1/6, 1/3):
    # phi(A) = .5/3 + (1.75-.25)/6 + (.5-0)/6 + (2.25-.75)/3 = 1
    # phi(B) = .25/3 + (1.75-.5)/6 + (.75-0)/6 + (2.25-.5)/3 = 1
    # phi(C) = 0/3 + (.5-.5)/6 + (.75-.25)/6 + (2.25-1.75)/3 = .25
    # Weights 4/9, 4/9, 1/9. Credit per conversion (all worth 1): A alone 1 -> A; B alone
    # 1 -> B; AB 2 -> 1 each; CB 1 -> B 4/5, C 1/5. A = 2, B = 2.8, C = 0.2.
    paths = sequences(*SHAPLEY_PATHS)
    assert shapley_values(paths).tolist() == pytest.approx([1.0, 1.0, 0.25], abs=1e-12)
    assert shapley_weights(paths).tolist() == pytest.approx([4 / 9, 4 / 9, 1 / 9], abs=1e-12)
    assert credit(paths, "shapley") == pytest.approx({"A": 2.0, "B": 2.8, "C": 0.2}, abs=1e-12)


def textbook_shapley(paths):
    """Average marginal contribution over all coalitions, with v(S) = sum r(T), T within S."""
    masks, rates = coalition_rates(paths)
    k = len(paths.channels)
    members = membership(masks, k)

    def worth(subset):
        inside = np.ones(len(masks), dtype=bool)
        for j in set(range(k)) - set(subset):
            inside &= ~members[:, j]
        return rates[inside].sum()

    phi = np.zeros(k)
    for j in range(k):
        others = [i for i in range(k) if i != j]
        for size in range(k):
            factor = math.factorial(size) * math.factorial(k - size - 1) / math.factorial(k)
            for subset in itertools.combinations(others, size):
                phi[j] += factor * (worth((*subset, j)) - worth(subset))
    return phi


def test_shapley_per_coalition_formula_equals_the_textbook_definition():
    rng = np.random.default_rng(7)
    channels = list("abcdef")
    rows = []
    for _ in range(60):
        seq = rng.choice(channels, size=rng.integers(1, 5)).tolist()
        conv = int(rng.integers(0, 4))
        rows.append((">".join(seq), conv, float(conv) * 3, int(rng.integers(0, 4))))
    paths = sequences(*rows)
    assert shapley_values(paths) == pytest.approx(textbook_shapley(paths), abs=1e-12)


def test_shapley_refuses_more_channels_than_a_bitmask_holds():
    paths = sequences((">".join(f"c{i}" for i in range(63)), 1, 1.0, 0))
    with pytest.raises(AttributionError, match="at most 62"):
        attribute(paths, model="shapley")


def random_journeys(seed, n=400):
    rng = np.random.default_rng(seed)
    channels = np.array(["direct", "email", "search", "social", "display"])
    journey, ts, ch, conv, value, campaign = [], [], [], [], [], []
    for j in range(n):
        length = int(rng.integers(1, 8))
        times = np.sort(rng.uniform(0, 40 * DAY, length))
        converts = rng.random() < 0.4
        for i in range(length):
            last = i == length - 1
            journey.append(j)
            ts.append(times[i])
            ch.append(str(rng.choice(channels)))
            conv.append(converts and last)
            value.append(float(rng.integers(1, 100)) if converts and last else 0.0)
            campaign.append(str(rng.choice(["", "spring", "summer"])))
    return paths_from_touchpoints(
        journey_ids=journey,
        timestamps=ts,
        channels=ch,
        conversions=conv,
        values=value,
        campaigns=campaign,
    )


@pytest.mark.parametrize("model", MODELS)
def test_every_model_credits_each_conversion_its_value_exactly(model):
    paths = random_journeys(seed=3)
    converting = paths.converting
    result = attribute(paths, model=model)
    assert result.credit.sum() == pytest.approx(converting.value.sum(), rel=1e-12)
    assert result.conversions.sum() == pytest.approx(converting.conversions.sum(), rel=1e-12)
    assert (result.credit >= 0).all()
    weights, _ = touch_weights(paths, model=model)
    per_path = np.bincount(converting.touch_path, weights)
    assert per_path == pytest.approx(np.ones(converting.n_paths), abs=1e-12)


def test_campaign_credit_is_the_credit_of_touches_with_a_campaign():
    paths = paths_from_touchpoints(
        journey_ids=["j", "j", "j"],
        timestamps=[0.0, 1.0, 2.0],
        channels=["email", "email", "search"],
        campaigns=["spring", "", "summer"],
        conversions=[0, 0, 1],
        values=[0, 0, 30.0],
    )
    result = attribute(paths, model="linear")
    assert dict(zip(result.campaigns, result.campaign_credit.tolist(), strict=True)) == (
        pytest.approx({"spring": 10.0, "summer": 10.0})
    )
    markov = attribute(paths, model="markov")
    # Markov splits the channel's path share evenly over its two email touches.
    email_share = markov.credit_by_channel()["email"]
    assert markov.campaign_credit[0] == pytest.approx(email_share / 2)


def test_unknown_model_is_an_error():
    with pytest.raises(AttributionError, match="unknown model"):
        attribute(sequences(("a", 1, 1.0, 0)), model="magic")


def test_paths_without_conversions_give_zero_credit_in_every_model():
    paths = paths_from_touchpoints(
        journey_ids=["x", "x"], timestamps=[0.0, 1.0], channels=["a", "b"], conversions=[0, 0]
    )
    results, skipped = attribute_all(paths)
    assert skipped == {}
    assert {r.model: r.credit.tolist() for r in results} == dict.fromkeys(MODELS, [0.0, 0.0])
