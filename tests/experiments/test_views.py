import pytest
from django.urls import reverse

from tests.experiments.factories import ExperimentFactory, VariantFactory

HTMX = {"HX-Request": "true"}


def _names(response) -> list[str]:
    return [e.name for e in response.context["page_obj"]]


@pytest.mark.parametrize("client_fixture", ["marketer_client", "analyst_client"])
def test_experiment_list_shows_experiments_with_variants(request, client_fixture):
    client = request.getfixturevalue(client_fixture)
    experiment = ExperimentFactory(name="Banner test", kind="bandit", status="running")
    VariantFactory(experiment=experiment, name="control", weight=2, is_control=True)
    VariantFactory(experiment=experiment, name="red", weight=1)
    response = client.get(reverse("experiments:experiment-list"))
    assert response.status_code == 200
    content = response.content.decode()
    assert "<h1>Experiments</h1>" in content
    assert "<b>Banner test</b>" in content
    assert "Multi-armed bandit" in content
    assert '<span class="status status-running">Running</span>' in content
    assert '<span class="badge control" title="control">control · 2</span>' in content
    assert '<span class="badge" title="">red · 1</span>' in content
    assert content.index("control · 2") < content.index("red · 1")
    assert ("/experiments/new/" in content) is (client_fixture == "marketer_client")
    assert f"/experiments/{experiment.key}/" in content  # the results link, for every role


def test_experiment_list_search_kind_and_status_filters(marketer_client):
    ExperimentFactory(name="Banner test", kind="ab", status="running")
    ExperimentFactory(name="Holdout Q3", kind="holdout", status="stopped", hypothesis="")
    ExperimentFactory(name="Offer bandit", kind="bandit", status="running", hypothesis="")
    url = reverse("experiments:experiment-list")
    assert _names(marketer_client.get(url, {"q": "banner"})) == ["Banner test"]
    assert _names(marketer_client.get(url, {"q": "sells more"})) == ["Banner test"]
    assert _names(marketer_client.get(url, {"kind": "holdout"})) == ["Holdout Q3"]
    assert _names(marketer_client.get(url, {"status": "running"})) == [
        "Offer bandit",
        "Banner test",
    ]
    assert _names(marketer_client.get(url, {"status": "draft"})) == []


def test_experiment_list_htmx_returns_only_the_table(marketer_client):
    ExperimentFactory(name="Banner test")
    content = marketer_client.get(
        reverse("experiments:experiment-list"), headers=HTMX
    ).content.decode()
    assert content.lstrip().startswith('<div id="experiment-table"')
    assert "Banner test" in content
    assert "<nav" not in content


def test_experiment_list_empty_state(analyst_client):
    content = analyst_client.get(reverse("experiments:experiment-list")).content.decode()
    assert "No experiments yet." in content


@pytest.mark.parametrize("n", [1, 20])
def test_experiment_list_query_count_is_constant(marketer_client, django_assert_num_queries, n):
    for experiment in ExperimentFactory.create_batch(n):
        VariantFactory.create_batch(3, experiment=experiment)
    # session, user, count, page, variants (one prefetch), can_edit groups
    with django_assert_num_queries(6):
        response = marketer_client.get(reverse("experiments:experiment-list"))
    assert len(_names(response)) == n
