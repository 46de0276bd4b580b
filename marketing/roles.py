"""The three groups the UI knows: Admin (everything), Marketer (edits), Analyst (reads)."""

from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied

ADMIN = "Admin"
MARKETER = "Marketer"
ANALYST = "Analyst"

DOMAIN_APPS = ("profiles", "recommender", "experiments", "campaigns", "insights", "marketing")


def roles_sync(*, using: str = "default") -> None:
    """Create the groups and give them their permissions; safe to run any number of times."""
    domain = Permission.objects.using(using).filter(content_type__app_label__in=DOMAIN_APPS)
    if not domain.exists():
        return
    admin, _ = Group.objects.using(using).get_or_create(name=ADMIN)
    admin.permissions.set(Permission.objects.using(using).all())
    marketer, _ = Group.objects.using(using).get_or_create(name=MARKETER)
    marketer.permissions.set(domain.exclude(content_type__model="apikey"))
    analyst, _ = Group.objects.using(using).get_or_create(name=ANALYST)
    analyst.permissions.set(domain.filter(codename__startswith="view_"))


def user_can_edit(user) -> bool:
    """Analysts only read; Admins, Marketers and superusers may change things."""
    if not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    return user.groups.filter(name__in=[ADMIN, MARKETER]).exists()


def require_edit(request) -> None:
    """For views that change things: Analysts get a 403."""
    if not user_can_edit(request.user):
        raise PermissionDenied("Your role can only read.")
