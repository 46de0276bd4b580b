"""Send the demo's campaigns for real and simulate how the simulated customers react.

Run after `simulate_store` (same --customers, --items and --seed: the reactions come from
that store's hidden tastes), `train_models` (the messages carry recommendations) and
`refresh_segments`. Safe to run again: a campaign already sent is not sent again.
"""

import time

from django.core.management.base import BaseCommand, CommandError

from marketing.management.commands._simulated import store_arguments_add, store_truth_for
from marketing.simulation.demo_campaigns import demo_campaigns_create
from profiles.models import Segment


class Command(BaseCommand):
    help = (
        "Dispatch the demo campaign Weekly picks (A/B, holdout) and simulate opens, clicks "
        "and purchases from the simulated store's hidden tastes; activate the cart journey "
        "and schedule the recurring campaign. Idempotent."
    )

    def add_arguments(self, parser):
        store_arguments_add(parser)

    def handle(self, *args, **options):
        truth = store_truth_for(options)
        if not Segment.objects.filter(name="Email engaged").exists():
            raise CommandError("The demo segments are missing: run simulate_store first.")
        started = time.perf_counter()
        counts = demo_campaigns_create(truth=truth)
        summary = ", ".join(f"{k}={v:,}" for k, v in counts.items()) or "already sent"
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo campaigns ready in {time.perf_counter() - started:.1f}s: {summary}"
            )
        )
