import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from campaigns.models import Message
from marketing import rollups
from marketing.models import MetricRollup, RollupFlush
from marketing.tasks import (
    rollup_events_consume_schedule,
    rollup_events_consume_task,
    rollups_flush_task,
)
from profiles.models import Event
from profiles.services.events import _EVENTS_COMMITTED_HOOKS
from tests.campaigns.factories import CampaignFactory
from tests.marketing.messages_load import messages_load
from tests.profiles.factories import CustomerFactory, EventFactory

pytestmark = pytest.mark.django_db

# Two hours ago, at 17 past the hour: recent enough to be kept, with a whole hour around it.
MINUTE = (timezone.now() - dt.timedelta(hours=2)).replace(minute=17, second=0, microsecond=0)


def rollup(grain: str, bucket: dt.datetime, metric: str, key: str = "") -> float | None:
    row = MetricRollup.objects.filter(grain=grain, bucket=bucket, metric=metric, key=key).first()
    return None if row is None else row.value


def settled_now() -> dt.datetime:
    return timezone.now() + dt.timedelta(seconds=rollups.SETTLE_SECONDS + 1)


def store_events() -> None:
    alice, bob = CustomerFactory(), CustomerFactory()
    at = MINUTE + dt.timedelta(seconds=5)
    EventFactory(customer=alice, type="view", item_external_id="sku-1", occurred_at=at)
    EventFactory(customer=bob, type="view", item_external_id="sku-1", occurred_at=at)
    EventFactory(
        customer=bob, type="purchase", item_external_id="sku-1", value=Decimal("19.50"),
        occurred_at=at + dt.timedelta(seconds=30),
    )  # fmt: skip
    EventFactory(customer=alice, type="offer_shown", item_external_id="offer-7", occurred_at=at)
    EventFactory(
        customer=alice, type="view", item_external_id="sku-2",
        occurred_at=at + dt.timedelta(minutes=1),
    )  # fmt: skip


def start_after_existing() -> None:
    """The consumer starts after the events already stored; start it before the test's."""
    assert rollups.rollup_events_consume(now=settled_now()).events == 0


def test_consume_then_flush_fills_minute_hour_and_day_rollups():
    start_after_existing()
    store_events()
    result = rollups.rollup_events_consume(now=settled_now())
    assert result.events == 5
    flushed = rollups.rollups_flush()
    assert flushed.minutes == 2
    hour = MINUTE.replace(minute=0)
    day = MINUTE.replace(hour=0, minute=0)
    assert rollup("minute", MINUTE, "events", "view") == 2
    assert rollup("minute", MINUTE + dt.timedelta(minutes=1), "events", "view") == 1
    assert rollup("hour", hour, "events", "view") == 3
    assert rollup("day", day, "events", "view") == 3
    assert rollup("minute", MINUTE, "revenue") == 19.5
    assert rollup("day", day, "conversions") == 1
    assert rollup("minute", MINUTE, "active") == 2
    assert rollup("hour", hour, "active") == 2
    # Items and offers keep hours and days only.
    assert rollup("minute", MINUTE, "item_view", "sku-1") is None
    assert rollup("hour", hour, "item_view", "sku-1") == 2
    assert rollup("hour", hour, "item_purchase", "sku-1") == 1
    assert rollup("day", day, "offer_shown", "offer-7") == 1


def test_consume_counts_each_event_once():
    start_after_existing()
    store_events()
    assert rollups.rollup_events_consume(now=settled_now()).events == 5
    assert rollups.rollup_events_consume(now=settled_now()).events == 0
    rollups.rollups_flush()
    rollups.rollups_flush()
    assert rollup("hour", MINUTE.replace(minute=0), "events", "view") == 3


def test_events_received_within_the_settle_time_wait_for_the_next_run():
    start_after_existing()
    store_events()
    assert rollups.rollup_events_consume(now=timezone.now()).events == 0
    assert rollups.rollups_flush().minutes == 0
    assert not MetricRollup.objects.filter(metric="events").exists()
    assert rollups.rollup_events_consume(now=settled_now()).events == 5


def test_late_events_add_to_an_already_flushed_minute():
    start_after_existing()
    store_events()
    rollups.rollup_events_consume(now=settled_now())
    rollups.rollups_flush()
    EventFactory(type="view", occurred_at=MINUTE + dt.timedelta(seconds=50))
    rollups.rollup_events_consume(now=settled_now())
    rollups.rollups_flush()
    assert rollup("minute", MINUTE, "events", "view") == 3
    assert rollup("minute", MINUTE, "active") == 3


