"""`manage.py rollups_rebuild`: the simulated or imported history reaches the dashboard."""

import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from marketing import rollups
from marketing.dashboard import dashboard_for_window
from marketing.rollups_models import MetricRollup
from profiles.models import Event
from tests.profiles.factories import CustomerFactory, EventFactory

pytestmark = pytest.mark.django_db


def _history():
    """Events stored before the consumer started (as simulate_store's COPY does): the live
    counters start after them, so only the rebuild counts them."""
    customer = CustomerFactory()
    now = timezone.now()
    for days, event_type, value in ((0, "view", None), (2, "purchase", Decimal("30.00")),
                                    (20, "view", None), (40, "view", None)):  # fmt: skip
        EventFactory(
            customer=customer, type=event_type, value=value,
            occurred_at=now - dt.timedelta(days=days, minutes=5),
        )  # fmt: skip
    settled = now + dt.timedelta(seconds=rollups.SETTLE_SECONDS + 1)
    assert rollups.rollup_events_consume(now=settled).events == 0  # watermark after them
    rollups.rollups_flush()
    assert dashboard_for_window(window="30d").events_total == 0


def test_command_rebuilds_the_history_the_dashboard_shows():
    _history()
    out = io.StringIO()
    call_command("rollups_rebuild", "--days", "35", stdout=out)
    assert "rollups rebuilt:" in out.getvalue()
    board = dashboard_for_window(window="30d")
    assert board.events_by_type == [("view", 2.0), ("purchase", 1.0)]  # not the 40-day-old one
    assert board.revenue == 30.0
    assert dashboard_for_window(window="day").events_total == 1
    # The live counters go on after the rebuilt events: nothing is counted twice.
    settled = timezone.now() + dt.timedelta(seconds=rollups.SETTLE_SECONDS + 1)
    assert rollups.rollup_events_consume(now=settled).events == 0
    rows = set(MetricRollup.objects.values_list("grain", "bucket", "metric", "key", "value"))
    call_command("rollups_rebuild", stdout=io.StringIO())  # again: the same rows
    assert (
        set(MetricRollup.objects.values_list("grain", "bucket", "metric", "key", "value")) == rows
    )


def test_command_rejects_days_outside_the_kept_range():
    with pytest.raises(CommandError, match="--days must be between 1 and 800"):
        call_command("rollups_rebuild", "--days", "0")
    assert not MetricRollup.objects.exists()
    assert Event.objects.count() == 0


def test_demo_setup_rebuilds_the_rollups_after_the_simulation():
    """scripts/demo.py runs the rebuild after simulate_store and demo_campaigns."""
    source = (Path(__file__).resolve().parents[2] / "scripts" / "demo.py").read_text()
    setup = source[source.index("def setup(") : source.index("# --- running web")]
    steps = [s for s in ("simulate_store", "demo_campaigns", "rollups_rebuild") if s in setup]
    assert steps == ["simulate_store", "demo_campaigns", "rollups_rebuild"]
    assert setup.index('"rollups_rebuild"') > setup.index('"demo_campaigns"')
