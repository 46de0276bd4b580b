"""The offers Rank API with `experiment` (#7): the customer is assigned (sticky, exposure
logged), the variant's config picks the ranking policy and exploration, the response and the
decision log report the experiment and variant."""

import numpy as np
import pytest
from django.urls import reverse

from experiments import serving as experiment_serving
from experiments.serving import EXPOSURE_BUFFER, experiment_assign_variant
from recommender.contextual import PolicyConfig
from recommender.contextual.policies import LogisticPolicy, baseline_ranking
from recommender.models import DecisionMode, OfferDecision
from recommender.offers_log import PENDING_KEY, offer_log_process
from recommender.offers_policy import (
    configured_policy_config,
    ranker_publish,
    redis_client,
    redis_key,
)
from recommender.offers_serving import RankVariant
from tests.experiments.factories import ExperimentFactory, VariantFactory
from tests.recommender.factories import OfferFactory

RANK = reverse("api:offers-rank")
CUSTOMERS = [f"c{i}" for i in range(16)]


@pytest.fixture(autouse=True)
def _fresh_experiment_configs():
    experiment_serving._configs.clear()
    yield
    experiment_serving._configs.clear()


def _rank(client, customer_id, **body):
    response = client.post(RANK, {"customer_id": customer_id, **body}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def _probabilities(body) -> list[float]:
    return sorted((r["probability"] for r in body["ranking"]), reverse=True)


@pytest.fixture
def offers(db):
    """Three offers; the priority order is high, mid, low."""
    return [
        OfferFactory(name=name, priority=priority)
        for name, priority in (("low", 1), ("high", 9), ("mid", 5))
    ]


@pytest.fixture
def policy_test(offers):
    experiment = ExperimentFactory(key="offer-policy", status="running")
    VariantFactory(
        experiment=experiment, key="learned", is_control=True, config={"policy": "learned"}
    )
    VariantFactory(experiment=experiment, key="priority", config={"policy": "priority"})
    return experiment


def test_each_customer_is_ranked_by_their_variant_and_stays_in_it(
    policy_test, offers, storefront_client
):
    by_priority = [str(o.pk) for o in sorted(offers, key=lambda o: -o.priority)]
    served: dict[str, str] = {}
    for _ in range(2):
        for customer in CUSTOMERS:
            body = _rank(storefront_client, customer, experiment="offer-policy", k=3)
            assert body["experiment"] == "offer-policy"
            assert "reason" not in body
            assert served.setdefault(customer, body["variant"]) == body["variant"]  # sticky
            if body["variant"] == "priority":
                assert [r["id"] for r in body["ranking"]] == by_priority
                assert [r["probability"] for r in body["ranking"]] == [1.0, 0.0, 0.0]
            else:
                # The fresh learned policy: every offer ties, each first with p = 1/3.
                assert _probabilities(body) == [pytest.approx(1 / 3, abs=1e-5)] * 3
    assert set(served.values()) == {"learned", "priority"}
    assert served == {
        c: experiment_assign_variant(key="offer-policy", customer_id=c).variant for c in CUSTOMERS
    }
    # One exposure per customer, however many rankings they were served.
    assert redis_client().llen(experiment_serving.redis_key(EXPOSURE_BUFFER)) == len(CUSTOMERS)

    assert offer_log_process().flushed == 2 * len(CUSTOMERS)
    logged = OfferDecision.objects.values_list("customer_ref", "experiment", "variant", "mode")
    assert len(logged) == 2 * len(CUSTOMERS)
    for customer, experiment, variant, mode in logged:
        assert (experiment, variant) == ("offer-policy", served[customer])
        if variant == "priority":
            assert mode == DecisionMode.BASELINE


def test_a_variant_exploration_share_overrides_the_settings(offers, storefront_client):
    experiment = ExperimentFactory(key="offer-eps", status="running")
    VariantFactory(experiment=experiment, key="greedy", is_control=True, config={"exploration": 0})
    VariantFactory(
        experiment=experiment,
        key="wide",
        config={"policy": "priority", "exploration": 0.6},
    )
    # A learned policy whose scores differ between the offers (the fresh one ties them all).
    learner = LogisticPolicy(configured_policy_config())
    learner.weights = np.random.default_rng(7).normal(size=learner.weights.shape)
    ranker_publish(version=1, ranker=learner)

    variants = set()
    for customer in CUSTOMERS:
        body = _rank(storefront_client, customer, experiment="offer-eps")
        variants.add(body["variant"])
        assert body["model_version"] == 1
        if body["variant"] == "greedy":
            assert _probabilities(body) == [1.0, 0.0, 0.0]
        else:  # priority with p = 0.6 / 3 + 0.4 on the first
            assert _probabilities(body) == pytest.approx([0.6, 0.2, 0.2])
    assert variants == {"greedy", "wide"}
    # Without the experiment: the settings' 20% exploration.
    assert _probabilities(_rank(storefront_client, "c0")) == pytest.approx(
        [0.8 + 0.2 / 3, 0.2 / 3, 0.2 / 3], abs=1e-5
    )


def test_a_customer_in_the_holdout_gets_the_default_ranking(offers, storefront_client):
    experiment = ExperimentFactory(key="offer-hold", status="running", holdout_percent=50)
    VariantFactory(
        experiment=experiment, key="priority", is_control=True, config={"policy": "priority"}
    )
    answers = {c: _rank(storefront_client, c, experiment="offer-hold", k=3) for c in CUSTOMERS}
    held = [c for c, body in answers.items() if body["variant"] is None]
    assert held
    assert len(held) < len(CUSTOMERS)
    for customer in held:
        body = answers[customer]
        assert (body["experiment"], body["reason"]) == ("offer-hold", "holdout")
        assert _probabilities(body) == [pytest.approx(1 / 3, abs=1e-5)] * 3  # learned policy
        assert experiment_assign_variant(key="offer-hold", customer_id=customer).variant is None
    offer_log_process()
    assert sorted(
        OfferDecision.objects.filter(variant="").values_list("customer_ref", flat=True)
    ) == sorted(held)
    assert set(OfferDecision.objects.values_list("experiment", flat=True)) == {"offer-hold"}


def test_a_stopped_experiment_serves_the_default_ranking_with_the_reason(offers, storefront_client):
    experiment = ExperimentFactory(key="offer-stopped", status="stopped")
    VariantFactory(experiment=experiment, key="priority", config={"policy": "priority"})
    body = _rank(storefront_client, "c0", experiment="offer-stopped")
    assert (body["experiment"], body["variant"], body["reason"]) == (
        "offer-stopped",
        None,
        "not_running",
    )
    assert _probabilities(body) == [pytest.approx(1 / 3, abs=1e-5)] * 3


def test_unknown_experiment_is_404_and_nothing_is_ranked(offers, storefront_client):
    response = storefront_client.post(
        RANK, {"customer_id": "c0", "experiment": "nope"}, format="json"
    )
    assert response.status_code == 404
    assert response.json()["code"] == "experiment_not_found"
    assert set(response.json()) == {"code", "message", "extra"}
    assert redis_client().llen(redis_key(PENDING_KEY)) == 0
    bad = storefront_client.post(RANK, {"customer_id": "c0", "experiment": "a b"}, format="json")
    assert bad.status_code == 400
    assert "experiment" in bad.json()["extra"]["fields"]


def test_without_experiment_the_response_and_log_have_none(offers, storefront_client):
    body = _rank(storefront_client, "c0")
    assert {"experiment", "variant", "reason"}.isdisjoint(body)
    offer_log_process()
    assert OfferDecision.objects.values_list("experiment", "variant").get() == ("", "")


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, RankVariant(experiment="e", variant="v")),
        ({"policy": "priority"}, RankVariant("priority", None, "e", "v")),
        ({"exploration": 0.05}, RankVariant("learned", 0.05, "e", "v")),
        ({"policy": "random", "exploration": 2}, RankVariant(experiment="e", variant="v")),
        ({"exploration": True}, RankVariant(experiment="e", variant="v")),
    ],
)
def test_variant_config_values_it_does_not_understand_are_ignored(config, expected):
    assert RankVariant.from_config(config, experiment="e", variant="v") == expected


def test_policy_rank_takes_an_exploration_override():
    policy = LogisticPolicy(PolicyConfig(epsilon=0.2))
    policy.weights = np.random.default_rng(3).normal(size=policy.weights.shape)
    batch = policy.featurize(
        context={"page": "home"},
        customer={},
        actions=[{"id": f"a{i}", "features": {"category": f"c{i}"}} for i in range(4)],
    )
    assert sorted(policy.rank(batch, epsilon=0.0).probabilities) == [0.0, 0.0, 0.0, 1.0]
    assert sorted(policy.rank(batch).probabilities) == pytest.approx([0.05, 0.05, 0.05, 0.85])
    assert policy.config.epsilon == 0.2  # the override does not stick


def test_baseline_ranking_keeps_the_given_order():
    ranking = baseline_ranking(4, epsilon=0.0, rng=np.random.default_rng(0))
    assert ranking.order == (0, 1, 2, 3)
    assert ranking.probabilities == (1.0, 0.0, 0.0, 0.0)
