from django.db.models import Q, QuerySet

from insights.models import Brand, Post


def brand_list() -> QuerySet[Brand]:
    return Brand.objects.order_by("name")


def post_source_list() -> list[str]:
    return list(Post.objects.order_by("source").values_list("source", flat=True).distinct())


def post_list(*, filters: dict | None = None) -> QuerySet[Post]:
    filters = filters or {}
    qs = Post.objects.prefetch_related("mentions__brand")
    if q := filters.get("q"):
        qs = qs.filter(Q(text__icontains=q) | Q(author__icontains=q))
    if brand := filters.get("brand"):
        qs = qs.filter(mentions__brand=brand).distinct()
    if source := filters.get("source"):
        qs = qs.filter(source=source)
    return qs.order_by("-posted_at", "-pk")
