from django.apps import AppConfig


class MarketingConfig(AppConfig):
    name = "marketing"
    verbose_name = "Platform"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        # Permissions exist only after migrate has run, so the groups are synced then.
        post_migrate.connect(roles_sync_handler, dispatch_uid="roles_sync")


def roles_sync_handler(sender, **kwargs) -> None:
    from marketing.roles import roles_sync

    roles_sync(using=kwargs.get("using", "default"))
