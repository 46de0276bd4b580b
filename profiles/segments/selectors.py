"""Reads of segments: the rule catalog, previews, members, history and real-time membership."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.db.models import (
    BooleanField,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Window,
)
from django.utils import timezone

from profiles.models import Customer, Segment, SegmentKind, SegmentMembership, SegmentSnapshot
from profiles.segments.compiler import segment_rules_q, segment_rules_queryset
from profiles.segments.errors import InvalidSegmentRulesError
from profiles.segments.rules import RuleCatalog, RulesInvalid, rules_segment_refs, rules_validate

logger = logging.getLogger(__name__)
CategoryList = Callable[[], list[str]]
_category_list: CategoryList | None = None
PREVIEW_SAMPLE = 10

# Segment queries ask about the whole customer base, where nested loops over an index are a
# bad bet the planner sometimes takes: "bought twice, never opened an email" over 1M customers
# and 20M events took 8-9 s probing (customer, occurred_at) for each of 125,000 buyers, and
# 1.2 s as a hash anti-join; the three-condition benchmark segment takes 0.25 s either way
# (benchmarks/segment_count.py). Set for the transaction only.
SET_BASED_PLANNING = (
    "SELECT set_config('enable_nestloop', 'off', true), set_config('work_mem', '64MB', true)"
)


def category_list_register(lookup: CategoryList) -> None:
    """The catalog (recommender app) lists item categories for validation and the builder."""
    global _category_list  # noqa: PLW0603 - a registry set once at start-up
    _category_list = lookup


BrandList = Callable[[], list[tuple[int, str]]]
_brand_list: BrandList | None = None


def brand_list_register(lookup: BrandList) -> None:
    """The listening app (insights) lists the brands (id, name) mention conditions may name."""
    global _brand_list  # noqa: PLW0603 - a registry set once at start-up
    _brand_list = lookup


class _Brands(Mapping[int, str]):
    """The brands (id -> name), read on first use: most rules name none, and then neither
    validation nor the builder queries them."""

    def __init__(self, lookup: BrandList) -> None:
        self._lookup = lookup
        self._names: dict[int, str] | None = None

    def _load(self) -> dict[int, str]:
        if self._names is None:
            self._names = dict(self._lookup())
        return self._names

    def __getitem__(self, key: int) -> str:
        return self._load()[key]

    def __iter__(self) -> Iterator[int]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())


def segment_brands() -> Mapping[int, str]:
    return _Brands(_brand_list) if _brand_list is not None else {}


def segment_categories() -> list[str]:
    return sorted(_category_list()) if _category_list is not None else []


def segment_rule_catalog(*, exclude_segment_id: int | None = None) -> RuleCatalog:
    segments = dict(Segment.objects.order_by("name").values_list("pk", "name"))
    if exclude_segment_id is not None:
        segments.pop(exclude_segment_id, None)
    categories = frozenset(segment_categories()) if _category_list is not None else None
    brands = segment_brands() if _brand_list is not None else None
    return RuleCatalog(categories=categories, segments=segments, brands=brands)


def segment_rules_clean(rules, *, segment_id: int | None = None) -> dict:
    """Validated, normalized rules; InvalidSegmentRulesError names each offending condition.

    A segment cannot refer to itself, directly or through other rule segments."""
    try:
        clean = rules_validate(rules, segment_rule_catalog(exclude_segment_id=segment_id))
        # Compiling resolves referenced segments and finds circles through them.
        segment_rules_q(clean, visited=frozenset({segment_id}) if segment_id else frozenset())
    except RulesInvalid as exc:
        raise InvalidSegmentRulesError(
            "The rules have errors: " + "; ".join(exc.errors.values()),
            extra={"errors": exc.errors},
        ) from exc
    return clean


@dataclass(frozen=True)
class SegmentPreview:
    rules: dict
    count: int
    sample: Sequence[Customer]
    elapsed_ms: float


def segment_preview(
    *,
    rules,
    segment_id: int | None = None,
    sample_size: int = PREVIEW_SAMPLE,
    now: datetime | None = None,
) -> SegmentPreview:
    """The live count and a sample of members of rules being edited, in one query (the
    count as a window over the whole result next to its newest members)."""
    started = time.perf_counter()
    clean = segment_rules_clean(rules, segment_id=segment_id)
    qs = segment_rules_queryset(clean, now=now)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(SET_BASED_PLANNING)
        if sample_size:
            sample = list(qs.annotate(total=Window(Count("pk"))).order_by("-pk")[:sample_size])
            count = sample[0].total if sample else 0
        else:
            sample, count = [], qs.count()
    return SegmentPreview(
        rules=clean,
        count=count,
        sample=sample,
        elapsed_ms=round((time.perf_counter() - started) * 1000, 1),
    )


def segment_get(*, pk: int) -> Segment | None:
    return Segment.objects.select_related("created_by").filter(pk=pk).first()


def segment_members(*, segment: Segment) -> QuerySet[Customer]:
    """The materialized members (for rule segments: as of the last refresh)."""
    return Customer.objects.filter(
        Exists(SegmentMembership.objects.filter(segment=segment, customer=OuterRef("pk")))
    ).order_by("-pk")


def segment_scores_are_distances(*, segment: Segment) -> bool:
    """A cluster's members are scored by distance to its centre (smaller is better); other
    machine-learned segments by affinity (larger is better)."""
    return (segment.definition or {}).get("source") == "cluster"


def segment_members_ranked(*, segment: Segment) -> QuerySet[Customer]:
    """The members for the segment's page: a machine-learned segment's with their `score`,
    best first (nearest to the cluster centre, or the highest affinity); others newest first."""
    members = segment_members(segment=segment)
    if segment.kind != SegmentKind.MODEL:
        return members
    score = SegmentMembership.objects.filter(segment=segment, customer=OuterRef("pk"))
    nearest_first = segment_scores_are_distances(segment=segment)
    best = F("score").asc(nulls_last=True) if nearest_first else F("score").desc(nulls_last=True)
    return members.annotate(score=Subquery(score.values("score")[:1])).order_by(best, "-pk")


def segment_member_ids_sql(*, segment: Segment) -> tuple[str, tuple]:
    """The SQL selecting the current members' customer ids (rules evaluated now)."""
    qs: QuerySet
    if segment.kind == SegmentKind.RULES:
        qs = segment_rules_queryset(segment.rules).order_by().values("pk")
    else:
        qs = SegmentMembership.objects.filter(segment=segment).values("customer_id")
    sql, params = qs.query.sql_with_params()
    return sql, params


