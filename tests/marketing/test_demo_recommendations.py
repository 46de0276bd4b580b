"""`manage.py demo_recommendations`: lists served to simulated customers through the serving
path the API uses, clicks drawn from the store's hidden tastes, and the dashboard's panel."""

from datetime import UTC, datetime, timedelta
from io import StringIO

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from marketing.dashboard import dashboard_for_window
from marketing.rollups_models import MetricRollup
from marketing.simulation.demo_recommendations import clicks_draw
from marketing.simulation.load import store_simulate
from marketing.simulation.store import StoreConfig
from profiles.models import Event

pytestmark = pytest.mark.django_db
DAYS = 30
ARGS = ["--customers", "600", "--items", "60", "--seed", "7", "--lists-per-day", "60"]


@pytest.fixture
def demo_store():
    """A small simulated store ending today, trained."""
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    config = StoreConfig(
        customers=600, items=60, days=DAYS, seed=7, start=start - timedelta(days=DAYS)
    )
    store_simulate(config=config, reset=True)
    call_command("train_models", stdout=StringIO())


def _rollup_state() -> list:
    return sorted(
        MetricRollup.objects.filter(metric__startswith="rec_").values_list(
            "grain", "bucket", "metric", "value"
        )
    )


def test_the_panel_shows_served_lists_clicks_coverage_and_diversity(demo_store):
    assert dashboard_for_window(window="30d").rec_lists == 0
    out = StringIO()
    call_command("demo_recommendations", *ARGS, stdout=out)
    call_command("rollups_rebuild", "--days", "35", stdout=StringIO())
    assert "Demo recommendations ready" in out.getvalue()

    clicks = Event.objects.filter(type="click", properties__source="recommendation")
    assert clicks.count() > 0
    assert all(
        str(rec_id).startswith("c")
        for rec_id in clicks.values_list("properties__rec_id", flat=True)
    )
    for window in ("day", "30d"):
        board = dashboard_for_window(window=window)
        assert board.rec_lists > 0
        assert board.rec_impressions >= board.rec_lists
        assert board.rec_clicks > 0
        assert 0 < board.rec_ctr < 1
        assert board.rec_diversity is not None
        assert 0 <= board.rec_diversity <= 1
        assert board.rec_coverage is not None
        assert 0 < board.rec_coverage <= 1
    month = dashboard_for_window(window="30d")
    served = dict(part.split("=") for part in out.getvalue().split(": ", 1)[1].split(", "))
    assert month.rec_lists == int(served["lists"].replace(",", ""))  # every list counted
    assert month.rec_impressions == int(served["impressions"].replace(",", ""))
    assert month.rec_clicks == clicks.count()
    # Counted at the simulated times: the 7 days before now, not all at once.
    assert MetricRollup.objects.filter(grain="day", metric="rec_lists").count() >= 7

    # Running the step (and the rebuild) again adds nothing.
    events, state = Event.objects.count(), _rollup_state()
    again = StringIO()
    call_command("demo_recommendations", *ARGS, stdout=again)
    call_command("rollups_rebuild", "--days", "35", stdout=StringIO())
    assert "already served" in again.getvalue()
    assert Event.objects.count() == events
    assert _rollup_state() == state
    board = dashboard_for_window(window="30d")
    assert (board.rec_lists, board.rec_clicks) == (month.rec_lists, month.rec_clicks)


def test_lists_of_liked_items_get_more_clicks():
    rng = np.random.default_rng(3)
    affinity = rng.normal(size=(4000, 50))
    liked = np.argsort(-affinity, axis=1)[:, :10]
    random = np.tile(np.arange(10), (4000, 1))
    good = clicks_draw(affinity=affinity, shown=liked, rng=np.random.default_rng(1))
    poor = clicks_draw(affinity=affinity, shown=random, rng=np.random.default_rng(1))
    assert good.clicked.mean() > 2 * poor.clicked.mean() > 0
    assert good.p_click.mean() > 2 * poor.p_click.mean()
    # Nothing shown in a slot: never clicked.
    partly = np.where(np.arange(10) < 4, liked, -1)
    drawn = clicks_draw(affinity=affinity, shown=partly, rng=np.random.default_rng(1))
    assert not drawn.clicked[:, 4:].any()
    assert (drawn.p_click[:, 4:] == 0).all()
    assert drawn.clicked[:, :4].any()


def test_the_command_needs_the_simulated_store():
    with pytest.raises(CommandError, match="run simulate_store"):
        call_command("demo_recommendations", *ARGS, stdout=StringIO())
