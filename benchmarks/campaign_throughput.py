"""Campaign throughput end to end: personalized emails rendered and handed to SendGrid per
second, through the real path on this machine.

    .venv/bin/python benchmarks/campaign_throughput.py [--recipients 20000] [--workers 2]
        [--threads 8] [--batch 500] [--sendgrid-batch 500] [--db NAME]

A scratch database gets N customers (email address, consent, features, 3 recommendations each,
the template of benchmarks/template_render.py). A `celery worker` subprocess with `--workers`
pool processes runs the campaign: `campaign_launch`, the fan-out into pages, and per batch
`messages_send_batch` (decide, contexts, render, record with caps, claim, the official
`sendgrid` client over real HTTP from `--threads` threads, bulk status update). The SendGrid
stand-in (tests/stand_ins.py, lean asyncio server) runs in a process of its own and counts the
requests per message id, so duplicates are counted where they would matter. `--sendgrid-batch`
is SENDGRID_BATCH_SIZE: messages per mail/send request (1: one request per message).

emails/s = sent / (last sent_at - launch). The CPU of the workers, the stand-in and the
PostgreSQL backends during the run is measured too (from /proc): the other load on the
machine makes the rate noisy, the CPU per email much less so. JSON on the last line.
"""

import argparse
import json
import time

from _campaign_bench import bench_arguments, campaign_bench

DB = "marketing_bench_campaign_throughput"


def main() -> None:
    parser = argparse.ArgumentParser()
    bench_arguments(parser, recipients=20_000)
    parser.add_argument("--threads", type=int, default=8, help="provider calls at once per batch")
    parser.add_argument("--batch", type=int, default=500, help="recipients per batch task")
    parser.add_argument("--sendgrid-batch", type=int, default=500, help="messages per request")
    parser.add_argument("--db", default=DB, help="the scratch database (dropped and created)")
    args = parser.parse_args()

    with campaign_bench(
        args.db,
        recipients=args.recipients,
        redis_db=args.redis_db,
        DISPATCH_SEND_THREADS=str(args.threads),
        DISPATCH_BATCH_SIZE=str(args.batch),
        SENDGRID_BATCH_SIZE=str(args.sendgrid_batch),
    ) as bench:
        from django.db.models import Max

        from campaigns.lifecycle import campaign_launch
        from campaigns.models import Campaign, Message

        bench.worker(concurrency=args.workers, name="bench-throughput")
        time.sleep(3)  # the pool processes import Django before the first task
        cpu_before = bench.cpu()
        launched = campaign_launch(campaign=bench.campaign_id).started_at

        def finished() -> bool:
            bench.postgres_sample()
            done = Campaign.objects.get(pk=bench.campaign_id).status == "done"
            counts = bench.counts()
            final = sum(counts.get(s, 0) for s in ("sent", "failed", "skipped"))
            return done and final >= args.recipients

        bench.wait(finished, timeout=600, interval=0.1)
        cpu = {k: v - cpu_before.get(k, 0.0) for k, v in bench.cpu().items()}
        messages = Message.objects.filter(campaign_id=bench.campaign_id)
        last = messages.aggregate(at=Max("sent_at"))["at"]
        counts = bench.counts()
        seconds = (last - launched).total_seconds()
        sent = max(1, counts.get("sent", 0))
        stats = bench.stats()
    result = {
        "benchmark": "campaign_throughput",
        "recipients": args.recipients,
        "sent": counts.get("sent", 0),
        "failed": counts.get("failed", 0),
        "skipped": counts.get("skipped", 0),
        "seconds": round(seconds, 2),
        "emails_per_s": round(counts.get("sent", 0) / seconds),
        "stand_in_requests": stats["requests"],
        "stand_in_http_requests": stats["http_requests"],
        "stand_in_unique_message_ids": stats["unique"],
        "duplicates": stats["duplicates"],
        # CPU per email, to judge a run on a busy machine: on 2 idle cores the rate is at
        # most 2 s / (CPU s per email) of everything that runs.
        "cpu_ms_per_email": {k: round(v / sent * 1000, 3) for k, v in cpu.items()},
        "cores_busy_at_this_rate": round(sum(cpu.values()) / seconds, 2),
        "emails_per_s_if_2_cores_idle": round(2 / (sum(cpu.values()) / sent)),
        "workers": args.workers,
        "threads_per_worker": args.threads,
        "batch": args.batch,
        "sendgrid_batch": args.sendgrid_batch,
        "target_emails_per_s": 1000,
    }
    print(json.dumps(result))  # noqa: T201 - a benchmark reports on stdout


if __name__ == "__main__":
    main()
