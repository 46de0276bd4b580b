import json

from django.core.management.base import BaseCommand, CommandError

from insights.sentiment import labelled_csv_read
from insights.services import SentimentTrainingError, sentiment_model_train


class Command(BaseCommand):
    help = (
        "Train a scikit-learn sentiment model on a labelled CSV and store it; it becomes the "
        "active model (scoring new posts) only when it beats the active one (VADER when none) "
        "on the same held-out 20%. JSON on the last line with --json."
    )

    def add_arguments(self, parser):
        parser.add_argument("--csv", required=True, help="labelled CSV file")
        parser.add_argument("--text-column", default="text")
        parser.add_argument("--label-column", default="label")
        parser.add_argument("--rating-threshold", type=float, default=0.5)
        parser.add_argument("--name", default=None, help="model name (default: by date)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        try:
            texts, labels, _ = labelled_csv_read(
                options["csv"],
                text_column=options["text_column"],
                label_column=options["label_column"],
                rating_threshold=options["rating_threshold"],
            )
            result = sentiment_model_train(
                list(zip(texts, labels, strict=True)), name=options["name"], seed=options["seed"]
            )
        except (OSError, ValueError, SentimentTrainingError) as exc:
            raise CommandError(str(exc)) from exc
        summary = {
            "model": result.model.name,
            "activated": result.activated,
            "candidate": result.candidate,
            "baseline": {"name": result.baseline_name, **result.baseline},
        }
        self.stdout.write(
            f"{result.model.name}: macro-F1 {result.candidate['macro_f1']:.4f} vs "
            f"{result.baseline_name} {result.baseline['macro_f1']:.4f} on the held-out 20% -> "
            + ("activated" if result.activated else "stored, not activated")
        )
        if options["json"]:
            self.stdout.write(json.dumps(summary, sort_keys=True))
