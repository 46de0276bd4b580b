"""Serve the demo's recommendation lists and simulate their clicks (the dashboard's panel).

Run after `simulate_store` (same --customers, --items and --seed: the clicks come from that
store's hidden tastes) and `train_models`, before `rollups_rebuild`. Safe to run again: a
store that has the step's clicks already is left as it is.
"""

import time

from django.core.management.base import BaseCommand, CommandError

from marketing.management.commands._simulated import store_arguments_add, store_truth_for
from marketing.simulation.demo_recommendations import (
    DAYS,
    LISTS_PER_DAY,
    K,
    demo_recommendations_create,
)


class Command(BaseCommand):
    help = (
        "Serve recommendation lists to a sample of the simulated customers over the last "
        "days (counted as the API counts them) and ingest their clicks, drawn from the "
        "simulated store's hidden tastes. Idempotent."
    )

    def add_arguments(self, parser):
        store_arguments_add(parser)
        parser.add_argument("--days", type=int, default=DAYS)
        parser.add_argument("--lists-per-day", type=int, default=LISTS_PER_DAY)
        parser.add_argument("--k", type=int, default=K)

    def handle(self, *args, **options):
        if options["days"] < 1 or options["lists_per_day"] < 1 or options["k"] < 1:
            raise CommandError("--days, --lists-per-day and --k must be at least 1")
        truth = store_truth_for(options)
        started = time.perf_counter()
        counts = demo_recommendations_create(
            truth=truth, days=options["days"], per_day=options["lists_per_day"], k=options["k"]
        )
        summary = ", ".join(f"{k}={v:,}" for k, v in counts.items()) or "already served"
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo recommendations ready in {time.perf_counter() - started:.1f}s: {summary}"
            )
        )
