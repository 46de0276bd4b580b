from django.core.management.base import BaseCommand

from recommender.errors import TrainingDataError
from recommender.models import Algorithm
from recommender.training import model_train, model_train_all


class Command(BaseCommand):
    help = (
        "Train recommendation models on the stored events and serve the new versions when "
        "they are at least as good. Default: the nightly set (popularity, hybrid, item-item)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--algorithm", choices=Algorithm.values, action="append")

    def handle(self, *args, **options):
        if options["algorithm"]:
            versions = []
            for algorithm in options["algorithm"]:
                try:
                    versions.append(model_train(algorithm=algorithm))
                except TrainingDataError as exc:
                    self.stderr.write(f"{algorithm}: not trained: {exc}")
        else:
            versions = model_train_all()
        for version in versions:
            ndcg = version.metrics.get("ndcg@10")
            self.stdout.write(
                f"{version.get_algorithm_display()} v{version.pk}: {version.n_items} items, "
                f"{version.n_interactions} interactions, {version.training_seconds}s"
                + (f", holdout NDCG@10 {ndcg}" if ndcg is not None else "")
                + (" (served)" if version.is_active else "")
            )
