from datetime import date, datetime, time, timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from insights.models import Brand, Post


def brand_list() -> QuerySet[Brand]:
    return Brand.objects.order_by("name")


def post_source_list() -> list[str]:
    return list(Post.objects.order_by("source").values_list("source", flat=True).distinct())


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


def post_list(*, filters: dict | None = None) -> QuerySet[Post]:
    """Posts newest first. With a brand, sentiment and dates are those of its mentions (as the
    health page counts them); without, the post's own."""
    filters = filters or {}
    qs = Post.objects.prefetch_related("mentions__brand")
    if q := filters.get("q"):
        qs = qs.filter(Q(text__icontains=q) | Q(author__icontains=q))
    if source := filters.get("source"):
        qs = qs.filter(source=source)
    if customer := filters.get("customer"):
        qs = qs.filter(customer_id=customer)
    prefix = "mentions__" if filters.get("brand") else ""
    conditions: dict = {}
    if brand := filters.get("brand"):
        conditions["mentions__brand"] = brand
    if sentiment := filters.get("sentiment"):
        conditions[f"{prefix}sentiment_label"] = sentiment
    if date_from := filters.get("date_from"):
        conditions[f"{prefix}posted_at__gte"] = _day_start(date_from)
    if date_to := filters.get("date_to"):
        conditions[f"{prefix}posted_at__lt"] = _day_start(date_to + timedelta(days=1))
    if conditions:
        # One filter() call: one join, so every condition holds for the same mention.
        qs = qs.filter(**conditions)
        if prefix:
            qs = qs.distinct()
    return qs.order_by("-posted_at", "-pk")
