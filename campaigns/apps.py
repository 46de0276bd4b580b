from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "campaigns"

    def ready(self) -> None:
        """Journeys read the event stream: ingestion wakes their consumer on commit. A
        customer's export and erasure cover their messages."""
        from campaigns.privacy import customer_messages_erase, customer_messages_export
        from campaigns.tasks import journeys_consume_schedule
        from profiles.privacy import privacy_erase_register, privacy_export_register
        from profiles.services.events import events_committed_hook_add

        events_committed_hook_add(journeys_consume_schedule)
        privacy_export_register("campaigns", customer_messages_export)
        privacy_erase_register("messages", customer_messages_erase)
