import json
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection
from django.db.models import F, Func, JSONField, QuerySet, Value

from marketing.common.prepared import fetchone_prepared_as_health_check
from profiles.models import ConsentPurpose
from recommender.models import (
    Algorithm,
    Item,
    ModelStatus,
    ModelVersion,
)


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
    if (is_active := filters.get("is_active")) is not None:
        qs = qs.filter(is_active=is_active)
    return qs.order_by("external_id")


def item_category_list() -> list[str]:
    """The distinct non-empty categories, for the catalog filter (category is indexed)."""
    return list(
        Item.objects.exclude(category="")
        .order_by("category")
        .values_list("category", flat=True)
        .distinct()
    )


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


def items_in_category(category: str) -> QuerySet:
    """The external ids of the items in a category, as a subquery for segment rules."""
    return Item.objects.filter(category=category).values("external_id")


def item_category_names() -> list[str]:
    return list(
        Item.objects.exclude(category="").order_by().values_list("category", flat=True).distinct()
    )


def modelversion_qs_for_update() -> QuerySet[ModelVersion]:
    return (
        ModelVersion.objects.defer("artifact")
        .order_by("pk")
        .select_for_update(of=("self",), no_key=True)
    )


def modelversion_active_list() -> list[tuple[int, str]]:
    """(pk, algorithm) of every active, ready version."""
    return list(
        ModelVersion.objects.filter(is_active=True, status=ModelStatus.READY)
        .order_by("pk")
        .values_list("pk", "algorithm")
    )


def modelversion_ranking_head(*, pk: int, limit: int) -> tuple[list[str], list[float]]:
    """The first `limit` item ids and scores of a version's artifact (the popular list)."""
    head = (
        ModelVersion.objects.filter(pk=pk)
        .annotate(head_ids=_json_head("item_ids", limit), head_scores=_json_head("scores", limit))
        .values_list("head_ids", "head_scores")
        .first()
    )
    if not head:
        return [], []
    return [str(i) for i in head[0] or []], [float(s) for s in head[1] or []]


ITEM_SERVING_FIELDS = (
    "external_id",
    "title",
    "category",
    "brand",
    "price",
    "in_stock",
    "image_url",
    "deep_link",
    "attributes",
)


def item_rows_for_serving() -> list[tuple]:
    """Every active item's serving fields, newest first."""
    return list(
        Item.objects.filter(is_active=True)
        .order_by("-created_at", "-pk")
        .values_list(*ITEM_SERVING_FIELDS)
    )


def item_category_for_serving(*, external_id: str) -> str | None:
    """An item's category ('' when it has none) whatever its active flag; None if unknown."""
    return Item.objects.filter(external_id=external_id).values_list("category", flat=True).first()


_CUSTOMER_FOR_SERVING = """
SELECT c.id, f.state -> 'recent_views', f.state -> 'recent_purchases',
       EXISTS(SELECT 1 FROM profiles_consent p
              WHERE p.customer_id = c.id AND p.purpose = %(purpose)s AND p.granted)
FROM profiles_customer c LEFT JOIN profiles_customerfeatures f ON f.customer_id = c.id
WHERE c.id = coalesce(
    (SELECT id FROM profiles_customer WHERE external_id = %(id)s),
    (SELECT customer_id FROM profiles_customeralias WHERE alias = %(id)s)
)
"""


@dataclass(frozen=True)
class ServingCustomer:
    pk: int
    views: list[str]
    purchases: list[str]
    personalization: bool  # the customer granted the personalization consent


def customer_for_serving(*, external_id: str) -> ServingCustomer | None:
    """The customer with this id or alias as serving needs them (recent views and purchases,
    the personalization consent) in one prepared query: the hot path needs only these, not
    the full profile of `customer_get_for_api`. Plain SQL: the ORM spends four times the
    query's own time compiling the JSON lookups. Erasure deletes a customer's consents, so
    an erased customer is never personalized."""
    row = fetchone_prepared_as_health_check(
        _CUSTOMER_FOR_SERVING, {"id": external_id, "purpose": ConsentPurpose.PERSONALIZATION}
    )
    if row is None:
        return None
    return ServingCustomer(row[0], _json_list(row[1]), _json_list(row[2]), bool(row[3]))


def _json_value(value):
    return json.loads(value) if isinstance(value, str) else value  # jsonb as text: decode


def _json_list(value) -> list[str]:
    value = _json_value(value)
    return [str(v) for v in value] if isinstance(value, list) else []


def recommendation_list_get(
    *, version_id: int, customer_id: int
) -> tuple[list[str], list[float]] | None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT item_ids, scores FROM recommender_recommendationlist"
            " WHERE model_version_id = %s AND customer_id = %s",
            [version_id, customer_id],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    return _json_list(row[0]), [float(s) for s in _json_value(row[1])]


def similar_lists_get(
    *, version_id: int, item_external_ids: Sequence[str]
) -> dict[str, tuple[list[str], list[float]]]:
    """{item external id: (related ids, scores)} of the version's lists for those items."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.external_id, s.item_ids, s.scores FROM recommender_similaritemlist s"
            " JOIN recommender_item i ON i.id = s.item_id"
            " WHERE s.model_version_id = %s AND i.external_id = ANY(%s)",
            [version_id, list(item_external_ids)],
        )
        rows = cursor.fetchall()
    return {
        external_id: (_json_list(ids), [float(x) for x in _json_value(scores)])
        for external_id, ids, scores in rows
    }
