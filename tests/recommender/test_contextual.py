"""The offer ranker's algorithms on small generated data (no database)."""

import io
import json
import zlib

import numpy as np
import pytest

from marketing.simulation.store import StoreConfig, generate_truth
from recommender.contextual.apprentice import ApprenticePolicy
from recommender.contextual.evaluation import (
    LoggedDecision,
    dr_estimate,
    evaluate_logged_policy,
    evaluate_policy,
    evaluate_settings,
    ips_estimate,
    snips_estimate,
)
from recommender.contextual.features import (
    ACTION,
    CONTEXT,
    CUSTOMER,
    FNV_PRIME,
    FeatureSpec,
    Featurizer,
)
from recommender.contextual.policies import (
    KINDS,
    LINUCB,
    LOGISTIC,
    THOMPSON,
    PolicyConfig,
    greedy_distribution,
    make_policy,
    policy_from_bytes,
    ranking_from,
)
from recommender.contextual.simulation import OfferStorefront, StorefrontConfig

ACTIONS = [
    {"id": "a", "features": {"type": "discount"}},
    {"id": "b", "features": {"type": "content"}},
]
TUNED = {
    LOGISTIC: PolicyConfig(kind=LOGISTIC, epsilon=0.1, learning_rate=0.2),
    LINUCB: PolicyConfig(kind=LINUCB, epsilon=0.1, alpha=0.05),
    THOMPSON: PolicyConfig(kind=THOMPSON, epsilon=0.1, noise=0.05),
}


def page_problem_rewards(page: str) -> np.ndarray:
    """Click rates: the discount wins on the cart page, the content offer elsewhere."""
    return np.array([0.6, 0.1]) if page == "cart" else np.array([0.1, 0.6])


