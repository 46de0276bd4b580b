from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "campaigns"

    def ready(self) -> None:
        """A customer's export and erasure cover their messages."""
        from campaigns.privacy import customer_messages_erase, customer_messages_export
        from profiles.privacy import privacy_erase_register, privacy_export_register

        privacy_export_register("campaigns", customer_messages_export)
        privacy_erase_register("messages", customer_messages_erase)
