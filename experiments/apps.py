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
        self._connect_audience_sets()

    @staticmethod
    def _connect_audience_sets() -> None:
        """Cache invalidation only: the audience sets of the assignment hot path follow
        membership changes (experiments.audience)."""
        from django.db.models.signals import post_delete, post_save, pre_delete, pre_save

        from experiments import audience
        from profiles.models import Customer, CustomerAlias, SegmentSnapshot

        for signal, receiver, sender in (
            (post_save, audience.on_snapshot_saved, SegmentSnapshot),
            (post_save, audience.on_alias_saved, CustomerAlias),
            (post_delete, audience.on_alias_deleted, CustomerAlias),
            (pre_save, audience.on_customer_saving, Customer),
            (pre_delete, audience.on_customer_deleting, Customer),
        ):
            signal.connect(receiver, sender=sender, dispatch_uid=f"audience_{receiver.__name__}")
