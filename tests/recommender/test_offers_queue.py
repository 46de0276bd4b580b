"""The offer ranker's periodic tasks have their own Celery queue (issue #8): a model training
on the recommender queue must not hold back the one-minute model update."""

import pytest

from marketing.celery import ALL_QUEUES, Queue, app


@pytest.fixture(scope="module")
def router():
    app.loader.import_default_modules()
    return app.amqp.router


@pytest.mark.parametrize(
    "task", ["recommender.offer_log_process", "recommender.offer_policy_learn"]
)
def test_offer_log_and_learner_go_to_the_offers_queue(router, task):
    assert router.route({}, task)["queue"].name == Queue.OFFERS.value


@pytest.mark.parametrize(
    "task",
    [
        "recommender.model_train",
        "recommender.model_train_all",
        "recommender.retrain_if_needed",
        "recommender.offer_evaluation_run",
    ],
)
def test_long_recommender_work_stays_on_the_recommender_queue(router, task):
    assert router.route({}, task)["queue"].name == Queue.RECOMMENDER.value


def test_a_worker_of_all_queues_takes_the_offers_queue():
    assert Queue.OFFERS.value in ALL_QUEUES.split(",")
