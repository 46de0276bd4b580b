"""The recommendations API with `experiment`: the customer is assigned, the variant's
strategy is served and the response reports the experiment and variant."""

import pytest

from experiments import serving as experiment_serving
from experiments.serving import experiment_assign_variant
from recommender.serving_services import recommendation_lists_store
from tests.experiments.factories import ExperimentFactory, VariantFactory
from tests.recommender.factories import ModelVersionFactory
from tests.recommender.test_serving import (  # noqa: F401 (fixtures)
    URL,
    _customer,
    _fresh_serving_state,
    catalog,
)


@pytest.fixture(autouse=True)
def _fresh_experiment_configs():
    experiment_serving._configs.clear()
    yield
    experiment_serving._configs.clear()


@pytest.fixture
def strategy_test(catalog):  # noqa: F811
    experiment = ExperimentFactory(key="recs", status="running")
    VariantFactory(
        experiment=experiment, key="model", is_control=True, config={"strategy": "default"}
    )
    VariantFactory(experiment=experiment, key="popular", config={"strategy": "popular"})
    customers = [_customer(external_id=f"c{i}") for i in range(12)]
    version = ModelVersionFactory(algorithm="hybrid", is_active=True)
    recommendation_lists_store(
        version=version, rows=[(c.pk, ["i7", "i5"], [2.0, 1.0]) for c in customers]
    )
    return customers


def test_each_customer_gets_the_strategy_of_their_variant(strategy_test, storefront_client):
    served = {}
    for customer in strategy_test:
        response = storefront_client.get(
            URL.format(customer.external_id), {"k": 2, "experiment": "recs"}
        )
        assert response.status_code == 200, response.content
        body = response.json()
        served[customer.external_id] = (body["experiment"], body["variant"], body["strategy"])
    expected = {
        c.external_id: experiment_assign_variant(key="recs", customer_id=c.external_id).variant
        for c in strategy_test
    }
    assert {k: v[1] for k, v in served.items()} == expected
    assert set(expected.values()) == {"model", "popular"}
    for external_id, (key, variant, strategy) in served.items():
        assert key == "recs"
        assert strategy == {"model": "personalized", "popular": "popular"}[variant], external_id


def test_without_experiment_the_response_has_no_experiment_fields(strategy_test, storefront_client):
    body = storefront_client.get(URL.format("c0"), {"k": 2}).json()
    assert "experiment" not in body
    assert "variant" not in body
    assert body["strategy"] == "personalized"


def test_not_in_the_experiment_serves_the_requested_strategy(strategy_test, storefront_client):
    ExperimentFactory(key="stopped-recs", status="stopped")
    body = storefront_client.get(URL.format("c0"), {"k": 2, "experiment": "stopped-recs"}).json()
    assert (body["experiment"], body["variant"], body["strategy"]) == (
        "stopped-recs",
        None,
        "personalized",
    )


def test_unknown_experiment_is_404(strategy_test, storefront_client):
    response = storefront_client.get(URL.format("c0"), {"experiment": "nope"})
    assert response.status_code == 404
    assert response.json()["code"] == "experiment_not_found"
    assert storefront_client.get(URL.format("c0"), {"experiment": "a b"}).status_code == 400
