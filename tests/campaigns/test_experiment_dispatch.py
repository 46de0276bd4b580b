"""A campaign run as an experiment: dispatch sends each recipient the variant assignment
gives (sticky, exposure logged with its propensity), held-out recipients get no message,
and the campaign pages link to the results."""

from collections import Counter

import pytest
from django.test import Client
from django.urls import reverse

from campaigns.dispatch import messages_send_batch
from campaigns.models import Campaign, CampaignVariant, Message
from experiments import serving
from experiments.errors import ExperimentInvalidError
from experiments.models import Experiment, Exposure
from experiments.services import (
    campaign_experiment_create,
    experiment_allocation_set,
    exposures_flush,
)
from experiments.serving import experiment_assign_variant
from tests.campaigns.factories import MessageTemplateFactory
from tests.campaigns.test_dispatch import pks, recipients, sending_campaign

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_process_cache():
    serving._configs.clear()
    yield
    serving._configs.clear()


def _start(campaign):
    Campaign.objects.filter(pk=campaign.pk).update(status="sending")


def test_a_campaign_that_started_sending_cannot_become_an_experiment(marketer_client):
    campaign = sending_campaign(recipients(2, prefix="late"))
    _two_variants(campaign)

    with pytest.raises(ExperimentInvalidError) as error:
        campaign_experiment_create(campaign=campaign)

    refusal = (
        "Only a draft or scheduled campaign can run as an experiment: this one has started sending."
    )
    assert error.value.extra["fields"]["campaign"] == [refusal]
    url = reverse("experiments:campaign-experiment-create", args=[campaign.pk])
    form = {"allocation": "ucb1", "holdout_percent": "0"}
    assert refusal in marketer_client.post(url, form, follow=True).content.decode()
    assert Experiment.objects.count() == 0


def _two_variants(campaign):
    a = CampaignVariant.objects.create(
        campaign=campaign, name="A", template=MessageTemplateFactory(subject="Subject A")
    )
    b = CampaignVariant.objects.create(
        campaign=campaign, name="B", template=MessageTemplateFactory(subject="Subject B")
    )
    return a, b


def test_thompson_experiment_picks_each_recipients_variant(sendgrid_stand_in):
    customers = recipients(40, prefix="tx")
    campaign = sending_campaign(
        customers, goal_event_type="purchase", goal_window_hours=36, status="scheduled"
    )
    a, b = _two_variants(campaign)
    experiment = campaign_experiment_create(campaign=campaign, allocation="thompson")
    _start(campaign)
    assert (experiment.key, experiment.status, experiment.allocation) == (
        f"campaign-{campaign.pk}",
        "running",
        "thompson",
    )
    assert (experiment.metric_event_type, experiment.metric_window_days) == ("purchase", 2)
    assert list(experiment.variants.values_list("key", "is_control", "config")) == [
        (f"v{a.pk}", True, {"campaign_variant_id": a.pk}),
        (f"v{b.pk}", False, {"campaign_variant_id": b.pk}),
    ]
    # The bandit has moved traffic: 80% to B from now on.
    experiment_allocation_set(
        experiment=experiment, weights={f"v{a.pk}": 0.2, f"v{b.pk}": 0.8}, reason="bandit"
    )
    serving._configs.clear()

    messages_send_batch(campaign=campaign, customer_ids=pks(customers))

    sent = {
        m.customer.external_id: m.variant_id for m in Message.objects.select_related("customer")
    }
    assert len(sent) == 40
    expected = {
        c.external_id: {f"v{a.pk}": a.pk, f"v{b.pk}": b.pk}[
            experiment_assign_variant(key=experiment.key, customer_id=c.external_id).variant
        ]
        for c in customers
    }
    assert sent == expected
    assert set(Counter(sent.values())) == {a.pk, b.pk}
    subjects = Counter(r.json()["subject"] for r in sendgrid_stand_in.requests)
    assert subjects == Counter(
        {"Subject A": list(sent.values()).count(a.pk), "Subject B": list(sent.values()).count(b.pk)}
    )
    # Each recipient's first assignment is their exposure, with the weight in force then.
    assert exposures_flush().stored == 40
    exposures = Exposure.objects.filter(experiment=experiment)
    assert {
        (e.variant.config["campaign_variant_id"], round(e.propensity, 6)) for e in exposures
    } == {
        (a.pk, 0.2),
        (b.pk, 0.8),
    }


def test_held_out_recipients_get_no_message(sendgrid_stand_in):
    customers = recipients(30, prefix="ho")
    campaign = sending_campaign(customers, status="scheduled")
    _two_variants(campaign)
    experiment = campaign_experiment_create(campaign=campaign, holdout_percent=40)
    _start(campaign)
    messages_send_batch(campaign=campaign, customer_ids=pks(customers))
    held = {
        c.pk
        for c in customers
        if experiment_assign_variant(key=experiment.key, customer_id=c.external_id).reason
        == "holdout"
    }
    assert 0 < len(held) < 30
    skipped = set(
        Message.objects.filter(status="skipped", skip_reason="holdout").values_list(
            "customer_id", flat=True
        )
    )
    assert skipped == held
    assert len(sendgrid_stand_in.requests) == 30 - len(held)
    exposures_flush()
    assert Exposure.objects.filter(experiment=experiment, variant=None).count() == len(held)


def test_a_campaign_needs_two_variants_and_one_experiment():
    campaign = sending_campaign(recipients(1, prefix="one"), status="draft")
    with pytest.raises(ExperimentInvalidError) as error:
        campaign_experiment_create(campaign=campaign)
    assert error.value.extra["fields"]["variants"] == [
        "The campaign needs at least 2 variants to run as an experiment."
    ]
    _two_variants(campaign)
    campaign_experiment_create(campaign=campaign)
    with pytest.raises(ExperimentInvalidError) as error:
        campaign_experiment_create(campaign=campaign)
    assert error.value.extra["fields"]["campaign"] == [
        "This campaign already runs as an experiment."
    ]
    assert Experiment.objects.count() == 1


def test_run_as_experiment_from_the_campaign_page(marketer_client, analyst):
    analyst_client = Client()
    analyst_client.force_login(analyst)
    campaign = sending_campaign(recipients(1, prefix="pg"), status="draft")
    _two_variants(campaign)
    detail = reverse("campaigns:campaign-detail", args=[campaign.pk])
    assert 'id="run-as-experiment"' in marketer_client.get(detail).content.decode()
    assert 'id="run-as-experiment"' not in analyst_client.get(detail).content.decode()
    url = reverse("experiments:campaign-experiment-create", args=[campaign.pk])
    assert analyst_client.post(url, {"allocation": "ucb1"}).status_code == 403
    assert not Experiment.objects.exists()

    bad = marketer_client.post(url, {"allocation": "nope", "holdout_percent": "5"}, follow=True)
    assert "Not started: allocation: Select a valid choice." in bad.content.decode()
    assert not Experiment.objects.exists()
    response = marketer_client.post(url, {"allocation": "ucb1", "holdout_percent": "5"})
    experiment = Experiment.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/experiments/{experiment.key}/"
    assert (experiment.campaign, experiment.allocation, experiment.holdout_percent) == (
        campaign,
        "ucb1",
        5.0,
    )
    page = marketer_client.get(detail).content.decode()
    assert f'href="/experiments/{experiment.key}/"' in page
    report = marketer_client.get(reverse("campaigns:campaign-report", args=[campaign.pk]))
    assert 'id="experiment-results"' in report.content.decode()
    results = marketer_client.get(f"/experiments/{experiment.key}/").content.decode()
    assert f"/campaigns/{campaign.pk}/report/" in results
