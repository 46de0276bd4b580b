from collections.abc import Sequence
from dataclasses import dataclass

from django.db.models import F, Func, JSONField, Q, QuerySet, Value

from recommender.models import Algorithm, Item, ModelVersion, Offer


@dataclass(frozen=True)
class RankedItem:
    rank: int
    external_id: str
    title: str
    score: float


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


def item_category_list() -> list[str]:
    """The distinct non-empty categories, for the catalog filter (category is indexed)."""
    return list(
        Item.objects.exclude(category="")
        .order_by("category")
        .values_list("category", flat=True)
        .distinct()
    )


def offer_list(*, filters: dict | None = None) -> QuerySet[Offer]:
    filters = filters or {}
    qs = Offer.objects.select_related("item")
    if q := filters.get("q"):
        qs = qs.filter(Q(name__icontains=q) | Q(item__title__icontains=q))
    if (is_active := filters.get("is_active")) is not None:
        qs = qs.filter(is_active=is_active)
    return qs.order_by("name")


def modelversion_list(*, filters: dict | None = None) -> QuerySet[ModelVersion]:
    filters = filters or {}
    qs = ModelVersion.objects.defer("artifact").order_by("-created_at")
    if algorithm := filters.get("algorithm"):
        qs = qs.filter(algorithm=algorithm)
    if status := filters.get("status"):
        qs = qs.filter(status=status)
    return qs


def modelversion_get_active(*, algorithm: str) -> ModelVersion | None:
    return ModelVersion.objects.filter(algorithm=algorithm, is_active=True).first()


def _json_head(key: str, limit: int) -> Func:
    """The first `limit` elements of artifact[key], cut in PostgreSQL (artifacts can be big)."""
    return Func(
        F("artifact"),
        Value(f"$.{key}[0 to {limit - 1}]"),
        function="jsonb_path_query_array",
        template="%(function)s(%(expressions)s::jsonpath)",
        output_field=JSONField(),
    )


def modelversion_top_items(
    *, algorithm: str = Algorithm.POPULARITY, limit: int = 10
) -> list[RankedItem]:
    """The active model's first `limit` items (artifact item_ids/scores) with their titles."""
    head = (
        ModelVersion.objects.filter(algorithm=algorithm, is_active=True)
        .annotate(head_ids=_json_head("item_ids", limit), head_scores=_json_head("scores", limit))
        .values_list("head_ids", "head_scores")
        .first()
    )
    if not head or not head[0]:
        return []
    ids, scores = head[0], head[1] or []
    titles = dict(Item.objects.filter(external_id__in=ids).values_list("external_id", "title"))
    return [
        RankedItem(
            rank=i + 1,
            external_id=str(item_id),
            title=titles.get(str(item_id), ""),
            score=float(scores[i]) if i < len(scores) else 0.0,
        )
        for i, item_id in enumerate(ids)
    ]


def item_categories(external_ids: Sequence[str] | None) -> dict[str, str]:
    """{item external id: category} for the given ids (None: every item) with a category."""
    qs = Item.objects.exclude(category="")
    if external_ids is not None:
        qs = qs.filter(external_id__in=external_ids)
    return dict(qs.values_list("external_id", "category"))
