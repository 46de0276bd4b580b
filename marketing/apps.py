from django.apps import AppConfig


class MarketingConfig(AppConfig):
    name = "marketing"
    verbose_name = "Platform"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_migrate, post_save

        from marketing.authentication import api_key_cache_clear
        from marketing.models import ApiKey
        from marketing.tasks import rollup_events_consume_schedule
        from profiles.services.events import events_committed_hook_add

        # Permissions exist only after migrate has run, so the groups are synced then.
        post_migrate.connect(roles_sync_handler, dispatch_uid="roles_sync")
        post_save.connect(api_key_cache_clear, sender=ApiKey, dispatch_uid="api_key_cache_save")
        post_delete.connect(api_key_cache_clear, sender=ApiKey, dispatch_uid="api_key_cache_del")
        # The live dashboard's counters follow the event stream.
        events_committed_hook_add(rollup_events_consume_schedule)


def roles_sync_handler(sender, **kwargs) -> None:
    from marketing.roles import roles_sync

    roles_sync(using=kwargs.get("using", "default"))
