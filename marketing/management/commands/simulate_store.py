import time
from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError

from marketing.common.errors import ApplicationError
from marketing.simulation.load import store_simulate
from marketing.simulation.store import DEFAULT_START, StoreConfig, generate_truth, save_truth
from profiles.services import features_rebuild


def _date(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


class Command(BaseCommand):
    help = (
        "Fill the database with a simulated store: customers with hidden tastes, a catalog, "
        "channel endpoints and their event history. Deterministic for a seed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=3000)
        parser.add_argument("--items", type=int, default=400)
        parser.add_argument("--days", type=int, default=60)
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument(
            "--skip-features",
            action="store_true",
            help="do not compute the profile features from the loaded events",
        )
        parser.add_argument(
            "--start",
            type=_date,
            default=DEFAULT_START,
            help=f"first day of the history, UTC (default {DEFAULT_START:%Y-%m-%d})",
        )
        parser.add_argument(
            "--reset", action="store_true", help="replace the customers, catalog and events"
        )
        parser.add_argument(
            "--truth-out", default="", help="also write the hidden truth to this .npz file"
        )

    def handle(self, *args, **options):
        try:
            config = StoreConfig(
                customers=options["customers"],
                items=options["items"],
                days=options["days"],
                seed=options["seed"],
                start=options["start"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        started = time.perf_counter()
        last = [0.0]

        def progress(stage: str, done: int, total: int) -> None:
            now = time.perf_counter()
            if stage != "events" or now - last[0] > 2 or done >= total:
                last[0] = now
                self.stdout.write(f"  {stage}: {done:,} / {total:,}")

        try:
            counts = store_simulate(config=config, reset=options["reset"], progress=progress)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        elapsed = time.perf_counter() - started
        summary = ", ".join(f"{k}={v:,}" for k, v in counts.items() if k != "milliseconds")
        self.stdout.write(
            self.style.SUCCESS(f"Simulated store loaded in {elapsed:.1f}s: {summary}")
        )
        if not options["skip_features"]:
            started = time.perf_counter()
            rebuilt = features_rebuild(repair=True)
            self.stdout.write(
                f"Profile features computed for {rebuilt.customers:,} customers from "
                f"{rebuilt.events:,} events in {time.perf_counter() - started:.1f}s"
            )
        if options["truth_out"]:
            save_truth(generate_truth(config), options["truth_out"])
            self.stdout.write(f"Hidden truth written to {options['truth_out']}")
