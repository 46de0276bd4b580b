"""The Celery app: Redis broker, configured from Django settings (CELERY_ namespace)."""

import os
from enum import StrEnum

from celery import Celery, Task
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketing.settings")


class Queue(StrEnum):
    DEFAULT = "default"
    # Event ingestion's consumers: profile features and the dashboard's counters, which must
    # keep up with the event stream whatever imports or refreshes wait on `default`.
    INGEST = "ingest"
    EMAIL = "email"
    RECOMMENDER = "recommender"
    EXPERIMENTS = "experiments"
    # The offer ranker's log processor and learner (every 5 s / 15 s, a model update due
    # within a minute): never behind a model training on the long-running recommender queue.
    OFFERS = "offers"


ALL_QUEUES = ",".join(q.value for q in Queue)

# Transient failures worth another try; anything else is terminal and recorded by the task.
TRANSIENT_ERRORS = (ConnectionError, TimeoutError)


class DefaultTask(Task):
    """Every task's defaults: late acks, and retries with exponential backoff and jitter."""

    autoretry_for = TRANSIENT_ERRORS
    retry_backoff = True
    retry_backoff_max = 600
    retry_jitter = True
    max_retries = 5
    acks_late = True
    reject_on_worker_lost = True


app = Celery("marketing", task_cls=DefaultTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_routes = {
    # exact names are matched before the globs
    "recommender.offer_log_process": {"queue": Queue.OFFERS.value},
    "recommender.offer_policy_learn": {"queue": Queue.OFFERS.value},
    "profiles.features_update": {"queue": Queue.INGEST.value},
    "marketing.rollup_events_consume": {"queue": Queue.INGEST.value},
    "marketing.rollups_flush": {"queue": Queue.INGEST.value},
    "recommender.*": {"queue": Queue.RECOMMENDER.value},
    "campaigns.*": {"queue": Queue.EMAIL.value},
    "experiments.*": {"queue": Queue.EXPERIMENTS.value},
}
app.autodiscover_tasks()

# Copied into django-celery-beat's tables when beat starts; edit the times in the admin.
app.conf.beat_schedule = {
    # every night at 03:00 UTC: retrain the recommendation models on the latest events
    "recommender-retrain-nightly": {
        "task": "recommender.model_train_all",
        "schedule": crontab(minute=0, hour=3),
    },
    # every minute: fold any events still waiting into the profile features (a safety net;
    # ingestion wakes the consumer itself)
    "profiles-features-update": {
        "task": "profiles.features_update",
        "schedule": crontab(minute="*"),
    },
    # every 5 minutes: refresh the related items of the items new events touched
    "recommender-similar-items-refresh": {
        "task": "recommender.similar_items_refresh",
        "schedule": crontab(minute="*/5"),
    },
    # every 10 minutes: retrain when RECOMMENDER_RETRAIN_AFTER_EVENTS new events arrived
    "recommender-retrain-on-new-events": {
        "task": "recommender.retrain_if_needed",
        "schedule": crontab(minute="*/10"),
    },
    # every night at 02:30 UTC: recompute profile features from scratch, report any drift
    "profiles-features-rebuild-nightly": {
        "task": "profiles.features_rebuild",
        "schedule": crontab(minute=30, hour=2),
    },
    # every 15 minutes: materialize the members of every rule segment (size history)
    "profiles-segments-refresh": {
        "task": "profiles.segments_refresh_all",
        "schedule": crontab(minute="*/15"),
    },
    # every minute: launch the scheduled campaigns whose time has come (and each occurrence
    # of a recurring one, and same-local-time campaigns once their time comes somewhere)
    "campaigns-launch-due": {
        "task": "campaigns.campaigns_launch_due",
        "schedule": crontab(minute="*"),
    },
    # every minute: settle the sends crashed workers left in flight, re-run stalled fan-outs
    "campaigns-sweep": {
        "task": "campaigns.campaigns_sweep",
        "schedule": crontab(minute="*"),
    },
    # every minute: credit new goal events (purchases...) to the messages that led to them
    "campaigns-conversions-attribute": {
        "task": "campaigns.conversions_attribute",
        "schedule": crontab(minute="*"),
    },
    # every minute: new trigger events into journey entries (a safety net; ingestion wakes
    # the journey consumer itself)
    "campaigns-journeys-consume": {
        "task": "campaigns.journeys_consume",
        "schedule": crontab(minute="*"),
    },
    # every minute: decide the journey entries that fell due (exit, or send)
    "campaigns-journey-entries-decide": {
        "task": "campaigns.journey_entries_decide",
        "schedule": crontab(minute="*"),
    },
    # every minute: beat records a heartbeat that /healthz and the dashboard show
    "marketing-beat-heartbeat": {
        "task": "marketing.beat_heartbeat",
        "schedule": crontab(minute="*"),
    },
    # every minute: the dashboard's counters (a safety net; ingestion wakes the consumer)
    "marketing-rollup-events-consume": {
        "task": "marketing.rollup_events_consume",
        "schedule": crontab(minute="*"),
    },
    # every minute: the dashboard's Redis minute counters into the rollup tables
    "marketing-rollups-flush": {
        "task": "marketing.rollups_flush",
        "schedule": crontab(minute="*"),
    },
    # every 15 minutes: negative brand mentions of the last window against their usual level
    "insights-brand-alerts-check": {
        "task": "insights.brand_alerts_check",
        "schedule": crontab(minute="*/15"),
    },
    # every 5 seconds: copy the exposures the assignment API buffered in Redis to PostgreSQL
    "experiments-exposures-flush": {
        "task": "experiments.exposures_flush",
        "schedule": 5.0,
    },
    # every 5 seconds: buffered offer decisions into PostgreSQL, rewards onto them, expired
    # reward waits settled with the default reward
    "recommender-offer-log-process": {
        "task": "recommender.offer_log_process",
        "schedule": 5.0,
    },
    # every 15 seconds: rewarded offer decisions into the served ranker (within a minute)
    "recommender-offer-policy-learn": {
        "task": "recommender.offer_policy_learn",
        "schedule": 15.0,
    },
    # every 10 minutes: running bandits get new weights from their logged outcomes
    "experiments-bandits-reweight": {
        "task": "experiments.bandits_reweight",
        "schedule": crontab(minute="*/10"),
    },
}
