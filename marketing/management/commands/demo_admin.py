"""Create or update the demo logins: admin (superuser), marketer and analyst, one password.

The password comes from --password, else DEMO_ADMIN_PASSWORD, else .data/demo-admin.txt, which
is generated on the first run so the login stays the same across `make demo` runs.
"""

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from marketing.roles import ADMIN, ANALYST, MARKETER, roles_sync

DEMO_USERS = (
    ("admin", ADMIN, True),
    ("marketer", MARKETER, False),
    ("analyst", ANALYST, False),
)


def password_file() -> Path:
    return Path(settings.BASE_DIR) / ".data" / "demo-admin.txt"


def demo_password() -> str:
    from_env = os.environ.get("DEMO_ADMIN_PASSWORD", "").strip()
    if from_env:
        return from_env
    path = password_file()
    if path.exists() and path.read_text().strip():
        return path.read_text().strip()
    password = secrets.token_urlsafe(12)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(password + "\n")
    path.chmod(0o600)
    return password


class Command(BaseCommand):
    help = "Create or update the demo users admin, marketer and analyst and print their logins."

    def add_arguments(self, parser):
        parser.add_argument("--password", default="", help="default: DEMO_ADMIN_PASSWORD or file")

    def handle(self, *args, **options):
        password = options["password"] or demo_password()
        user_model = get_user_model()
        with transaction.atomic():
            roles_sync()
            for username, group_name, superuser in DEMO_USERS:
                user, _ = user_model.objects.get_or_create(
                    username=username, defaults={"email": f"{username}@example.com"}
                )
                user.is_active = True
                user.is_staff = superuser
                user.is_superuser = superuser
                user.set_password(password)
                user.save()
                user.groups.add(Group.objects.get(name=group_name))
        self.stdout.write("Demo logins (one password for all three):")
        for username, group_name, superuser in DEMO_USERS:
            role = "superuser, group " + group_name if superuser else "group " + group_name
            self.stdout.write(f"  {username:<9} / {password}   ({role})")
