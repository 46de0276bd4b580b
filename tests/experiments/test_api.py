"""POST /api/v1/experiments, start/stop, assign: validation, scopes, shapes."""

import pytest
from rest_framework.test import APIClient

from experiments import serving
from experiments.models import AllocationChange, Experiment, Variant
from marketing.services import api_key_create
from tests.helpers import api_key_client, start_of_rate_window
from tests.profiles.factories import SegmentFactory

pytestmark = pytest.mark.django_db(transaction=True)

BODY = {
    "key": "banner",
    "variants": [{"key": "control", "weight": 1}, {"key": "red", "weight": 1}],
    "metric": {"event_type": "purchase", "window_days": 7},
    "allocation": "fixed",
}


@pytest.fixture(autouse=True)
def _fresh_process_cache():
    serving._configs.clear()
    yield
    serving._configs.clear()


@pytest.fixture
def automation():
    return api_key_client("experiments:read", "experiments:write", "experiments:assign")


def create(client, **changes):
    return client.post("/api/v1/experiments", {**BODY, **changes}, format="json")


def fields(response):
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid"
    return body["extra"]["fields"]


def test_create_start_assign_stop(automation):
    response = create(
        automation,
        hypothesis="Red sells more",
        guardrails=[{"event_type": "unsubscribe", "window_days": 3}],
        traffic_percent=50,
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["key"] == "banner"
    assert body["name"] == "banner"
    assert body["status"] == "draft"
    assert body["kind"] == "ab"
    assert body["metric"] == {"event_type": "purchase", "window_days": 7, "kind": "conversion"}
    assert body["guardrails"] == [
        {"event_type": "unsubscribe", "window_days": 3, "kind": "conversion"}
    ]
    assert body["traffic_percent"] == 50.0
    assert body["allocation_params"] == {"burn_in": 100, "min_share": 0.01, "epsilon": 0.1}
    assert [(v["key"], v["is_control"], v["allocation_weight"]) for v in body["variants"]] == [
        ("control", True, None),
        ("red", False, None),
    ]

    assert automation.post("/api/v1/experiments/banner/assign", {"customer_id": "c-1"}).json() == {
        "experiment": "banner",
        "variant": None,
        "in_experiment": False,
        "reason": "not_running",
    }
    started = automation.post("/api/v1/experiments/banner/start")
    assert started.status_code == 200
    assert started.json()["status"] == "running"
    assert [v["allocation_weight"] for v in started.json()["variants"]] == [0.5, 0.5]
    assert automation.post("/api/v1/experiments/banner/start").status_code == 200  # no-op
    assert AllocationChange.objects.count() == 1

    answers = [
        automation.post(
            "/api/v1/experiments/banner/assign", {"customer_id": f"c-{i}"}, format="json"
        ).json()
        for i in range(200)
    ]
    inside = [a for a in answers if a["in_experiment"]]
    assert 70 <= len(inside) <= 130
    assert {a["variant"] for a in inside} == {"control", "red"}
    assert all("reason" not in a for a in inside)
    assert {a["reason"] for a in answers if not a["in_experiment"]} == {"traffic"}
    assert all(a["variant"] is None for a in answers if not a["in_experiment"])

    stopped = automation.post("/api/v1/experiments/banner/stop")
    assert stopped.json()["status"] == "stopped"
    assert automation.post("/api/v1/experiments/banner/start").json()["code"] == (
        "experiment_status_conflict"
    )
    again = automation.post("/api/v1/experiments/banner/assign", {"customer_id": "c-1"})
    assert again.json()["reason"] == "not_running"


def test_no_control_flag_makes_the_first_variant_the_control(automation):
    body = create(automation, variants=[{"key": "a"}, {"key": "b", "weight": 3}]).json()
    assert [(v["key"], v["weight"], v["is_control"]) for v in body["variants"]] == [
        ("a", 1, True),
        ("b", 3, False),
    ]
    flagged = create(
        automation, key="second", variants=[{"key": "a"}, {"key": "b", "is_control": True}]
    ).json()
    assert [v["is_control"] for v in flagged["variants"]] == [False, True]


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"variants": [{"key": "only"}]}, "variants", "An experiment needs at least 2 variants."),
        (
            {"variants": [{"key": "a", "weight": 0}, {"key": "b", "weight": 0}]},
            "variants",
            "At least one variant needs a weight above 0.",
        ),
        (
            {"variants": [{"key": "a"}, {"key": "a"}]},
            "variants",
            "Variant keys must be unique: a.",
        ),
        (
            {"variants": [{"key": "a", "is_control": True}, {"key": "b", "is_control": True}]},
            "variants",
            "Only one variant can be the control.",
        ),
        (
            {
                "allocation": "thompson",
                "allocation_params": {"min_share": 0.4},
                "variants": [{"key": "a"}, {"key": "b"}, {"key": "c"}],
            },
            "allocation_params",
            "A min_share of 0.4 for 3 variants is more than all the traffic.",
        ),
    ],
)
def test_rules_on_variants_are_field_errors(automation, changes, field, message):
    assert fields(create(automation, **changes)) == {field: [message]}
    assert not Experiment.objects.exists()
    assert not Variant.objects.exists()


