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