def segment_rule_users(*, segment: Segment) -> list[Segment]:
    """The other rule segments whose rules refer to this one, by name."""
    others = Segment.objects.filter(kind=SegmentKind.RULES).exclude(pk=segment.pk).order_by("name")
    return [o for o in others if segment.pk in rules_segment_refs(o.rules or {"conditions": []})]


def segment_history(*, segment: Segment, limit: int = 500) -> list[SegmentSnapshot]:
    return list(SegmentSnapshot.objects.filter(segment=segment).order_by("-taken_at")[:limit][::-1])


def segments_for_customer(
    *, customer: Customer, now: datetime | None = None
) -> list[tuple[Segment, bool]]:
    """Every segment and whether the customer is in it right now, in one query: rule
    segments evaluated on the spot (per-customer subqueries), the others from membership."""
    now = now or timezone.now()
    segments = list(Segment.objects.order_by("name"))
    if not segments:
        return []
    by_pk = {segment.pk: segment for segment in segments}
    annotations = {}
    for segment in segments:
        q: Q | Exists
        if segment.kind == SegmentKind.RULES:
            try:
                q = segment_rules_q(segment.rules, now=now, correlated=True, known=by_pk)
            except (KeyError, TypeError, IndexError, RulesInvalid):
                # Rules stored before validation existed (or hand-edited in the admin).
                logger.warning("segment rules cannot be evaluated", extra={"segment": segment.pk})
                continue
        else:
            q = Exists(SegmentMembership.objects.filter(segment=segment, customer=OuterRef("pk")))
        annotations[f"s{segment.pk}"] = ExpressionWrapper(q, output_field=BooleanField())
    flags = (
        Customer.objects.filter(pk=customer.pk, erased_at__isnull=True)
        .annotate(**annotations)
        .values(*annotations)
        .first()
        if annotations
        else None
    ) or {}
    return [(segment, bool(flags.get(f"s{segment.pk}"))) for segment in segments]


def segment_list_for_api() -> QuerySet[Segment]:
    return Segment.objects.order_by("name")
