"""The experiment pages: create and edit with the variants formset, start and stop (role
checked), and the results page with its charts, table and decision."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from experiments.models import AllocationChange, Experiment, Exposure, SequentialLook
from profiles.models import Customer, Event
from tests.experiments.factories import ExperimentFactory, VariantFactory
from tests.profiles.factories import SegmentFactory

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def _post_data(**changes) -> dict:
    data = {
        "key": "hero-banner",
        "name": "Hero banner",
        "hypothesis": "A red banner sells more",
        "audience_segment": "",
        "traffic_percent": "50",
        "holdout_percent": "10",
        "metric_kind": "conversion",
        "metric_event_type": "purchase",
        "metric_window_days": "7",
        "guardrail_events": ["unsubscribe"],
        "guardrail_window_days": "3",
        "allocation": "thompson",
        "bandit_burn_in": "200",
        "bandit_min_share": "0.05",
        "bandit_epsilon": "0.1",
        "variants-TOTAL_FORMS": "3",
        "variants-INITIAL_FORMS": "0",
        "variants-MIN_NUM_FORMS": "2",
        "variants-MAX_NUM_FORMS": "1000",
        "variants-0-key": "control",
        "variants-0-weight": "2",
        "variants-1-key": "red",
        "variants-1-weight": "1",
        "variants-1-is_control": "",
        "variants-1-config": '{"color": "red"}',
        "variants-2-key": "blue",
        "variants-2-name": "Blue banner",
        "variants-2-weight": "1",
    }
    data.update(changes)
    return data


def test_marketer_creates_a_bandit_from_the_form(marketer_client):
    segment = SegmentFactory()
    response = marketer_client.post(
        reverse("experiments:experiment-create"),
        _post_data(audience_segment=str(segment.pk)),
        headers=HTMX,
    )
    assert response.status_code == 200, response.content
    assert response["HX-Redirect"] == "/experiments/hero-banner/"
    experiment = Experiment.objects.get(key="hero-banner")
    assert (experiment.name, experiment.kind, experiment.allocation, experiment.status) == (
        "Hero banner",
        "bandit",
        "thompson",
        "draft",
    )
    assert (experiment.traffic_percent, experiment.holdout_percent) == (50.0, 10.0)
    assert experiment.audience_segment == segment
    assert (experiment.bandit_burn_in, experiment.bandit_min_share) == (200, 0.05)
    assert experiment.guardrails == [
        {"event_type": "unsubscribe", "window_days": 3, "kind": "conversion"}
    ]
    variants = list(
        experiment.variants.values_list("key", "name", "weight", "is_control", "config")
    )
    assert variants == [
        ("control", "control", 2, True, {}),
        ("red", "red", 1, False, {"color": "red"}),
        ("blue", "Blue banner", 1, False, {}),
    ]


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"variants-1-key": "control"}, "variant-errors", "Variant keys must be unique: control."),
        ({"variants-1-config": "[1]"}, None, "A JSON object is required"),
        ({"traffic_percent": "0"}, "traffic_percent-error", "greater than or equal to 0.01"),
        (
            {"variants-1-is_control": "on", "variants-0-is_control": "on"},
            "variant-errors",
            "Only one variant can be the control.",
        ),
        ({"bandit_min_share": "0.4"}, "form-errors", "more than all the traffic"),
    ],
)
def test_invalid_form_is_rerendered_with_errors_and_creates_nothing(
    marketer_client, changes, field, message
):
    response = marketer_client.post(
        reverse("experiments:experiment-create"), _post_data(**changes), headers=HTMX
    )
    assert response.status_code == 200
    content = response.content.decode()
    assert message in content
    if field:
        assert f'id="{field}"' in content
    assert "HX-Redirect" not in response
    assert not Experiment.objects.exists()


def test_analyst_cannot_create_start_or_stop(analyst_client):
    experiment = ExperimentFactory(key="x")
    assert analyst_client.get(reverse("experiments:experiment-create")).status_code == 403
    assert (
        analyst_client.post(reverse("experiments:experiment-create"), _post_data()).status_code
        == 403
    )
    url = reverse("experiments:experiment-action", args=["x", "start"])
    assert analyst_client.post(url).status_code == 403
    experiment.refresh_from_db()
    assert experiment.status == "draft"
    assert Experiment.objects.count() == 1


def test_edit_a_draft_replaces_variants_and_start_stop_buttons(marketer_client):
    marketer_client.post(reverse("experiments:experiment-create"), _post_data())
    edit = reverse("experiments:experiment-edit", args=["hero-banner"])
    page = marketer_client.get(edit)
    assert page.status_code == 200
    assert 'value="hero-banner"' in page.content.decode()
    data = _post_data(allocation="fixed", traffic_percent="100", **{"variants-TOTAL_FORMS": "2"})
    response = marketer_client.post(edit, data)
    assert response.status_code == 302
    experiment = Experiment.objects.get(key="hero-banner")
    assert (experiment.allocation, experiment.kind, experiment.traffic_percent) == (
        "fixed",
        "ab",
        100.0,
    )
    assert list(experiment.variants.values_list("key", flat=True)) == ["control", "red"]

    results = reverse("experiments:experiment-results", args=["hero-banner"])
    assert 'id="start-experiment"' in marketer_client.get(results).content.decode()
    start = marketer_client.post(
        reverse("experiments:experiment-action", args=["hero-banner", "start"])
    )
    assert start.status_code == 302
    experiment.refresh_from_db()
    assert experiment.status == "running"
    assert AllocationChange.objects.get(experiment=experiment).weights == {
        "control": pytest.approx(2 / 3),
        "red": pytest.approx(1 / 3),
    }
    # A running experiment is no longer editable; the page offers Stop.
    assert marketer_client.get(edit).status_code == 302
    assert marketer_client.post(edit, data).status_code == 200
    assert 'id="stop-experiment"' in marketer_client.get(results).content.decode()
    marketer_client.post(reverse("experiments:experiment-action", args=["hero-banner", "stop"]))
    experiment.refresh_from_db()
    assert experiment.status == "stopped"
    again = marketer_client.post(
        reverse("experiments:experiment-action", args=["hero-banner", "start"]), follow=True
    )
    assert "was stopped; create a new one" in again.content.decode()


def _checkout():
    """600 exposed per variant over three days; 5% and 15% buy."""
    experiment = ExperimentFactory(key="checkout", name="Checkout", status="running")
    control = VariantFactory(experiment=experiment, key="control", is_control=True)
    b = VariantFactory(experiment=experiment, key="b")
    at = timezone.now() - timedelta(days=9)
    for variant, buyers in ((control, 30), (b, 90)):
        customers = Customer.objects.bulk_create(
            Customer(external_id=f"{variant.key}-{i}", email=f"{variant.key}{i}@x.com")
            for i in range(600)
        )
        Exposure.objects.bulk_create(
            Exposure(
                experiment=experiment,
                customer=c,
                variant=variant,
                exposed_at=at + timedelta(days=i % 3),
                propensity=0.5,
            )
            for i, c in enumerate(customers)
        )
        Event.objects.bulk_create(
            Event(customer=c, type="purchase", occurred_at=at + timedelta(days=4))
            for c in customers[:buyers]
        )
    return experiment, b


@pytest.mark.parametrize("client_fixture", ["marketer_client", "analyst_client"])
def test_results_page_shows_table_charts_and_decision(request, client_fixture):
    cache.clear()
    client = request.getfixturevalue(client_fixture)
    _checkout()
    response = client.get(reverse("experiments:experiment-results", args=["checkout"]))
    assert response.status_code == 200
    content = response.content.decode()
    # 600 users each, 5% against 15%: the always-valid p-value (mixture at 25% of control) is
    # about 0.003, so the sequential gate is passed and P(beat) is near 1.
    assert "b wins with over 99% probability; expected loss &lt;0.01%" in content
    assert "Keep running" not in content
    assert 'id="cumulative-chart"' in content
    assert 'id="lift-chart"' in content
    assert "5.0 %" in content  # control's conversion
    assert "15.0 %" in content  # b's
    assert "Sample ratio check" in content
    rows = response.context["rows"]
    assert [r["users"] for r in rows] == [600, 600]
    assert rows[1]["comparison"]["prob_beat_control"] > 0.99
    assert ('id="stop-experiment"' in content) is (client_fixture == "marketer_client")


def test_results_page_of_unknown_experiment_is_404(marketer_client):
    assert marketer_client.get("/experiments/nope/").status_code == 404


def test_results_page_states_the_winner_once_the_sequential_test_is_conclusive(marketer_client):
    cache.clear()
    experiment, b = _checkout()
    # An earlier daily look was already conclusive: the always-valid p-value stays there.
    SequentialLook.objects.create(
        experiment=experiment,
        variant=b,
        metric="primary",
        day=timezone.now().date() - timedelta(days=1),
        p_value=0.001,
        users=500,
    )
    content = marketer_client.get("/experiments/checkout/").content.decode()
    assert "b wins with over 99% probability; expected loss &lt;0.01%" in content
