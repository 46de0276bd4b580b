"""A worker killed with SIGKILL in the middle of a large campaign, then restarted: does the
campaign lose or duplicate anything? (The issue asks for 100,000 recipients.)

    .venv/bin/python benchmarks/campaign_crash.py [--recipients 100000] [--kill-at 0.4]

A scratch database with N recipients (as benchmarks/campaign_throughput.py), the lean
SendGrid stand-in in its own process counting requests per message id, and a real
`celery worker` subprocess running the campaign. When `--kill-at` of the audience has been
sent and messages are being sent (claims `sending`), the worker's whole process group gets
SIGKILL (parent and pool processes, mid-batch,
with provider calls in flight and tasks taken from the broker); a new worker starts at once.
The sweeper task (campaigns.campaigns_sweep, every minute from beat in production) is sent
every `--sweep-every` seconds, with a lease of `--lease` seconds and a stall time of `--stall`.

Counted at the end: recipients, unique message ids delivered at the stand-in, duplicates
(requests beyond the first per id), lost (recipients neither delivered nor skipped), skipped,
and the database's view (sent, failed, lost). JSON on the last line.
"""

import argparse
import json
import signal
import time

from _campaign_bench import bench_arguments, campaign_bench, process_stop

DB = "marketing_bench_campaign_crash"


def main() -> None:
    parser = argparse.ArgumentParser()
    bench_arguments(parser, recipients=100_000)
    parser.add_argument("--kill-at", type=float, default=0.4, help="share sent before the kill")
    parser.add_argument("--lease", type=int, default=8)
    parser.add_argument("--stall", type=int, default=10)
    parser.add_argument("--sweep-every", type=float, default=5.0)
    args = parser.parse_args()

    with campaign_bench(
        DB,
        recipients=args.recipients,
        redis_db=args.redis_db,
        MESSAGE_SEND_LEASE_SECONDS=str(args.lease),
        CAMPAIGN_STALL_SECONDS=str(args.stall),
        PROVIDER_TIMEOUT_SECONDS="3",
    ) as bench:
        from campaigns.lifecycle import campaign_launch
        from campaigns.models import Campaign
        from campaigns.tasks import campaigns_sweep_task

        first = bench.worker(concurrency=args.workers, name="bench-crash-1")
        time.sleep(3)
        started = time.monotonic()
        campaign_launch(campaign=bench.campaign_id)
        kill_after = int(args.recipients * args.kill_at)
        # Past the mark and with claims in hand, so that provider calls are in flight.
        bench.wait(
            lambda: bench.stats()["unique"] >= kill_after and bench.counts().get("sending"),
            timeout=900,
            interval=0.05,
        )
        process_stop(first, signal.SIGKILL)  # the parent and its pool processes
        at_kill = {"db": bench.counts(), "stand_in": bench.stats()}
        bench.worker(concurrency=args.workers, name="bench-crash-2")
        sweeps = {"last": 0.0, "count": 0}

        def settled() -> bool:
            # What beat does every minute in production, more often here.
            if time.monotonic() - sweeps["last"] > args.sweep_every:
                campaigns_sweep_task.delay()
                sweeps["last"] = time.monotonic()
                sweeps["count"] += 1
            counts = bench.counts()
            final = sum(counts.get(s, 0) for s in ("sent", "failed", "skipped"))
            done = Campaign.objects.get(pk=bench.campaign_id).status == "done"
            return done and final >= args.recipients and not counts.get("queued")

        bench.wait(settled, timeout=1800, interval=0.5)
        seconds = time.monotonic() - started
        counts = bench.counts()
        stats = bench.stats()
    skipped = counts.get("skipped", 0)
    result = {
        "benchmark": "campaign_crash",
        "recipients": args.recipients,
        "killed_after_sent": at_kill["stand_in"]["unique"],
        "sending_at_kill": at_kill["db"].get("sending", 0),
        "queued_at_kill": at_kill["db"].get("queued", 0),
        "unique_delivered": stats["unique"],
        "duplicates": stats["duplicates"],
        "lost": args.recipients - skipped - stats["unique"],
        "skipped": skipped,
        "db_sent": counts.get("sent", 0),
        "db_failed": counts.get("failed", 0),
        "db_lost": counts.get("lost", 0),
        "sweeps_sent": sweeps["count"],
        "seconds": round(seconds, 1),
        "workers": args.workers,
    }
    print(json.dumps(result))  # noqa: T201 - a benchmark reports on stdout


if __name__ == "__main__":
    main()
