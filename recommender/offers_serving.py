"""Rank: the hot path of `POST /api/v1/offers/rank`.

Per request: the served policy version and the catalog generation (one Redis round trip, at
most once a second per process), one SQL query (the customer's live features, segments,
consent), a second Redis round trip only when a candidate has caps, featurize + rank in numpy
(~0.3 ms for 20 candidates), and one pipelined Redis write (the decision into the log buffer,
its reward marker, impression counters). No PostgreSQL write: offers_log moves the decision
there a few seconds later.

Candidates: without any, the eligible offers of the placement (cached catalog) in the
default order (priority, then age). With candidates, each is an inline action
`{"id", "features"}` (as Personalizer takes them), or an id: `offer:<pk>` / `item:<id>`
explicitly, else a number or a live offer's id is an offer and anything else an item of the
catalog. Named offers still pass their eligibility (status, dates, segment, channel, stock,
caps) but not the placement; unknown ids are dropped.

Experiment variants (issue #7): the API assigns the customer and passes the variant's config
as a `RankVariant`. `{"policy": "learned"}` (the default) ranks with the served policy;
`{"policy": "priority"}` is the baseline a learned policy has to beat: candidates in the
given / priority order with no exploration; `{"exploration": 0.05}` overrides the
exploration share for that variant (with either policy). Every variant's decisions enter the
same log with their true propensities, so the learner and offline evaluation use them all.
"""

import json
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis
from django.utils import timezone

from marketing.throttling import Quota, quota_take
from recommender.contextual import ApprenticePolicy
from recommender.contextual.policies import baseline_ranking
from recommender.models import DecisionMode
from recommender.offers_catalog import (
    CatalogOffer,
    cached_catalog,
    eligible_offers,
    item_features,
    popularity_bucket,
)
from recommender.offers_log import decision_buffer, offer_counters
from recommender.offers_policy import (
    CATALOG_GENERATION_KEY,
    POPULARITY_KEY,
    VERSION_KEY,
    ranker_learner,
    redis_client,
    redis_key,
    served_ranker,
)
from recommender.selectors_offers import customer_for_ranking, items_for_ranking

logger = logging.getLogger(__name__)

DEFAULT_K = 3
MAX_K = 50
MAX_CANDIDATES = 100


# The policy version and catalog generation are read at most once per this many seconds per
# process: a round trip fewer on most requests (each one waits for a time slice on a busy
# machine), and a new model is still served within seconds of its publication.
STAMPS_SECONDS = 1.0
_stamps_cache: dict[str, Any] = {"at": float("-inf"), "value": (None, None)}


def _stamps() -> tuple[Any, Any]:
    at = time.monotonic()
    if at - _stamps_cache["at"] >= STAMPS_SECONDS:
        try:
            _stamps_cache["value"] = tuple(
                redis_client().mget([redis_key(VERSION_KEY), redis_key(CATALOG_GENERATION_KEY)])
            )
        except redis.RedisError as exc:  # Redis down: keep serving what this process has
            logger.warning("offer stamps unavailable", extra={"error": str(exc)[:300]})
        _stamps_cache["at"] = at
    return _stamps_cache["value"]


def stamps_forget() -> None:
    """Read the version and generation afresh on the next request (tests, benchmarks)."""
    _stamps_cache["at"] = float("-inf")


LEARNED_POLICY, PRIORITY_POLICY = "learned", "priority"
RANK_POLICIES = (LEARNED_POLICY, PRIORITY_POLICY)


@dataclass(frozen=True)
class RankVariant:
    """How one request ranks: the policy (learned or priority), an exploration share
    overriding the settings' (None: the served ranker's own), and the experiment and variant
    keys written to the decision log."""

    policy: str = LEARNED_POLICY
    exploration: float | None = None
    experiment: str = ""
    variant: str = ""

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, experiment: str, variant: str):
        """A variant's Variant.config; a value it does not understand is ignored (logged),
        so a mistyped config serves the default ranking instead of failing requests."""
        policy = config.get("policy", LEARNED_POLICY)
        if policy not in RANK_POLICIES:
            logger.warning(
                "offer rank: unknown policy in variant config",
                extra={"experiment": experiment, "variant": variant, "policy": policy},
            )
            policy = LEARNED_POLICY
        exploration = config.get("exploration")
        valid = isinstance(exploration, int | float) and not isinstance(exploration, bool)
        if exploration is not None and not (valid and 0.0 <= exploration <= 1.0):
            logger.warning(
                "offer rank: exploration in variant config is not a share between 0 and 1",
                extra={"experiment": experiment, "variant": variant},
            )
            exploration = None
        return cls(
            policy=policy,
            exploration=float(exploration) if exploration is not None else None,
            experiment=experiment,
            variant=variant,
        )


DEFAULT_VARIANT = RankVariant()


@dataclass(frozen=True)
class RankResult:
    event_id: str | None
    ranking: list[tuple[str, float]]
    model_version: int


def popularity_load() -> dict[str, float]:
    try:
        raw = redis_client().get(redis_key(POPULARITY_KEY))
    except redis.RedisError as exc:  # Redis down: no popularity prior until it returns
        logger.warning("offer popularity unavailable", extra={"error": str(exc)[:300]})
        return {}
    return json.loads(raw) if raw else {}


@dataclass
class _Candidate:
    id: str
    features: Mapping[str, Any]
    item: str = ""
    offer: CatalogOffer | None = None


def _item_features(item) -> dict[str, Any]:
    return {"type": "item", "popularity": popularity_bucket(None), **item_features(item)}