def test_flush_that_stopped_after_its_commit_does_not_add_twice():
    """Redelivery: the pending hash is still in Redis but its token was committed."""
    start_after_existing()
    store_events()
    rollups.rollup_events_consume(now=settled_now())
    client = rollups.redis_client()
    minute = int(MINUTE.timestamp())
    kept = client.hgetall(rollups.live_key(minute))
    rollups.rollups_flush()
    pending = rollups.redis_name(f"rollups:p:crashed:{minute}")
    client.hset(pending, mapping=kept)
    client.sadd(rollups.redis_name(rollups.PENDING_KEY), pending)
    RollupFlush.objects.create(token=pending, flushed_at=timezone.now())
    assert rollups.rollups_flush().rows == 0
    assert rollup("minute", MINUTE, "events", "view") == 2
    assert not client.exists(pending)
    assert not client.smembers(rollups.redis_name(rollups.PENDING_KEY))


def test_messages_rollup_counts_each_stage_by_channel_as_absolute_values():
    now = timezone.now().replace(second=30, microsecond=0)
    minute = now.replace(second=0)
    campaign = CampaignFactory()
    customers = [CustomerFactory() for _ in range(3)]
    for i, customer in enumerate(customers):
        Message.objects.create(
            campaign=campaign, customer=customer, channel="email", idempotency_key=f"k{i}",
            sent_at=minute, opened_at=minute if i < 2 else None,
            clicked_at=minute if i == 0 else None,
        )  # fmt: skip
    Message.objects.create(
        campaign=campaign, customer=customers[0], channel="sms", idempotency_key="s", sent_at=minute
    )
    rollups.messages_rollup(now=now)
    rollups.messages_rollup(now=now)
    assert rollup("minute", minute, "messages", "email:sent") == 3
    assert rollup("minute", minute, "messages", "email:opened") == 2
    assert rollup("minute", minute, "messages", "email:clicked") == 1
    assert rollup("hour", minute.replace(minute=0), "messages", "sms:sent") == 1
    assert rollup("minute", minute, "messages", "email:delivered") is None


def _sent(campaign, customer, key, at, **outcomes):
    return Message.objects.create(
        campaign=campaign, customer=customer, channel="email", idempotency_key=key, sent_at=at,
        **outcomes,
    )  # fmt: skip


@pytest.fixture
def messages_pass(django_capture_on_commit_callbacks):
    """messages_rollup as the flush runs it: its Redis state moves when the flush commits."""

    def run(now):
        with django_capture_on_commit_callbacks(execute=True):
            return rollups.messages_rollup(now=now)

    return run


def test_messages_rollup_counts_only_the_minutes_since_its_last_pass(messages_pass):
    now = timezone.now().replace(minute=20, second=30, microsecond=0)
    first = now.replace(second=0)
    hour, day = first.replace(minute=0), first.replace(hour=0, minute=0)
    campaign, ada, bob, cy = (
        CampaignFactory(),
        CustomerFactory(),
        CustomerFactory(),
        CustomerFactory(),
    )
    opened = _sent(campaign, ada, "k1", first)
    messages_pass(now)  # no state yet: the recount since yesterday
    _sent(campaign, bob, "k2", first + dt.timedelta(minutes=3))
    Message.objects.filter(pk=opened.pk).update(opened_at=first + dt.timedelta(minutes=3))
    late = _sent(campaign, cy, "k3", first - dt.timedelta(minutes=50))  # a retried webhook

    assert messages_pass(now + dt.timedelta(minutes=3)) == 3

    assert rollup("minute", first, "messages", "email:sent") == 1
    assert rollup("minute", first + dt.timedelta(minutes=3), "messages", "email:sent") == 1
    assert rollup("minute", first + dt.timedelta(minutes=3), "messages", "email:opened") == 1
    assert rollup("minute", late.sent_at, "messages", "email:sent") is None  # before the window
    assert rollup("hour", hour, "messages", "email:sent") == 2
    assert rollup("day", day, "messages", "email:sent") == 2
    assert rollup("day", day, "messages", "email:opened") == 1

    messages_pass(now + dt.timedelta(hours=1))  # the hourly recount finds it
    assert rollup("minute", late.sent_at, "messages", "email:sent") == 1
    assert rollup("day", day, "messages", "email:sent") == (3 if late.sent_at >= day else 2)


