from collections.abc import Iterator

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


# The sticky keys experiments.sticky rebuilds: one per exposure, named by the customer's
# external id, the id exposure_variant_id looks up (an exposure stored through an alias is
# found, and rebuilt, under the customer's external id, as exposures_flush stores it).
_STICKY_SQL = """
SELECT c.external_id, COALESCE(e.variant_id, 0) FROM experiments_exposure e
JOIN profiles_customer c ON c.id = e.customer_id
WHERE e.experiment_id = %s
"""

# The stored exposures of a bandit whose record named the customer by another id (an alias):
# what exposure_variant_id now answers for the customer's external id.
_RENAMED_SQL = """
SELECT DISTINCT x.experiment_id, c.external_id, COALESCE(e.variant_id, 0)
FROM unnest(%s::bigint[], %s::bigint[], %s::text[]) AS x(experiment_id, customer_id, sent_id)
JOIN profiles_customer c ON c.id = x.customer_id AND c.external_id <> x.sent_id
JOIN experiments_exposure e
    ON e.experiment_id = x.experiment_id AND e.customer_id = x.customer_id
JOIN experiments_experiment ex ON ex.id = x.experiment_id AND ex.allocation <> %s
"""


def experiment_is_running(*, experiment_id: int) -> bool:
    return Experiment.objects.filter(pk=experiment_id, status=ExperimentStatus.RUNNING).exists()


def exposure_sticky_values(*, experiment_id: int, chunk: int) -> Iterator[list[tuple[str, int]]]:
    """(external id, variant id; 0 if held out) of the experiment's exposures, `chunk` at a
    time."""
    with connection.cursor() as cursor:
        cursor.execute(_STICKY_SQL, [experiment_id])
        while rows := cursor.fetchmany(chunk):
            yield [(row[0], row[1]) for row in rows]


def exposures_renamed(
    *, experiment_ids: list[int], customer_ids: list[int], sent_ids: list[str]
) -> list[tuple[int, str, int]]:
    """(experiment id, external id, variant id; 0 if held out) of the adaptive experiments'
    exposures among (experiment, customer pk, id the record named) whose customer's external
    id differs from the id the record named."""
    with connection.cursor() as cursor:
        cursor.execute(_RENAMED_SQL, [experiment_ids, customer_ids, sent_ids, Allocation.FIXED])
        return [(row[0], row[1], row[2]) for row in cursor.fetchall()]


# The audience sets of experiments.audience: what segment_has_member accepts, as ids.
_AUDIENCE_IDS_SQL = """
SELECT c.external_id FROM profiles_segmentmembership m
JOIN profiles_customer c ON c.id = m.customer_id AND c.erased_at IS NULL
WHERE m.segment_id = %s
UNION ALL
SELECT a.alias FROM profiles_segmentmembership m
JOIN profiles_customeralias a ON a.customer_id = m.customer_id
WHERE m.segment_id = %s
"""


def segment_stamp(*, segment_id: int) -> str | None:
    """When the segment's membership was last materialized, as a key part ("0": never);
    None for a segment that does not exist."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT counted_at FROM profiles_segment WHERE id = %s", [segment_id])
        row = cursor.fetchone()
    return None if row is None else _stamp(row[0])


def _stamp(counted_at) -> str:
    return "0" if counted_at is None else str(int(counted_at.timestamp() * 1_000_000))


def segment_audience_ids(*, segment_id: int, chunk: int) -> Iterator[list[str]]:
    """The external ids and aliases of the segment's members, `chunk` at a time."""
    with connection.cursor() as cursor:
        cursor.execute(_AUDIENCE_IDS_SQL, [segment_id, segment_id])
        while rows := cursor.fetchmany(chunk):
            yield [row[0] for row in rows]


def audience_segment_stamps(*, segment_ids: list[int] | None) -> list[tuple[int, str]]:
    """(segment id, stamp) of the segments that are an experiment's audience (of those in
    `segment_ids` when given)."""
    sql = """
        SELECT DISTINCT s.id, s.counted_at FROM profiles_segment s
        JOIN experiments_experiment e ON e.audience_segment_id = s.id
    """
    params: list = []
    if segment_ids is not None:
        sql += " WHERE s.id = ANY(%s)"
        params.append(list(segment_ids))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [(pk, _stamp(counted)) for pk, counted in rows]


def customer_audience_ids(*, customer_id: int) -> tuple[list[str], set[int]]:
    """The ids a storefront may send for the customer (external id unless erased, aliases)
    and the segments they are a member of."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT external_id FROM profiles_customer WHERE id = %s AND erased_at IS NULL
            UNION ALL SELECT alias FROM profiles_customeralias WHERE customer_id = %s
            """,
            [customer_id, customer_id],
        )
        ids = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            "SELECT segment_id FROM profiles_segmentmembership WHERE customer_id = %s",
            [customer_id],
        )
        segments = {row[0] for row in cursor.fetchall()}
    return ids, segments


def customer_external_id(*, customer_id: int) -> str | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT external_id FROM profiles_customer WHERE id = %s", [customer_id])
        row = cursor.fetchone()
    return None if row is None else row[0]
