"""Benchmark: the dashboard's message counts (marketing/rollups.py `messages_rollup`) with
1,000,000 messages stored, against the former recount of the day (one scan with an OR over
the five stage times).

    .venv/bin/python benchmarks/messages_rollup.py [--messages 1000000] [--days 30] [--reload]

The scratch database (marketing_bench_messages_rollup) holds `messages` sent messages spread
evenly over `days` days up to now (a third opened, a tenth clicked; tests/marketing/
messages_load.py), analyzed. Measured, each the median of five runs after one warm-up:
the per-minute pass (the minutes since the previous pass), the hourly recount (since the
start of yesterday), and the former query over a whole day, with the new partial indexes
and without them (as it ran). JSON on the last line.
"""

import argparse
import datetime as dt
import json
import statistics
import sys
import time

from _scratch import bench_env, django_setup, scratch_needs_load

DB = "marketing_bench_messages_rollup"
_ENV = bench_env(DB, redis_db=13)

# The query this benchmark replaced (kept here for the comparison only).
_FORMER = """
SELECT date_trunc('minute', s.at), m.channel, s.stage, count(*)
FROM campaigns_message m
CROSS JOIN LATERAL (VALUES ('sent', m.sent_at), ('delivered', m.delivered_at),
    ('opened', m.opened_at), ('clicked', m.clicked_at), ('converted', m.converted_at))
    AS s(stage, at)
WHERE s.at >= %(since)s AND s.at < %(until)s
  AND (m.sent_at >= %(since)s OR m.delivered_at >= %(since)s OR m.opened_at >= %(since)s
       OR m.clicked_at >= %(since)s OR m.converted_at >= %(since)s)
GROUP BY 1, 2, 3
"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def timed(run, repeat: int = 5) -> float:
    run()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        samples.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(samples), 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--reload", action="store_true")
    args = parser.parse_args()
    django_setup(_ENV)
    from django.db import connection, transaction
    from django.utils import timezone

    from campaigns.models import Message
    from marketing import rollups

    now = timezone.now()
    if scratch_needs_load(Message, rows=args.messages, reload=args.reload, db=DB, env=_ENV):
        from tests.marketing.messages_load import messages_load

        log(f"loading {args.messages:,} messages")
        with transaction.atomic():
            messages_load(n=args.messages, now=now, span=dt.timedelta(days=args.days))
    client = rollups.redis_client()
    client.flushdb()

    def minute_pass() -> None:
        with transaction.atomic():
            rollups.messages_rollup(now=now)
        # the previous pass was a minute ago
        client.set(rollups.redis_name(rollups.MESSAGES_THROUGH_KEY), int(now.timestamp()) - 60)
        client.set(
            rollups.redis_name(rollups.MESSAGES_REBUILT_KEY),
            rollups.floor_epoch(now.timestamp(), "h"),
        )

    def recount() -> None:
        client.delete(rollups.redis_name(rollups.MESSAGES_REBUILT_KEY))
        with transaction.atomic():
            rollups.messages_rollup(now=now)

    def former(*, indexes: bool = True) -> None:
        """The former recount at the end of a day (a whole day of messages); without the
        partial stage indexes as well (dropped in a transaction rolled back), as it ran."""
        since = now - dt.timedelta(days=1)
        with transaction.atomic(), connection.cursor() as cursor:
            if not indexes:
                for stage in rollups.MESSAGE_STAGES:
                    cursor.execute(f"DROP INDEX message_{stage}_at_partial")
            cursor.execute(_FORMER, {"since": since, "until": now + dt.timedelta(minutes=1)})
            cursor.fetchall()
            transaction.set_rollback(True)

    minute_pass()
    result = {
        "messages": Message.objects.count(),
        "days": args.days,
        "minute_pass_ms": timed(minute_pass),
        "hourly_recount_ms": timed(recount),
        "former_day_recount_ms": timed(former),
        "former_day_recount_without_indexes_ms": timed(lambda: former(indexes=False)),
    }
    with connection.cursor() as cursor:
        cursor.execute(
            "EXPLAIN " + rollups._MESSAGE_STAGE_COUNTS,
            {"unit": "minute", "since": now - rollups.MESSAGES_OVERLAP, "until": now},
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
    result["minute_pass_seq_scan"] = "Seq Scan on campaigns_message" in plan
    print(json.dumps(result))


if __name__ == "__main__":
    main()
