from django.core.management.base import BaseCommand

from profiles.services import features_rebuild


class Command(BaseCommand):
    help = "Recompute every customer's features from the event history; report drift."

    def add_arguments(self, parser):
        parser.add_argument(
            "--check-only", action="store_true", help="Report drift without repairing it"
        )

    def handle(self, *args, **options):
        report = features_rebuild(repair=not options["check_only"])
        self.stdout.write(
            f"{report.customers} customers, {report.events} events, "
            f"{report.drifted} with drift {report.drift_fields or ''}"
            + (" (repaired)" if report.repaired and report.drifted else "")
        )