def test_shape_errors_are_reported_by_field(automation):
    errors = fields(
        create(
            automation,
            key="Not a slug!",
            metric={"event_type": "teleport", "window_days": 0},
            allocation="random",
            traffic_percent=0,
            audience_segment=999_999,
            variants=[{"key": "a", "weight": -1}, {"weight": 1}],
        )
    )
    assert set(errors) == {
        "key",
        "metric",
        "allocation",
        "traffic_percent",
        "audience_segment",
        "variants",
    }
    assert errors["metric"] == {
        "event_type": ['"teleport" is not a valid choice.'],
        "window_days": ["Ensure this value is greater than or equal to 1."],
    }
    assert errors["variants"] == {
        "0": {"weight": ["Ensure this value is greater than or equal to 0."]},
        "1": {"key": ["This field is required."]},
    }
    assert fields(automation.post("/api/v1/experiments", {}, format="json")).keys() == {
        "key",
        "variants",
        "metric",
    }


def test_duplicate_key_is_a_field_error(automation):
    assert create(automation).status_code == 201
    assert fields(create(automation, name="Other name")) == {
        "key": ["An experiment with this key already exists."]
    }
    assert Experiment.objects.count() == 1


def test_bandit_with_an_audience(automation):
    segment = SegmentFactory()
    body = create(
        automation,
        allocation="thompson",
        audience_segment=segment.pk,
        holdout_percent=5,
        allocation_params={"burn_in": 200, "min_share": 0.05},
    ).json()
    assert body["kind"] == "bandit"
    assert body["audience_segment"] == segment.pk
    assert body["holdout_percent"] == 5.0
    assert body["allocation_params"] == {"burn_in": 200, "min_share": 0.05, "epsilon": 0.1}


def test_list_and_detail(automation):
    create(automation)
    create(automation, key="second")
    automation.post("/api/v1/experiments/second/start")
    listing = automation.get("/api/v1/experiments").json()
    assert listing["count"] == 2
    assert [e["key"] for e in listing["results"]] == ["second", "banner"]
    running = automation.get("/api/v1/experiments", {"status": "running"}).json()
    assert [e["key"] for e in running["results"]] == ["second"]
    assert fields(automation.get("/api/v1/experiments", {"status": "paused"})) == {
        "status": ["One of draft, running, stopped."]
    }
    assert automation.get("/api/v1/experiments/banner").json()["key"] == "banner"
    assert automation.get("/api/v1/experiments/nope").status_code == 404


def test_unknown_experiment_and_bad_assign_input(automation):
    missing = automation.post("/api/v1/experiments/nope/assign", {"customer_id": "c"})
    assert missing.status_code == 404
    assert missing.json()["code"] == "experiment_not_found"
    create(automation)
    assert fields(automation.post("/api/v1/experiments/banner/assign", {}, format="json")) == {
        "customer_id": ["This field is required."]
    }
    assert automation.post("/api/v1/experiments/banner/stop").status_code == 409


@pytest.mark.parametrize(
    ("scopes", "allowed"),
    [
        (("experiments:read",), {"list", "detail"}),
        (("experiments:write",), {"create", "start"}),
        (("experiments:assign",), {"assign"}),
        (("segments:read", "segments:write"), set()),
    ],
)
def test_scopes(automation, scopes, allowed):
    create(automation, key="existing")
    client = api_key_client(*scopes, name="scoped")
    calls = {
        "list": lambda: client.get("/api/v1/experiments"),
        "detail": lambda: client.get("/api/v1/experiments/existing"),
        "create": lambda: create(client),
        "start": lambda: client.post("/api/v1/experiments/existing/start"),
        "assign": lambda: client.post("/api/v1/experiments/existing/assign", {"customer_id": "c"}),
    }
    for name, call in calls.items():
        status = call().status_code
        assert (status < 400) is (name in allowed), (name, status)
        if name not in allowed:
            assert status == 403


def test_logged_in_analyst_reads_but_cannot_create(analyst_client):
    assert analyst_client.get("/api/v1/experiments").status_code == 200
    denied = analyst_client.post("/api/v1/experiments", BODY, content_type="application/json")
    assert denied.status_code == 403
    assert not Experiment.objects.exists()


def test_logged_in_marketer_creates(marketer_client):
    created = marketer_client.post("/api/v1/experiments", BODY, content_type="application/json")
    assert created.status_code == 201


def test_assign_is_rate_limited_per_key_with_a_counter(automation):
    create(automation)
    key, raw = api_key_create(name="limited", scopes=["experiments:assign"])
    key.rate_limit = "3/hour"  # a fixed hourly window: the calls below share one
    key.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    start_of_rate_window(3600)
    statuses = [
        client.post("/api/v1/experiments/banner/assign", {"customer_id": f"c-{i}"}).status_code
        for i in range(4)
    ]
    assert statuses == [200, 200, 200, 429]
    refused = client.post("/api/v1/experiments/banner/assign", {"customer_id": "c"}).json()
    assert refused["code"] == "throttled"
    assert 0 < refused["extra"]["retry_after_seconds"] <= 3600
    # Another key has its own counter.
    assert automation.post(
        "/api/v1/experiments/banner/assign", {"customer_id": "c"}
    ).status_code == (200)
