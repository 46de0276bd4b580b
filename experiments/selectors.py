from django.db import connection
from django.db.models import Prefetch, Q, QuerySet

from experiments.assignment import ExperimentConfig, VariantConfig, shares
from experiments.models import Allocation, Experiment, ExperimentStatus, Variant


def experiment_list(*, filters: dict | None = None) -> QuerySet[Experiment]:
    filters = filters or {}
    qs = Experiment.objects.prefetch_related(
        Prefetch("variants", queryset=Variant.objects.order_by("pk"))
    )
    if q := filters.get("q"):
        qs = qs.filter(Q(name__icontains=q) | Q(hypothesis__icontains=q))
    if kind := filters.get("kind"):
        qs = qs.filter(kind=kind)
    if status := filters.get("status"):
        qs = qs.filter(status=status)
    return qs.order_by("-created_at", "-pk")


def experiment_get(*, key: str) -> Experiment | None:
    return (
        Experiment.objects.prefetch_related(
            Prefetch("variants", queryset=Variant.objects.order_by("pk"))
        )
        .filter(key=key)
        .first()
    )


def experiment_for_campaign(*, campaign_id: int) -> Experiment | None:
    """The running experiment that picks the campaign's variants, with its variants."""
    return (
        Experiment.objects.prefetch_related(
            Prefetch("variants", queryset=Variant.objects.order_by("pk"))
        )
        .filter(campaign_id=campaign_id, status=ExperimentStatus.RUNNING)
        .first()
    )


def experiment_qs_for_update() -> QuerySet[Experiment]:
    return Experiment.objects.order_by("pk").select_for_update(of=("self",), no_key=True)


def experiment_config(*, key: str) -> ExperimentConfig | None:
    """What assignment needs, in two queries (cached per process by experiments.serving)."""
    experiment = experiment_get(key=key)
    if experiment is None:
        return None
    variants = list(experiment.variants.all())
    current = shares(
        [v.weight if v.allocation_weight is None else v.allocation_weight for v in variants]
    )
    return ExperimentConfig(
        id=experiment.pk,
        key=experiment.key,
        salt=experiment.salt,
        running=experiment.status == ExperimentStatus.RUNNING,
        traffic_percent=experiment.traffic_percent,
        holdout_percent=experiment.holdout_percent,
        audience_segment_id=experiment.audience_segment_id,
        adaptive=experiment.allocation != Allocation.FIXED,
        variants=tuple(
            VariantConfig(id=v.pk, key=v.key, share=share, is_control=v.is_control, config=v.config)
            for v, share in zip(variants, current, strict=True)
        ),
    )


# The materialized membership (refreshed every 15 minutes for rule segments) is one probe
# of two unique indexes; evaluating the rules live (segments_for_customer) costs a query with
# a subquery per segment and misses the 5 ms budget on big rule sets. An alias is resolved
# like event ingestion resolves it.
_MEMBER_SQL = """
SELECT EXISTS (
    SELECT 1 FROM profiles_segmentmembership m
    WHERE m.segment_id = %s AND m.customer_id = COALESCE(
        (SELECT id FROM profiles_customer WHERE external_id = %s AND erased_at IS NULL),
        (SELECT customer_id FROM profiles_customeralias WHERE alias = %s)
    )
)
"""

_EXPOSED_SQL = """
SELECT COALESCE(e.variant_id, 0) FROM experiments_exposure e
JOIN profiles_customer c ON c.id = e.customer_id
WHERE e.experiment_id = %s AND c.external_id = %s
"""


def segment_has_member(*, segment_id: int, external_id: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(_MEMBER_SQL, [segment_id, external_id, external_id])
        return bool(cursor.fetchone()[0])


def exposure_variant_id(*, experiment_id: int, external_id: str) -> int | None:
    """The variant of the customer's logged exposure: None if never exposed, 0 if held out."""
    with connection.cursor() as cursor:
        cursor.execute(_EXPOSED_SQL, [experiment_id, external_id])
        row = cursor.fetchone()
    return None if row is None else row[0]
