"""Reads for the offer ranker and the Offers pages."""

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Avg, Count, Q, QuerySet
from django.db.models.functions import TruncHour
from django.utils import timezone

from marketing.common.prepared import fetchone_prepared_as_health_check
from marketing.models import Job
from profiles.models import ConsentPurpose
from recommender.models import (
    DecisionMode,
    Item,
    Offer,
    OfferDecision,
    OfferPolicySnapshot,
)

TOP_CATEGORIES = 3

# One round trip: the customer (by id or alias), the features state, the materialized
# segment ids and the personalization consent.
_CUSTOMER_SQL = """
WITH target AS (
    (SELECT id FROM profiles_customer WHERE external_id = %(id)s AND erased_at IS NULL)
    UNION ALL
    (SELECT customer_id FROM profiles_customeralias WHERE alias = %(id)s)
    LIMIT 1
)
SELECT t.id, f.state,
       ARRAY(SELECT segment_id FROM profiles_segmentmembership m WHERE m.customer_id = t.id),
       EXISTS(SELECT 1 FROM profiles_consent c
              WHERE c.customer_id = t.id AND c.purpose = %(purpose)s AND c.granted)
FROM target t LEFT JOIN profiles_customerfeatures f ON f.customer_id = t.id
"""


@dataclass(frozen=True)
class RankingCustomer:
    pk: int | None
    features: dict[str, Any]
    segments: frozenset[int]


def customer_features_from_state(
    state: dict | None, *, segments: list[int], now: datetime
) -> dict[str, Any]:
    """The ranker's customer namespace from the live profile state: order and revenue
    (bucketed by the featurizer), days since the last purchase, the top categories and the
    category shares of the decayed affinity, segment ids. An empty profile says `new`."""
    features: dict[str, Any] = {"segments": sorted(segments)}
    if not state or not state.get("counts"):
        features["new"] = True
        return features
    features["orders"] = int(state.get("orders") or 0)
    features["revenue"] = float(state.get("revenue") or 0.0)
    last_purchase = (state.get("last_at") or {}).get("purchase")
    if last_purchase is not None:
        features["recency_days"] = max(0.0, (now.timestamp() - last_purchase) / 86400.0)
    affinity = state.get("affinity") or {}
    total = sum(v for v in affinity.values() if v > 0)
    if total > 0:
        ranked = sorted(affinity.items(), key=lambda kv: -kv[1])
        features["top_categories"] = [c for c, _ in ranked[:TOP_CATEGORIES]]
        features["category_affinity"] = {c: round(v / total, 3) for c, v in ranked if v > 0}
    return features


def customer_for_ranking(*, external_id: str, now: datetime | None = None) -> RankingCustomer:
    """The customer as the ranker sees them. Unknown customers are not created (ranking
    writes no profile); without personalization consent only the id is used (for caps),
    not the profile or segments."""
    row = fetchone_prepared_as_health_check(
        _CUSTOMER_SQL, {"id": external_id, "purpose": ConsentPurpose.PERSONALIZATION}
    )
    if row is None:
        return RankingCustomer(pk=None, features={"new": True}, segments=frozenset())
    pk, state, segments, consented = row
    if isinstance(state, str):  # Django's adapters load jsonb as text
        state = json.loads(state)
    if not consented:
        return RankingCustomer(pk=pk, features={"anonymous": True}, segments=frozenset())
    features = customer_features_from_state(
        state, segments=list(segments), now=now or timezone.now()
    )
    # The customer's own token: crossed with the offers' attributes it learns what this
    # customer clicks beyond what the profile says (a string: a number would be bucketed).
    features["id"] = str(pk)
    return RankingCustomer(pk=pk, features=features, segments=frozenset(segments))


def items_for_ranking(*, external_ids: list[str]) -> dict[str, Item]:
    return Item.objects.in_bulk(external_ids, field_name="external_id")


def offer_list(*, filters: dict | None = None) -> QuerySet[Offer]:
    filters = filters or {}
    qs = Offer.objects.select_related("item", "segment")
    if q := filters.get("q"):
        qs = qs.filter(Q(name__icontains=q) | Q(title__icontains=q) | Q(item__title__icontains=q))
    if status := filters.get("status"):
        qs = qs.filter(status=status)
    if offer_type := filters.get("type"):
        qs = qs.filter(type=offer_type)
    return qs.order_by("-priority", "name")


def offer_get(*, pk: int) -> Offer | None:
    return Offer.objects.select_related("item", "segment").filter(pk=pk).first()


@dataclass(frozen=True)
class OfferStats:
    shown_first: int
    rewarded: int
    mean_reward: float | None


def offer_stats(*, offer: Offer, since: datetime) -> OfferStats:
    row = OfferDecision.objects.filter(chosen_id=str(offer.pk), created_at__gte=since).aggregate(
        n=Count("pk"),
        rewarded=Count("pk", filter=Q(reward__gt=0)),
        mean=Avg("reward"),
    )
    return OfferStats(shown_first=row["n"], rewarded=row["rewarded"], mean_reward=row["mean"])


def offer_popularity(*, since: datetime, min_decisions: int = 50) -> dict[str, float]:
    """Smoothed mean reward of each offer when shown first, for the popularity prior."""
    rows = (
        OfferDecision.objects.filter(created_at__gte=since, reward__isnull=False)
        .values("chosen_id")
        .annotate(n=Count("pk"), mean=Avg("reward"))
    )
    return {r["chosen_id"]: r["mean"] for r in rows if r["n"] >= min_decisions}


def reward_timeline(*, since: datetime) -> dict[str, list]:
    """Mean reward per hour and decision mode (learned / explore / baseline), with counts:
    the Learning chart."""
    rows = (
        OfferDecision.objects.filter(created_at__gte=since, reward__isnull=False)
        .annotate(hour=TruncHour("created_at"))
        .values("hour", "mode")
        .annotate(n=Count("pk"), mean=Avg("reward"))
        .order_by("hour", "mode")
    )
    series: dict[str, dict[str, list]] = {
        m: {"x": [], "y": [], "n": []} for m in DecisionMode.values
    }
    for r in rows:
        s = series[r["mode"]]
        s["x"].append(r["hour"].isoformat())
        s["y"].append(round(r["mean"], 4))
        s["n"].append(r["n"])
    return {m: [s["x"], s["y"], s["n"]] for m, s in series.items() if s["x"]}


def decisions_for_evaluation(*, limit: int) -> list[OfferDecision]:
    """The latest rewarded decisions, oldest first (replay order)."""
    rows = list(
        OfferDecision.objects.filter(reward__isnull=False)
        .only("context", "customer_features", "candidates", "chosen_index", "probability", "reward")
        .order_by("-created_at", "-pk")[:limit]
    )
    rows.reverse()
    return rows


def evaluation_latest() -> Job | None:
    from recommender.offers_learning import EVALUATION_JOB_KIND

    return Job.objects.filter(kind=EVALUATION_JOB_KIND).order_by("-created_at").first()


def policy_snapshot_latest() -> OfferPolicySnapshot | None:
    return OfferPolicySnapshot.objects.defer("state").order_by("-version").first()
