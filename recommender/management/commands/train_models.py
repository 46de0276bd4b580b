from django.core.management.base import BaseCommand

from recommender.services import model_train_all


class Command(BaseCommand):
    help = "Train every recommendation model that exists and make the new versions active."

    def handle(self, *args, **options):
        for version in model_train_all():
            self.stdout.write(
                f"{version.get_algorithm_display()} v{version.pk}: {version.n_items} items from "
                f"{version.n_interactions} interactions in {version.training_seconds}s"
            )
