"""Rebuild the live dashboard's rollups from the raw events (marketing.rollups.rollups_rebuild).

After a history import, a simulated store (the demo runs it after `simulate_store` and
`demo_campaigns`) or a lost Redis: the live counters count only events that arrive after
their watermark, so history reaches the dashboard only through this backfill.
"""

import time

from django.core.management.base import BaseCommand, CommandError

from marketing.rollups import RETENTION, rollups_rebuild
from marketing.rollups_models import RollupGrain


class Command(BaseCommand):
    help = (
        "Recompute the dashboard rollups (events, conversions, revenue, active customers, "
        "items, offers, recommendation clicks, messages) of the last DAYS days from the raw "
        "events, and restart the live counters after the newest event. Run it while "
        "ingestion is quiet."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--days", type=int, default=35, help="days back to rebuild (default 35)"
        )

    def handle(self, *args, **options):
        days = options["days"]
        longest = RETENTION[RollupGrain.DAY].days
        if not 1 <= days <= longest:
            raise CommandError(f"--days must be between 1 and {longest}; got {days}")
        started = time.perf_counter()
        rows = rollups_rebuild(days=days)
        self.stdout.write(
            f"rollups rebuilt: {rows:,} event rollup rows over {days} days "
            f"in {time.perf_counter() - started:.1f} s"
        )
