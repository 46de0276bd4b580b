"""Celery queues per workload: ingestion's consumers have their own queue, and every queue
has a worker in the shipped deployments (docker-compose and the demo)."""

import re
from pathlib import Path

import pytest
import yaml

from marketing.celery import Queue, app

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def router():
    app.loader.import_default_modules()
    return app.amqp.router


@pytest.mark.parametrize(
    "task",
    ["profiles.features_update", "marketing.rollup_events_consume", "marketing.rollups_flush"],
)
def test_ingestion_consumers_go_to_the_ingest_queue(router, task):
    assert router.route({}, task)["queue"].name == Queue.INGEST.value


@pytest.mark.parametrize(
    ("task", "queue"),
    [
        ("profiles.features_rebuild", Queue.DEFAULT),
        ("profiles.segment_refresh", Queue.DEFAULT),
        ("campaigns.messages_send_batch", Queue.EMAIL),
        ("recommender.model_train", Queue.RECOMMENDER),
    ],
)
def test_other_work_keeps_its_queue(router, task, queue):
    assert router.route({}, task)["queue"].name == queue.value


def _consumed(commands: list[str]) -> set[str]:
    queues: set[str] = set()
    for command in commands:
        for match in re.finditer(r"-Q[ =]\s*\"?([\w,]+)", command):
            queues.update(match.group(1).split(","))
    return queues


def test_every_queue_has_a_worker_in_docker_compose():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    commands = [
        " ".join(s["command"]) if isinstance(s.get("command"), list) else s.get("command") or ""
        for s in services.values()
    ]
    assert _consumed(commands) == {q.value for q in Queue}


def test_every_queue_has_a_worker_in_the_demo():
    source = (ROOT / "scripts" / "demo.py").read_text()
    # the demo spawns its workers with ["-Q", "<queues>"] argument lists
    lists = re.findall(r"\"-Q\",\s*\"([\w,]+)\"", source)
    assert {q for found in lists for q in found.split(",")} == {q.value for q in Queue}
