from django.db.models import QuerySet

from recommender.models import Item, ModelVersion, Offer


def item_list(*, filters: dict | None = None) -> QuerySet[Item]:
    filters = filters or {}
    qs = Item.objects.all()
    if q := filters.get("q"):
        qs = qs.filter(title__icontains=q) | qs.filter(external_id=q)
    if category := filters.get("category"):
        qs = qs.filter(category=category)
    if (in_stock := filters.get("in_stock")) is not None:
        qs = qs.filter(in_stock=in_stock)
    return qs.order_by("external_id")


def offer_list(*, filters: dict | None = None) -> QuerySet[Offer]:
    return Offer.objects.select_related("item").order_by("name")


def modelversion_list(*, filters: dict | None = None) -> QuerySet[ModelVersion]:
    filters = filters or {}
    qs = ModelVersion.objects.defer("artifact").order_by("-created_at")
    if algorithm := filters.get("algorithm"):
        qs = qs.filter(algorithm=algorithm)
    return qs


def modelversion_get_active(*, algorithm: str) -> ModelVersion | None:
    return ModelVersion.objects.filter(algorithm=algorithm, is_active=True).first()
