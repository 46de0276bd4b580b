import json

from django.core.management.base import BaseCommand, CommandError

from insights.sentiment import labelled_csv_read, sentiment_compare


class Command(BaseCommand):
    help = (
        "Accuracy and macro-F1 of VADER and of the scikit-learn model on a labelled CSV "
        "(labels positive/neutral/negative, or numeric ratings), side by side, without "
        "touching the database. JSON on the last line with --json."
    )
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser):
        parser.add_argument("--csv", required=True, help="labelled CSV file")
        parser.add_argument("--text-column", default="text")
        parser.add_argument("--label-column", default="label")
        parser.add_argument(
            "--rating-threshold",
            type=float,
            default=0.5,
            help="numeric labels: > t positive, < -t negative, else neutral",
        )
        parser.add_argument("--folds", type=int, default=5, help="cross-validation folds")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--json", action="store_true", help="JSON object on the last line")

    def handle(self, *args, **options):
        if options["folds"] < 2:
            raise CommandError("--folds must be at least 2")
        try:
            texts, labels, skipped = labelled_csv_read(
                options["csv"],
                text_column=options["text_column"],
                label_column=options["label_column"],
                rating_threshold=options["rating_threshold"],
            )
        except (OSError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        if not texts:
            raise CommandError("No labelled rows in the file.")
        result = sentiment_compare(texts, labels, folds=options["folds"], seed=options["seed"])
        result["skipped"] = skipped
        self.stdout.write(
            f"{result['rows']} labelled rows ({skipped} skipped): "
            + ", ".join(f"{k} {v}" for k, v in result["labels"].items())
        )
        self.stdout.write(f"{'model':<10} {'accuracy':>9} {'macro-F1':>9}  how")
        for name in ("vader", "sklearn"):
            metrics = result.get(name)
            if metrics:
                self.stdout.write(
                    f"{name:<10} {metrics['accuracy']:>9.4f} {metrics['macro_f1']:>9.4f}  "
                    f"{metrics['method']}"
                )
        self.stdout.write(f"better: {result['best']}")
        if options["json"]:
            self.stdout.write(json.dumps(result, sort_keys=True))
