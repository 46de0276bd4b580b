import json

from django.core.management.base import BaseCommand, CommandError
from django.core.serializers.json import DjangoJSONEncoder

from profiles.privacy import privacy_export
from profiles.selectors import customer_get_for_api


class Command(BaseCommand):
    help = "Print everything stored about a customer as JSON (their storefront id or alias)."

    def add_arguments(self, parser):
        parser.add_argument("customer_id")

    def handle(self, *args, **options):
        customer = customer_get_for_api(external_id=options["customer_id"])
        if customer is None:
            raise CommandError(f"No customer '{options['customer_id']}'.")
        data = privacy_export(customer=customer)
        self.stdout.write(json.dumps(data, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False))
