from django.core.management.base import BaseCommand

from profiles.segments.services import segments_refresh_now


class Command(BaseCommand):
    help = "Materialize the members of every rule segment now (the beat does it every 15 min)."

    def handle(self, *args, **options):
        for name, change in segments_refresh_now():
            self.stdout.write(f"{name}: {change.size} members ({change.duration_ms} ms)")