def page_log(n: int, *, seed: int = 0) -> list[LoggedDecision]:
    """Uniformly random decisions on the two-offer page problem."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        page = "cart" if rng.random() < 0.5 else "home"
        chosen = int(rng.integers(2))
        reward = float(rng.random() < page_problem_rewards(page)[chosen])
        out.append(
            LoggedDecision(
                context={"page": page},
                customer={},
                actions=ACTIONS,
                chosen=chosen,
                probability=0.5,
                reward=reward,
            )
        )
    return out


def test_tokens_cover_strings_lists_booleans_buckets_and_nested_maps():
    featurizer = Featurizer(FeatureSpec(ignore=frozenset({"secret"})))
    tokens = featurizer.tokens(
        CONTEXT,
        {
            "device": "mobile",
            "hour": 20,
            "cart_value": 60.0,
            "logged_in": True,
            "tags": ["x", "y"],
            "visits": 9,
            "geo": {"country": "DE"},
            "referrer": None,
            "secret": "s",
        },
    )
    assert tokens == [
        "c|device=mobile",
        "c|hour#3",
        "c|cart_value#3",
        "c|logged_in=1",
        "c|tags=x",
        "c|tags=y",
        "c|visits#3",
        "c|geo.country=DE",
    ]


def test_match_tokens_place_the_action_value_among_the_customer_values():
    featurizer = Featurizer()
    customer = {"top_categories": ["books", "music"], "category_affinity": {"books": 0.4}}
    assert featurizer.match_tokens({"category": "music"}, customer) == [
        "a|category@top_categories=1",
        "a|category@category_affinity#0",
    ]
    assert featurizer.match_tokens({"category": "books"}, customer) == [
        "a|category@top_categories=0",
        "a|category@category_affinity#5",
    ]
    assert featurizer.match_tokens({"category": "toys"}, customer)[0].endswith("=none")


def test_featurize_hashes_first_order_and_crossed_features_stably():
    spec = FeatureSpec(bits=10)
    batch = Featurizer(spec).featurize(
        context={"page": "cart"}, customer={"segments": [7]}, actions=ACTIONS
    )
    mask = spec.dim - 1
    page = zlib.crc32(b"c|page=cart")
    segment = zlib.crc32(b"u|segments=7")
    discount, id_a = zlib.crc32(b"a|type=discount"), zlib.crc32(b"a|id=a")
    assert batch.shared.tolist() == [page & mask, segment & mask]
    row_a = sorted(batch.indices[batch.rows == 0].tolist())
    expected = [discount, id_a, (page * FNV_PRIME) ^ discount, (page * FNV_PRIME) ^ id_a]
    expected += [(segment * FNV_PRIME) ^ discount, (segment * FNV_PRIME) ^ id_a]
    assert row_a == sorted(h & mask for h in expected)
    assert batch.n_actions == 2
    assert batch.ids == ("a", "b")
    assert len(batch.action_indices(1)) == 2 + 6


def test_customer_category_keys_enter_only_through_the_match_tokens():
    featurizer = Featurizer(FeatureSpec(interactions=()))
    customer = {"top_categories": ["books"], "category_affinity": {"books": 0.6}, "id": "42"}
    assert featurizer.tokens("customer", customer) == ["u|id=42"]
    batch = featurizer.featurize(
        context=None, customer=customer, actions=[{"id": "x", "features": {"category": "books"}}]
    )
    expected = ["a|category=books", "a|category@top_categories=0", "a|category@category_affinity#6"]
    assert sorted(batch.indices.tolist()) == sorted(
        h & (featurizer.spec.dim - 1) for h in featurizer.hashes([*expected, "a|id=x"]).tolist()
    )


def test_customer_id_is_crossed_with_the_offer():
    spec = FeatureSpec(interactions=(("customer", "action"),), matches=())
    featurizer = Featurizer(spec)
    one = featurizer.featurize(
        context=None, customer={"id": "1"}, actions=[{"id": "x", "features": {}}]
    )
    other = featurizer.featurize(
        context=None, customer={"id": "2"}, actions=[{"id": "x", "features": {}}]
    )
    assert len(one.indices) == 2  # the offer id, and the offer id x the customer id
    assert set(one.indices.tolist()) != set(other.indices.tolist())


def test_a_stored_spec_without_match_only_keeps_its_customer_tokens():
    data = FeatureSpec().to_dict()
    del data["match_only"]
    assert FeatureSpec.from_dict(data).match_only == frozenset()
    assert FeatureSpec.from_dict(FeatureSpec().to_dict()) == FeatureSpec()


def test_interactions_and_matches_can_be_switched_off():
    spec = FeatureSpec(interactions=(), matches=(), match_only=frozenset())
    batch = Featurizer(spec).featurize(
        context={"page": "cart"},
        customer={"top_categories": ["books"]},
        actions=[{"id": "x", "features": {"category": "books"}}],
    )
    assert len(batch.shared) == 2
    assert len(batch.indices) == 2  # category and id, no crosses, no match token


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"bits": 30}, "bits"),
        ({"interactions": ((ACTION, ACTION),)}, "action x action"),
        ({"interactions": ((CONTEXT, "weather"),)}, "must pair"),
    ],
)
def test_feature_spec_rejects_bad_settings(changes, message):
    with pytest.raises(ValueError, match=message):
        FeatureSpec(**changes)


def test_featurize_needs_candidates():
    with pytest.raises(ValueError, match="at least one candidate"):
        Featurizer().featurize(context={}, customer={}, actions=[])


def test_greedy_distribution_gives_the_best_one_minus_eps_plus_eps_over_k():
    p = greedy_distribution(np.array([0.1, 0.5, 0.2, 0.3]), 0.2)
    assert p.tolist() == pytest.approx([0.05, 0.85, 0.05, 0.05])
    tied = greedy_distribution(np.array([0.5, 0.5]), 0.0)
    assert tied.tolist() == [0.5, 0.5]


def test_ranking_draws_the_top_from_p_and_orders_the_rest_by_score():
    rng = np.random.default_rng(1)
    p = np.array([0.1, 0.7, 0.2])
    scores = np.array([0.3, 0.9, 0.5])
    draws = [ranking_from(p, scores, rng=rng) for _ in range(4000)]
    shares = np.bincount([d.chosen for d in draws], minlength=3) / len(draws)
    assert shares == pytest.approx(p, abs=0.03)
    first_pick_0 = next(d for d in draws if d.chosen == 0)
    assert first_pick_0.order == (0, 1, 2)
    assert first_pick_0.probabilities == pytest.approx((0.1, 0.7, 0.2))
    assert first_pick_0.chosen_probability == pytest.approx(0.1)
    assert first_pick_0.greedy == 1


@pytest.mark.parametrize("kind", KINDS)
def test_each_policy_learns_which_offer_wins_on_which_page(kind):
    policy = make_policy(TUNED[kind], seed=3)
    rng = np.random.default_rng(4)
    for _ in range(3000):
        page = "cart" if rng.random() < 0.5 else "home"
        batch = policy.featurize(context={"page": page}, customer={}, actions=ACTIONS)
        ranking = policy.rank(batch)
        reward = float(rng.random() < page_problem_rewards(page)[ranking.chosen])
        policy.update(batch, ranking.chosen, reward)
    cart = policy.featurize(context={"page": "cart"}, customer={}, actions=ACTIONS)
    home = policy.featurize(context={"page": "home"}, customer={}, actions=ACTIONS)
    assert policy.rank(cart).greedy == 0
    assert policy.rank(home).greedy == 1
    assert policy.updates == 3000
    p, _ = policy.top_distribution(cart)
    assert p.sum() == pytest.approx(1.0)
    assert p.min() >= 0.1 / 2 - 1e-12


@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize("kind", KINDS)
def test_policy_state_round_trips_through_bytes(kind, compress):
    policy = make_policy(TUNED[kind].with_(features=FeatureSpec(bits=8)), seed=1)
    batch = policy.featurize(context={"page": "cart"}, customer={"orders": 3}, actions=ACTIONS)
    for reward in (1.0, 0.0, 1.0):
        policy.update(batch, 0, reward)
    data = policy.to_bytes(compress=compress)
    assert (len(data) > 8 * 2**8) is not compress  # 2^8 float64 weights stored as they are
    restored = policy_from_bytes(data)
    assert restored.config == policy.config
    assert restored.updates == 3
    assert restored.predict(batch).tolist() == policy.predict(batch).tolist()
    for name in policy.array_names:
        assert np.array_equal(getattr(restored, name), getattr(policy, name))


def test_policy_from_bytes_refuses_another_format():
    policy = make_policy(PolicyConfig(features=FeatureSpec(bits=6)))
    meta = {"format": 9, "updates": 0, "config": policy.config.to_dict()}
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.array(json.dumps(meta)), weights=policy.weights)
    data = buffer.getvalue()
    with pytest.raises(ValueError, match="unsupported policy format"):
        policy_from_bytes(data)


@pytest.mark.parametrize(
    "changes", [{"kind": "greedy"}, {"epsilon": 1.5}, {"learning_rate": 0}, {"alpha": -1}]
)
def test_policy_config_rejects_bad_settings(changes):
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        PolicyConfig(**changes)


def test_ips_snips_and_dr_match_hand_computed_values():
    rewards, propensities, target = [1.0, 0.0, 1.0], [0.5, 0.25, 0.8], [1.0, 0.0, 0.4]
    ips = ips_estimate(rewards=rewards, propensities=propensities, target_probabilities=target)
    assert ips.value == pytest.approx((2.0 + 0.0 + 0.5) / 3)
    assert ips.stderr == pytest.approx(np.std([2.0, 0.0, 0.5], ddof=1) / np.sqrt(3))
    snips = snips_estimate(rewards=rewards, propensities=propensities, target_probabilities=target)
    assert snips.value == pytest.approx(2.5 / 2.5)
    dr = dr_estimate(
        rewards=rewards,
        propensities=propensities,
        chosen=[0, 1, 0],
        target_distributions=[np.array([1.0, 0.0]), np.array([1.0, 0.0]), np.array([0.4, 0.6])],
        predicted_rewards=[np.array([0.5, 0.2])] * 3,
    )
    terms = [0.5 + 2 * 0.5, 0.5 + 0.0, 0.4 * 0.5 + 0.6 * 0.2 + 0.5 * 0.5]
    assert dr.value == pytest.approx(np.mean(terms))
    assert dr.n == 3


def test_estimators_reject_mismatched_or_zero_propensities():
    with pytest.raises(ValueError, match="equally long"):
        ips_estimate(rewards=[1.0], propensities=[0.5, 0.5], target_probabilities=[1.0])
    with pytest.raises(ValueError, match="positive"):
        snips_estimate(rewards=[1.0], propensities=[0.0], target_probabilities=[1.0])


def test_offline_estimates_of_a_fixed_policy_are_close_to_its_true_value():
    """Always show the discount: true value 0.5 * 0.6 + 0.5 * 0.1 = 0.35."""
    log = page_log(4000)
    target = [1.0 if e.chosen == 0 else 0.0 for e in log]
    common = {
        "rewards": [e.reward for e in log],
        "propensities": [e.probability for e in log],
        "target_probabilities": target,
    }
    ips = ips_estimate(**common)
    snips = snips_estimate(**common)
    assert abs(ips.value - 0.35) < 3 * ips.stderr
    assert abs(snips.value - 0.35) < 3 * snips.stderr
    assert evaluate_logged_policy(log).value == pytest.approx(0.35, abs=0.03)


def test_evaluate_settings_ranks_learning_policies_above_uniform_and_context_blind_ones():
    log = page_log(3000, seed=2)
    blind = FeatureSpec(interactions=(), matches=())
    results = evaluate_settings(
        log,
        {
            "learned": PolicyConfig(epsilon=0.1, learning_rate=0.2),
            "context_blind": PolicyConfig(epsilon=0.1, learning_rate=0.2, features=blind),
        },
    )
    assert list(results)[0] == "learned"
    learned, uniform = results["learned"], results["uniform"]
    # Optimal value 0.6, uniform 0.35; the learner pays for its first events and exploration.
    assert learned.dr.value > uniform.dr.value + 5 * learned.dr.stderr
    assert 0.5 < learned.dr.value < 0.6
    assert uniform.dr.value == pytest.approx(0.35, abs=0.03)
    assert results["context_blind"].dr.value < learned.dr.value - 0.1
    single = evaluate_policy(log, PolicyConfig(epsilon=0.1, learning_rate=0.2))
    assert single.dr.value == pytest.approx(learned.dr.value)


def test_apprentice_follows_the_baseline_then_graduates_when_the_learner_is_better():
    learner = make_policy(TUNED[LOGISTIC], seed=5)
    apprentice = ApprenticePolicy(learner, epsilon=0.2, min_events=300, seed=6)
    rng = np.random.default_rng(7)
    shown_baseline = 0
    steps = 0
    while not apprentice.graduated and steps < 5000:
        page = "cart" if rng.random() < 0.5 else "home"
        batch = learner.featurize(context={"page": page}, customer={}, actions=ACTIONS)
        ranking = apprentice.rank(batch, baseline=1)
        shown_baseline += ranking.chosen == 1
        expected_p = 0.9 if ranking.chosen == 1 else 0.1
        assert ranking.chosen_probability == pytest.approx(expected_p)
        reward = float(rng.random() < page_problem_rewards(page)[ranking.chosen])
        apprentice.update(
            batch, ranking.chosen, reward, probability=ranking.chosen_probability, baseline=1
        )
        steps += 1
    assert apprentice.graduated
    assert 300 <= steps < 5000
    assert shown_baseline / steps == pytest.approx(0.9, abs=0.05)
    advantage = apprentice.advantage()
    assert advantage.value - 1.96 * advantage.stderr > 0
    cart = learner.featurize(context={"page": "cart"}, customer={}, actions=ACTIONS)
    assert apprentice.rank(cart).greedy == 0  # the learner's choice now, not the baseline's


def test_apprentice_keeps_the_baseline_when_it_is_already_best_and_round_trips():
    learner = make_policy(TUNED[LOGISTIC].with_(features=FeatureSpec(bits=8)), seed=5)
    apprentice = ApprenticePolicy(learner, epsilon=0.2, min_events=200, seed=6)
    rng = np.random.default_rng(8)
    rates = np.array([0.5, 0.1])  # the default (index 0) wins everywhere
    for _ in range(2000):
        batch = learner.featurize(context={"page": "home"}, customer={}, actions=ACTIONS)
        ranking = apprentice.rank(batch)
        reward = float(rng.random() < rates[ranking.chosen])
        apprentice.update(batch, ranking.chosen, reward, probability=ranking.chosen_probability)
    assert not apprentice.graduated
    assert apprentice.events == 2000
    restored = ApprenticePolicy.from_bytes(apprentice.to_bytes(compress=False))
    assert restored.events == 2000
    assert not restored.graduated
    assert restored.advantage() == apprentice.advantage()
    assert restored.learner.updates == 2000


@pytest.fixture(scope="module")
def storefront():
    truth = generate_truth(StoreConfig(customers=400, items=120, seed=3))
    return OfferStorefront(truth, StorefrontConfig(offers=20, seed=4))


def test_storefront_click_rates_are_low_and_tastes_matter(storefront):
    rng = np.random.default_rng(0)
    random_rate, oracle_rate = [], []
    for _ in range(2000):
        truth = storefront.click_probabilities(storefront.draw_request(rng))
        assert truth.shape == (20,)
        random_rate.append(truth.mean())
        oracle_rate.append(truth.max())
    assert 0.01 < np.mean(random_rate) < 0.05
    assert np.mean(oracle_rate) > 3 * np.mean(random_rate)


def test_profile_oracle_lies_between_random_and_the_full_oracle(storefront):
    rng = np.random.default_rng(1)
    rates = []
    for _ in range(2000):
        request = storefront.draw_request(rng)
        truth = storefront.click_probabilities(request)
        choice = storefront.profile_oracle_choice(request)
        rates.append((truth.mean(), truth[choice], truth.max()))
    random_rate, profile_rate, oracle_rate = np.mean(rates, axis=0)
    assert 2 * random_rate < profile_rate < oracle_rate


def test_storefront_profiles_are_fixed_and_offers_carry_their_attributes(storefront):
    profile = storefront.customer_features(5)
    assert storefront.customer_features(5) is profile
    assert set(profile) >= {"orders", "revenue", "top_categories", "segments", "country"}
    offer = storefront.offers[0]
    assert offer["id"] == "offer-1"
    assert set(offer["features"]) == {"type", "category", "price", "discount", "tier"}


def test_customer_features_do_not_change_with_the_shown_offer(storefront):
    batch = Featurizer().featurize(
        context={"page": "home"},
        customer=storefront.customer_features(1),
        actions=storefront.offers,
    )
    assert batch.n_actions == 20
    assert np.bincount(batch.rows).min() > 0
    assert (batch.indices < FeatureSpec().dim).all()
    assert CUSTOMER in dict(FeatureSpec().interactions)
