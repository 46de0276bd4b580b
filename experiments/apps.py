from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "experiments"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from experiments.models import Experiment, Variant
        from experiments.serving import experiment_cache_invalidate_on_commit

        # Cache invalidation only: an edit in the admin (status, weights, traffic) must reach
        # every process's cached config as the services' changes do.
        for model in (Experiment, Variant):
            for signal in (post_save, post_delete):
                signal.connect(
                    experiment_cache_invalidate_on_commit,
                    sender=model,
                    dispatch_uid=f"experiment_cache_{model.__name__}_{signal is post_save}",
                )
