from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from marketing.common.csv_import import KINDS
from marketing.common.errors import ApplicationError
from marketing.imports_models import ImportStatus
from marketing.imports_services import import_file_create, import_file_run


class Command(BaseCommand):
    help = (
        "Import a CSV file of interactions, items, users (Amazon Personalize) or channel "
        "endpoints (Amazon Pinpoint). Runs in this process unless --queue is given; the file "
        "is read in place. Re-importing a file changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--kind", required=True, choices=sorted(KINDS))
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--sync", action="store_true", help="Run in this process (the default).")
        mode.add_argument(
            "--queue", action="store_true", help="Hand the import to a Celery worker instead."
        )

    def handle(self, *args, **options):
        path = Path(options["path"])
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        try:
            import_file = import_file_create(
                kind=options["kind"], source_path=path, schedule=options["queue"]
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        if options["queue"]:
            self.stdout.write(
                f"Import #{import_file.pk} queued (job #{import_file.job_id}); "
                "follow it on the Imports page."
            )
            return
        import_file = import_file_run(import_file_id=import_file.pk)
        if import_file.status != ImportStatus.DONE:
            raise CommandError(f"Import #{import_file.pk} failed: {import_file.error}")
        self.stdout.write(
            f"Import #{import_file.pk} ({import_file.kind}) of {path}: {import_file.rows} rows, "
            f"{import_file.imported} imported, {import_file.unchanged} unchanged, "
            f"{import_file.rejected} rejected."
        )
        for name, value in sorted(import_file.details.items()):
            self.stdout.write(f"  {name}: {value}")
        if import_file.report:
            self.stdout.write(f"Report of rejected rows: {import_file.report.path}")
        else:
            self.stdout.write("No rows were rejected.")
