import json

from django.core.management.base import BaseCommand, CommandError

from recommender.algorithms.data import read_interactions_csv, read_items_csv
from recommender.algorithms.evaluation import evaluate, format_table


class Command(BaseCommand):
    help = (
        "Train every recommendation model on TRAIN.csv and score it on TEST.csv (Personalize "
        "interactions format), without touching the database."
    )
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser):
        parser.add_argument("--train", required=True, help="USER_ID,ITEM_ID,... CSV to train on")
        parser.add_argument("--test", required=True, help="held-out interactions, same format")
        parser.add_argument("--items", help="items CSV (ITEM_ID plus attributes) for content")
        parser.add_argument("--k", type=int, default=10)
        parser.add_argument("--half-life-days", type=float, default=None)
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--json", action="store_true", help="JSON object on the last line")

    def handle(self, *args, **options):
        if options["k"] < 1:
            raise CommandError("--k must be at least 1")
        try:
            train = read_interactions_csv(options["train"])
            test = read_interactions_csv(options["test"])
            items = read_items_csv(options["items"]) if options["items"] else None
        except (OSError, ValueError, KeyError) as exc:
            raise CommandError(str(exc)) from exc
        evaluation = evaluate(
            train=train,
            test=test,
            items=items,
            k=options["k"],
            half_life_days=options["half_life_days"],
            seed=options["seed"],
        )
        self.stdout.write(
            f"{evaluation.n_train} training interactions, {evaluation.n_items} items, "
            f"{evaluation.n_users} test users, k={evaluation.k}"
        )
        self.stdout.write(format_table(evaluation))
        if options["json"]:
            self.stdout.write(json.dumps(evaluation.results, sort_keys=False))
