"""The global control group is one group: the customers campaigns skip as global control are
exactly those every experiment leaves out."""

import pytest

from campaigns.dispatch import messages_send_batch
from campaigns.models import Message
from experiments import serving
from experiments.services import MetricSpec, VariantSpec, experiment_create, experiment_start
from experiments.serving import experiment_assign_variant
from profiles.segments.services import segment_create_static
from tests.campaigns.factories import CampaignFactory, emailable_customer

pytestmark = pytest.mark.django_db(transaction=True)


def test_campaigns_and_experiments_leave_out_the_same_customers(sendgrid_stand_in, settings):
    settings.CAMPAIGN_GLOBAL_CONTROL_PERCENT = 25
    serving._configs.clear()
    customers = [
        emailable_customer(external_id=f"gc-{i}", email=f"gc-{i}@example.com") for i in range(60)
    ]
    segment = segment_create_static(
        name="Everyone", kind="imported", customer_ids=[c.pk for c in customers]
    )
    campaign = CampaignFactory(name="Spring", segment=segment, status="sending")
    for key in ("banner", "checkout"):
        experiment_start(
            experiment=experiment_create(
                key=key,
                variants=[VariantSpec(key="a"), VariantSpec(key="b")],
                metric=MetricSpec(event_type="purchase"),
            )
        )

    messages_send_batch(campaign=campaign, customer_ids=[c.pk for c in customers])

    skipped = set(
        Message.objects.filter(campaign=campaign, skip_reason="global_control").values_list(
            "customer__external_id", flat=True
        )
    )
    assert 5 <= len(skipped) <= 30
    for key in ("banner", "checkout"):
        left_out = {
            c.external_id
            for c in customers
            if experiment_assign_variant(key=key, customer_id=c.external_id).reason
            == "global_control"
        }
        assert left_out == skipped
    assert {
        r.json()["personalizations"][0]["to"][0]["email"] for r in sendgrid_stand_in.requests
    } == {c.email for c in customers if c.external_id not in skipped}