def _resolve(
    candidates: Sequence[Any] | None,
    *,
    catalog: dict[str, CatalogOffer],
    placement: str,
    channel: str | None,
    segments: frozenset[int],
    now: datetime,
) -> list[_Candidate]:
    if not candidates:
        offers = eligible_offers(
            catalog, placement=placement, channel=channel, segments=segments, now=now
        )
        return [_Candidate(o.id, o.features, o.item, o) for o in offers]
    named_offers: list[str] = []
    named_items: list[str] = []
    slots: list[tuple[str, Any]] = []
    for entry in candidates:
        if isinstance(entry, Mapping):
            slots.append(("inline", entry))
            continue
        text = str(entry)
        if text.startswith("offer:"):
            kind, key = "offer", text[6:]
        elif text.startswith("item:"):
            kind, key = "item", text[5:]
        elif isinstance(entry, int) or text in catalog:
            kind, key = "offer", text
        else:
            kind, key = "item", text
        (named_offers if kind == "offer" else named_items).append(key)
        slots.append((kind, key))
    allowed = {
        o.id: o
        for o in eligible_offers(
            catalog,
            placement=None,
            channel=channel,
            segments=segments,
            now=now,
            only=named_offers,
        )
    }
    items = items_for_ranking(external_ids=named_items) if named_items else {}
    out = []
    seen = set()
    for kind, value in slots:
        if kind == "inline":
            candidate = _Candidate(str(value["id"]), value.get("features") or {})
        elif kind == "offer" and value in allowed:
            offer = allowed[value]
            candidate = _Candidate(offer.id, offer.features, offer.item, offer)
        elif kind == "item" and value in items and items[value].is_active:
            candidate = _Candidate(value, _item_features(items[value]), value)
        else:
            continue
        if candidate.id not in seen:
            seen.add(candidate.id)
            out.append(candidate)
    return out


def _under_caps(candidates: list[_Candidate], *, customer_ref: str) -> list[_Candidate]:
    capped = [c for c in candidates if c.offer is not None and c.offer.caps]
    if not capped:
        return candidates
    try:
        counters = offer_counters(offer_ids=[c.id for c in capped], customer_ref=customer_ref)
    except redis.RedisError as exc:  # caps cannot be checked: leave the capped offers out
        logger.warning("offer cap counters unavailable", extra={"error": str(exc)[:300]})
        return [c for c in candidates if c.offer is None or not c.offer.caps]
    blocked = {
        c.id
        for c in capped
        if any(counters[c.id][name] >= cap for name, cap in c.offer.caps.items())  # type: ignore[union-attr]
    }
    return [c for c in candidates if c.id not in blocked]


def offers_rank(
    *,
    customer_external_id: str,
    context: Mapping[str, Any],
    candidates: Sequence[Any] | None = None,
    placement: str = "",
    k: int = DEFAULT_K,
    now: datetime | None = None,
    variant: RankVariant = DEFAULT_VARIANT,
    quota: Quota | None = None,
) -> RankResult:
    """The ranking (see the module docstring). With `quota` (the API key's rate limit) the
    call is counted in the decision's own Redis round trip; over the limit nothing is
    logged and OverLimitError is raised (the API answers 429)."""
    now = now or timezone.now()
    raw_version, generation = _stamps()
    version, ranker = served_ranker.get(int(raw_version) if raw_version is not None else None)
    catalog = cached_catalog.get(generation, popularity_load)
    customer = customer_for_ranking(external_id=customer_external_id, now=now)
    channel = context.get("channel")
    resolved = _resolve(
        candidates,
        catalog=catalog,
        placement=placement,
        channel=channel if isinstance(channel, str) else None,
        segments=customer.segments,
        now=now,
    )
    resolved = _under_caps(resolved[:MAX_CANDIDATES], customer_ref=customer_external_id)
    if not resolved:
        if quota is not None:
            quota_take(quota)
        return RankResult(event_id=None, ranking=[], model_version=version)
    ids = [c.id for c in resolved]
    actions: list[Mapping[str, Any]] = [
        {"id": c.id, "features": dict(c.features)} for c in resolved
    ]
    batch = ranker_learner(ranker).featurize(
        context=context, customer=customer.features, actions=actions
    )
    epsilon = variant.exploration
    if variant.policy == PRIORITY_POLICY:
        ranking = baseline_ranking(
            len(actions), epsilon=epsilon or 0.0, rng=ranker_learner(ranker).rng
        )
        learned = False
    elif isinstance(ranker, ApprenticePolicy):
        ranking = ranker.rank(batch, baseline=0, epsilon=epsilon)
        learned = ranker.graduated
    else:
        ranking = ranker.rank(batch, epsilon=epsilon)
        learned = True
    chosen = ranking.chosen
    if not learned:
        mode = DecisionMode.BASELINE if chosen == 0 else DecisionMode.EXPLORE
    else:
        mode = DecisionMode.LEARNED if chosen == ranking.greedy else DecisionMode.EXPLORE
    top = ranking.top(max(1, min(k, MAX_K)))
    event_id = str(uuid.uuid4())
    record = {
        "event_id": event_id,
        "at": now.timestamp(),
        "customer": customer.pk,
        "customer_ref": customer_external_id,
        "placement": placement,
        "context": dict(context),
        "features": customer.features,
        "candidates": actions,
        "ranking": [ids[i] for i, _ in top],
        "chosen": chosen,
        "item": resolved[chosen].item,
        "probability": ranking.chosen_probability,
        "mode": mode.value,
        "version": version,
        "experiment": variant.experiment,
        "variant": variant.variant,
    }
    shown = [ids[i] for i, _ in top if resolved[i].offer is not None]
    capped_shown = [i for i in shown if catalog[i].caps]
    decision_buffer(
        record=record, impressions=capped_shown, customer_ref=customer_external_id, quota=quota
    )
    return RankResult(
        event_id=event_id,
        ranking=[(ids[i], round(p, 6)) for i, p in top],
        model_version=version,
    )