def test_messages_rollup_twice_and_after_a_deletion_is_absolute(messages_pass):
    now = timezone.now().replace(second=30, microsecond=0)
    minute = now.replace(second=0)
    campaign = CampaignFactory()
    gone = _sent(campaign, CustomerFactory(), "k1", minute)
    _sent(campaign, CustomerFactory(), "k2", minute)
    messages_pass(now)
    messages_pass(now)
    assert rollup("minute", minute, "messages", "email:sent") == 2

    gone.delete()
    messages_pass(now + dt.timedelta(minutes=1))

    assert rollup("minute", minute, "messages", "email:sent") == 1
    assert rollup("hour", minute.replace(minute=0), "messages", "email:sent") == 1


def test_the_minute_pass_reads_each_stage_through_its_partial_index():
    """30,000 messages over 30 days, analyzed: the planner's own choice for the last ten
    minutes is an index range per stage, not a scan of the table."""
    now = timezone.now()
    messages_load(n=30_000, now=now, span=dt.timedelta(days=30), campaigns=10)
    params = {"unit": "minute", "since": now - rollups.MESSAGES_OVERLAP, "until": now}
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + rollups._MESSAGE_STAGE_COUNTS, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute(rollups._MESSAGE_STAGE_COUNTS, params)
        counted = sum(row[3] for row in cursor.fetchall())

    assert "Seq Scan on campaigns_message" not in plan
    for stage in rollups.MESSAGE_STAGES:
        assert f"message_{stage}_at_partial" in plan
    in_window = Message.objects.filter(sent_at__gte=params["since"]).count()
    assert counted >= in_window > 0


def test_rebuild_from_raw_events_matches_the_live_counters():
    start_after_existing()
    store_events()
    rollups.rollup_events_consume(now=settled_now())
    rollups.rollups_flush()
    live = {
        (r.grain, r.bucket, r.metric, r.key): r.value
        for r in MetricRollup.objects.exclude(metric="messages")
    }
    MetricRollup.objects.all().delete()
    rollups.redis_client().delete(*rollups.redis_client().keys(rollups.redis_name("rollups:hll:*")))
    rollups.rollups_rebuild(days=800)
    rebuilt = {
        (r.grain, r.bucket, r.metric, r.key): r.value
        for r in MetricRollup.objects.exclude(metric="messages")
    }
    assert rebuilt == live
    client = rollups.redis_client()
    assert client.pfcount(rollups.hll_key("h", int(MINUTE.replace(minute=0).timestamp()))) == 2
    # The live counters restart after the rebuilt events.
    assert rollups.rollup_events_consume(now=settled_now()).events == 0


def test_ingest_hook_wakes_the_consumer():
    assert rollup_events_consume_schedule in _EVENTS_COMMITTED_HOOKS


def test_tasks_run_twice_count_once():
    start_after_existing()
    store_events()
    # Received just now: the task counts them once settled, so age them past the settle time.
    Event.objects.update(received_at=timezone.now() - dt.timedelta(minutes=1))
    assert rollup_events_consume_task() == 5
    assert rollup_events_consume_task() == 0
    rollups_flush_task()
    rollups_flush_task()
    assert rollup("day", MINUTE.replace(hour=0, minute=0), "events", "view") == 3


def test_counting_served_lists_on_a_hung_redis_waits_once_and_logs_once(settings, caplog):
    """A Redis that accepts connections and never answers: the first list waits for the short
    socket timeout and opens the breaker; the next lists skip Redis; one warning, no trace."""
    import socket

    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(16)  # the kernel completes the handshake; nothing ever reads or answers
    port = hung.getsockname()[1]
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "LOCATION": f"redis://127.0.0.1:{port}/0"}
    }
    try:
        with caplog.at_level("WARNING", logger="marketing.rollups"):
            for _ in range(3):
                rollups.rollup_recommendations_served(items=[("sku-1", "shoes")])
    finally:
        hung.close()
        rollups.served_breaker.reset()
    warnings = [r for r in caplog.records if r.name == "marketing.rollups"]
    assert [r.getMessage() for r in warnings] == ["recommendation counters not updated"]
    assert warnings[0].exc_info is None
