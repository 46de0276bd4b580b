from django.core.management.base import BaseCommand, CommandError

from marketing.common.errors import ApplicationError
from marketing.services import api_key_create


class Command(BaseCommand):
    help = "Create a storefront API key and print it once (only its hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument(
            "--scopes",
            required=True,
            help="Comma-separated, e.g. events:write,recommendations:read,offers:read",
        )
        parser.add_argument("--rate-limit", default="", help="e.g. 6000/min; default from env")

    def handle(self, *args, **options):
        scopes = [s.strip() for s in options["scopes"].split(",") if s.strip()]
        try:
            key, raw = api_key_create(
                name=options["name"], scopes=scopes, rate_limit=options["rate_limit"]
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            f"API key '{key.name}' (prefix {key.prefix}), scopes: {', '.join(key.scopes)}"
        )
        self.stdout.write("Send it as the header 'Authorization: Api-Key <key>'. It is shown once:")
        self.stdout.write(raw)
