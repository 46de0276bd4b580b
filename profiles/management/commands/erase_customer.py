from django.core.management.base import BaseCommand, CommandError

from profiles.privacy import customer_erase
from profiles.selectors import customer_get_for_api


class Command(BaseCommand):
    help = "Erase a customer's personal data everywhere; only a pseudonym with aggregates stays."

    def add_arguments(self, parser):
        parser.add_argument("customer_id")
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation")

    def handle(self, *args, **options):
        customer = customer_get_for_api(external_id=options["customer_id"])
        if customer is None:
            raise CommandError(f"No customer '{options['customer_id']}'.")
        if not options["yes"]:
            answer = input(f"Erase {customer.external_id} for good? Type 'erase': ")
            if answer.strip() != "erase":
                raise CommandError("Not erased.")
        erasure = customer_erase(customer=customer, source="command", actor="manage.py")
        self.stdout.write(f"erased; pseudonym {erasure.pseudonym}; removed {erasure.removed}")
