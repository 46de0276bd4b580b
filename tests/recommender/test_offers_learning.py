import numpy as np
import pytest

from marketing.models import Job
from recommender.models import DecisionMode, OfferDecision, OfferPolicySnapshot
from recommender.offers_learning import (
    EVALUATION_JOB_KIND,
    offer_evaluation_run,
    offer_evaluation_start,
    offer_policy_learn,
)
from recommender.offers_log import offer_log_process, reward_record
from recommender.offers_policy import (
    STATE_KEY,
    VERSION_KEY,
    ranker_from_bytes,
    ranker_learner,
    redis_client,
    redis_key,
)
from recommender.offers_serving import offers_rank, stamps_forget
from recommender.tasks import offer_log_process_task, offer_policy_learn_task
from tests.recommender.factories import OfferFactory
from tests.recommender.offers_helpers import profiled_customer


def _rounds(n, *, good, context=None, seed=0):
    """Rank for the profiled customer n times; the `good` offer's first slot is rewarded."""
    rng = np.random.default_rng(seed)
    stamps_forget()  # serve the latest published version (read once a second otherwise)
    for _ in range(n):
        result = offers_rank(customer_external_id="cust-a", context=context or {"page": "home"})
        first = result.ranking[0][0]
        clicked = first == good and rng.random() < 0.9
        reward_record(event_id=result.event_id, reward=1.0 if clicked else 0.0)


@pytest.mark.django_db
def test_learning_publishes_a_new_version_that_the_rank_path_serves():
    profiled_customer()
    good = OfferFactory()
    OfferFactory.create_batch(2)
    _rounds(30, good=str(good.pk))
    assert offer_log_process().rewards == 30

    result = offer_policy_learn()

    assert (result.version, result.learned, result.snapshot) == (1, 30, True)
    assert int(redis_client().get(redis_key(VERSION_KEY))) == 1
    state = ranker_from_bytes(redis_client().get(redis_key(STATE_KEY)))
    assert ranker_learner(state).updates == 30
    assert set(OfferDecision.objects.values_list("learned_version", flat=True)) == {1}
    assert OfferPolicySnapshot.objects.get().version == 1
    stamps_forget()
    assert offers_rank(customer_external_id="cust-a", context={}).model_version == 1
    # Nothing new: no new version.
    assert offer_policy_learn() == type(result)(version=1, learned=0)


@pytest.mark.django_db
def test_a_lost_redis_restarts_from_the_snapshot_and_replays_later_rewards():
    profiled_customer()
    good = OfferFactory()
    OfferFactory()
    _rounds(10, good=str(good.pk))
    offer_log_process()
    offer_policy_learn()  # v1, snapshot v1
    _rounds(5, good=str(good.pk), seed=1)
    offer_log_process()
    assert offer_policy_learn().version == 2  # no snapshot: the last is recent
    redis_client().delete(redis_key(VERSION_KEY), redis_key(STATE_KEY))

    result = offer_policy_learn()

    assert (result.version, result.learned) == (2, 5)
    state = ranker_from_bytes(redis_client().get(redis_key(STATE_KEY)))
    assert ranker_learner(state).updates == 15  # every reward exactly once


@pytest.mark.django_db
def test_the_ranker_learns_which_offer_is_clicked(settings):
    settings.OFFERS_EXPLORATION = 0.2
    profiled_customer()
    good = OfferFactory(name="good")
    OfferFactory.create_batch(4)
    for seed in range(4):
        _rounds(100, good=str(good.pk), seed=seed)
        offer_log_process()
        offer_policy_learn_task()

    stamps_forget()
    firsts = [
        offers_rank(customer_external_id="cust-a", context={"page": "home"}).ranking[0][0]
        for _ in range(100)
    ]
    # Greedy 80% + 1/5 of the 20% explored: ~84% expected.
    assert firsts.count(str(good.pk)) >= 70
    modes = set(OfferDecision.objects.values_list("mode", flat=True))
    assert modes == {DecisionMode.LEARNED, DecisionMode.EXPLORE}


@pytest.mark.django_db
def test_apprentice_mode_serves_the_priority_order_until_it_graduates(settings):
    settings.OFFERS_APPRENTICE = True
    settings.OFFERS_EXPLORATION = 0.0
    first = OfferFactory(priority=9)
    second = OfferFactory(priority=5)
    third = OfferFactory(priority=1)
    offer_policy_learn()  # publishes the configured (apprentice) ranker

    result = offers_rank(customer_external_id="new", context={}, k=3)

    assert [i for i, _ in result.ranking] == [str(first.pk), str(second.pk), str(third.pk)]
    assert result.ranking[0][1] == 1.0
    offer_log_process()
    assert OfferDecision.objects.get().mode == DecisionMode.BASELINE


@pytest.mark.django_db
def test_log_and_learn_tasks_are_safe_to_run_twice():
    profiled_customer()
    good = OfferFactory()
    _rounds(5, good=str(good.pk))
    assert offer_log_process_task()["flushed"] == 5
    assert offer_log_process_task()["flushed"] == 0
    assert offer_policy_learn_task()["learned"] == 5
    assert offer_policy_learn_task()["learned"] == 0
    assert OfferDecision.objects.filter(reward__isnull=False).count() == 5


@pytest.mark.django_db
def test_offline_evaluation_job_scores_candidate_settings(django_capture_on_commit_callbacks):
    profiled_customer()
    good = OfferFactory()
    OfferFactory.create_batch(2)
    _rounds(60, good=str(good.pk))
    offer_log_process()
    with django_capture_on_commit_callbacks() as callbacks:
        job = offer_evaluation_start()
    assert len(callbacks) == 1
    assert job.kind == EVALUATION_JOB_KIND

    offer_evaluation_run(job_id=job.pk)

    job = Job.objects.get(pk=job.pk)
    assert job.status == "done"
    assert job.done == job.total
    assert job.result["decisions"] == 60
    settings_ = job.result["settings"]
    assert {"logged", "current", "uniform", "exploration 5%", "linucb", "no segments"} <= set(
        settings_
    )
    assert 0.0 <= settings_["current"]["dr"]["value"] <= 1.5
    assert settings_["current"]["config"]["epsilon"] == 0.2
    # A redelivered task does nothing.
    offer_evaluation_run(job_id=job.pk)
    assert Job.objects.get(pk=job.pk).finished_at == job.finished_at


@pytest.mark.django_db
def test_offline_evaluation_without_decisions_fails_with_a_message():
    job = offer_evaluation_start()
    offer_evaluation_run(job_id=job.pk)
    job = Job.objects.get(pk=job.pk)
    assert job.status == "failed"
    assert job.error == "No rewarded decisions to evaluate yet."
