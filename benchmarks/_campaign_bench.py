"""Plumbing the campaign benchmarks share (campaign_throughput, campaign_crash): a scratch
database with an email audience, the lean SendGrid stand-in in its own process, real Celery
worker subprocesses, and the counts at the end."""

import argparse
import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from _scratch import (
    ROOT,
    bench_env,
    celery_worker_start,
    database_reset,
    django_setup,
    free_port,
    wait_listening,
)
from template_render import HTML, SUBJECT, _prepare

QUEUES = "default,email"


def campaign_env(db: str, *, redis_db: int, stand_in_url: str, **extra: str) -> dict:
    """The environment of the benchmark and of its workers: SendGrid pointed at the stand-in,
    no rate limit of ours (the stand-in has none either)."""
    return bench_env(
        db,
        redis_db=redis_db,
        SENDGRID_API_KEY="SG.bench",
        SENDGRID_API_HOST=stand_in_url,
        SENDGRID_FROM_EMAIL="news@shop.example",
        CAMPAIGN_EMAIL_BACKEND="sendgrid",
        SENDGRID_RATE_PER_SECOND="0",
        DJANGO_CONN_MAX_AGE="60",
        **extra,
    )


def stand_in_start() -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.stand_ins", "sendgrid", "--port", str(port)],
        cwd=ROOT,
        start_new_session=True,
    )
    wait_listening(port)
    return proc, f"http://127.0.0.1:{port}"


def stand_in_stats(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/stand-in/stats", timeout=10) as response:  # noqa: S310
        return json.loads(response.read())


def audience_create(env: dict, recipients: int) -> int:
    """Reset the database; `recipients` customers with an email address, marketing consent,
    features and 3 recommendations each, in a static segment; a draft campaign for them
    (the template of benchmarks/template_render.py). Returns the campaign pk."""
    database_reset(env["DATABASE_URL"].rsplit("/", 1)[1], env)
    django_setup(env)
    from django.utils import timezone

    from campaigns.models import Campaign, MessageTemplate
    from profiles.models import ChannelEndpoint, Consent
    from profiles.segments.services import segment_create_static

    pks = _prepare(recipients, 2_000)
    now = timezone.now()
    ChannelEndpoint.objects.bulk_create(
        ChannelEndpoint(customer_id=pk, channel="email", address=f"c{n}@example.com")
        for n, pk in enumerate(pks)
    )
    Consent.objects.bulk_create(
        Consent(
            customer_id=pk, purpose="marketing_email", granted=True, source="api", changed_at=now
        )
        for pk in pks
    )
    template = MessageTemplate.objects.create(
        name="Bench", channel="email", subject=SUBJECT, html_body=HTML
    )
    segment = segment_create_static(name="Bench audience", kind="imported", customer_ids=pks)
    campaign = Campaign.objects.create(
        name="Bench", channel="email", status="draft", template=template, segment=segment
    )
    return campaign.pk


def queues_purge(env: dict) -> None:
    client = redis.Redis.from_url(env["REDIS_URL"])
    client.delete(*QUEUES.split(","), "unacked", "unacked_index")


def worker_start(env: dict, *, concurrency: int, name: str) -> subprocess.Popen:
    return celery_worker_start(
        env=env, queues=QUEUES, concurrency=concurrency, name=f"{name}@localhost"
    )


def process_stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """Signal the process group of `proc` (a worker with its pool children, or the stand-in)
    and wait for it."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def message_counts(campaign_id: int) -> dict[str, int]:
    from campaigns.dispatch import campaign_message_counts
    from campaigns.models import Campaign

    return campaign_message_counts(campaign=Campaign.objects.get(pk=campaign_id))


def bench_arguments(parser: argparse.ArgumentParser, *, recipients: int) -> None:
    parser.add_argument("--recipients", type=int, default=recipients)
    parser.add_argument("--workers", type=int, default=2, help="worker pool processes")
    parser.add_argument("--redis-db", type=int, default=1)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a live process (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getpgid(int(entry)) == pgid:
                    pids.append(int(entry))
            except OSError:
                continue
    return pids


class Bench:
    """A prepared run: its environment, stand-in, campaign and the workers it started."""

    def __init__(self, env: dict, url: str, campaign_id: int, stand_in: subprocess.Popen):
        self.env, self.url, self.campaign_id = env, url, campaign_id
        self.stand_in = stand_in
        self.workers: list[subprocess.Popen] = []
        self.backends: dict[int, float] = {}

    def postgres_sample(self) -> None:
        """Note the CPU so far of each PostgreSQL backend serving the scratch database. The
        workers' backends live one task each (Celery closes the connections after a task),
        so sampling while the run goes is the only way to see them; what a backend uses
        after its last sample is missed (a lower bound)."""
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            )
            for (pid,) in cursor.fetchall():
                self.backends[pid] = max(self.backends.get(pid, 0.0), _cpu_seconds(pid))

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of the workers (with their pool processes), the stand-in and
        the sampled PostgreSQL backends."""
        self.postgres_sample()
        workers = [pid for w in self.workers for pid in _group_pids(w.pid)]
        return {
            "workers": sum(_cpu_seconds(pid) for pid in workers),
            "stand_in": _cpu_seconds(self.stand_in.pid),
            "postgres": sum(self.backends.values()),
        }

    def worker(self, *, concurrency: int, name: str) -> subprocess.Popen:
        proc = worker_start(self.env, concurrency=concurrency, name=name)
        self.workers.append(proc)
        return proc

    def stats(self) -> dict:
        return stand_in_stats(self.url)

    def counts(self) -> dict[str, int]:
        return message_counts(self.campaign_id)

    def wait(self, predicate, *, timeout: float, interval: float = 0.25):
        from tests.helpers import wait_for  # imports DRF's test client: after django.setup()

        return wait_for(predicate, timeout=timeout, interval=interval)


@contextmanager
def campaign_bench(db: str, *, recipients: int, redis_db: int, **extra: str) -> Iterator[Bench]:
    """The stand-in process, the scratch database with its audience and draft campaign, empty
    queues; on exit every worker started through the Bench and the stand-in are stopped."""
    stand_in, url = stand_in_start()
    bench = None
    try:
        env = campaign_env(db, redis_db=redis_db, stand_in_url=url, **extra)
        bench = Bench(env, url, audience_create(env, recipients), stand_in)
        queues_purge(env)
        yield bench
    finally:
        for proc in bench.workers if bench else []:
            process_stop(proc)
        process_stop(stand_in)
