from django.db.models import QuerySet

from campaigns.models import Campaign


def campaign_list(*, filters: dict | None = None) -> QuerySet[Campaign]:
    filters = filters or {}
    qs = Campaign.objects.select_related("segment", "template")
    if q := filters.get("q"):
        qs = qs.filter(name__icontains=q)
    if status := filters.get("status"):
        qs = qs.filter(status=status)
    if channel := filters.get("channel"):
        qs = qs.filter(channel=channel)
    return qs.order_by("-created_at", "-pk")


def campaign_qs_for_update() -> QuerySet[Campaign]:
    """Campaign rows locked for a read-then-write (status transitions)."""
    return Campaign.objects.select_for_update(of=("self",), no_key=True).order_by("pk")
