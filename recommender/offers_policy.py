"""Where the offer ranker's state lives and how web processes follow it.

The served state is one Redis value (the policy's npz bytes) plus a version counter. The
learner (offers_learning) is the only writer; every web process keeps the deserialized
policy in memory and compares the version (read with the catalog generation, at most once a
second) and reloads the bytes only when it changed, i.e. at most once per learning run.
PostgreSQL keeps periodic snapshots (OfferPolicySnapshot) so a flushed Redis restarts from
the last one, not from nothing.

The state is either a plain policy or, in apprentice mode, an ApprenticePolicy wrapping the
learner; one tag byte in front of the bytes says which.
"""

import logging
import threading
from dataclasses import dataclass

import redis
from django.conf import settings

from recommender.contextual import ApprenticePolicy, Policy, PolicyConfig, make_policy
from recommender.contextual.policies import policy_from_bytes
from recommender.models import OfferPolicySnapshot

logger = logging.getLogger(__name__)

STATE_KEY = "offers:policy:state"
VERSION_KEY = "offers:policy:version"
CATALOG_GENERATION_KEY = "offers:catalog:generation"
POPULARITY_KEY = "offers:popularity"
_PLAIN, _APPRENTICE = b"P", b"A"

Ranker = Policy | ApprenticePolicy

_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()


def redis_key(name: str) -> str:
    return f"{settings.CACHES['default'].get('KEY_PREFIX', '')}:{name}"


def redis_client() -> redis.Redis:
    """One long-lived client per process and Redis location (the rank path must not build a
    client per call)."""
    location = settings.CACHES["default"]["LOCATION"]
    client = _clients.get(location)
    if client is None:
        with _clients_lock:
            client = _clients.setdefault(
                location,
                redis.Redis.from_url(location, socket_timeout=2, socket_connect_timeout=2),
            )
    return client


def configured_policy_config() -> PolicyConfig:
    """The settings' policy: OFFERS_POLICY overrides (kind, learning rate ...) on the
    measured winner (logistic), with the configured exploration share."""
    overrides = dict(settings.OFFERS_POLICY)
    overrides["epsilon"] = settings.OFFERS_EXPLORATION
    return PolicyConfig(**overrides)


def ranker_new() -> Ranker:
    learner = make_policy(configured_policy_config())
    if settings.OFFERS_APPRENTICE:
        return ApprenticePolicy(learner, min_events=settings.OFFERS_APPRENTICE_MIN_EVENTS)
    return learner


def ranker_to_bytes(ranker: Ranker, *, compress: bool = True) -> bytes:
    """The stored state (compressed in PostgreSQL snapshots; Redis holds it uncompressed,
    as every web process loads each published version: ~3 ms instead of ~25 ms for 2^18
    weights, a pause its next request would wait out). Either form loads."""
    tag = _APPRENTICE if isinstance(ranker, ApprenticePolicy) else _PLAIN
    return tag + ranker.to_bytes(compress=compress)


def ranker_from_bytes(data: bytes) -> Ranker:
    if data[:1] == _APPRENTICE:
        return ApprenticePolicy.from_bytes(data[1:])
    if data[:1] == _PLAIN:
        return policy_from_bytes(data[1:])
    raise ValueError("unknown ranker state tag")


def _raw(value: bytes | str) -> bytes:
    """redis-py's types allow str; this client never decodes responses."""
    return value if isinstance(value, bytes) else value.encode()


def ranker_learner(ranker: Ranker) -> Policy:
    return ranker.learner if isinstance(ranker, ApprenticePolicy) else ranker


def ranker_reconfigure(ranker: Ranker) -> Ranker:
    """Apply changed settings (exploration, apprentice on/off, learning rate) to a stored
    ranker while keeping what it learned; a changed feature space starts afresh."""
    config = configured_policy_config()
    learner = ranker_learner(ranker)
    if learner.config.features != config.features or learner.config.kind != config.kind:
        logger.warning("offer ranker features or kind changed: starting a new model")
        return ranker_new()
    learner.config = config
    if settings.OFFERS_APPRENTICE:
        if isinstance(ranker, ApprenticePolicy):
            ranker.epsilon = config.epsilon
            return ranker
        wrapped = ApprenticePolicy(learner, min_events=settings.OFFERS_APPRENTICE_MIN_EVENTS)
        wrapped.graduated = learner.updates > 0  # a model already serving stays in charge
        return wrapped
    return learner


def ranker_load_stored() -> tuple[int, Ranker]:
    """(version, ranker) from Redis, else the latest PostgreSQL snapshot, else a new one at
    version 0. Used by the learner; web processes use `ServedRanker`."""
    client = redis_client()
    version, state = client.mget([redis_key(VERSION_KEY), redis_key(STATE_KEY)])
    if version is not None and state is not None:
        return int(version), ranker_from_bytes(_raw(state))
    snapshot = OfferPolicySnapshot.objects.order_by("-version").first()
    if snapshot is not None:
        return snapshot.version, ranker_from_bytes(bytes(snapshot.state))
    return 0, ranker_new()


def ranker_publish(*, version: int, ranker: Ranker) -> None:
    """State first, then the version, in one MULTI: a reader that sees the new version
    finds the new state."""
    pipe = redis_client().pipeline(transaction=True)
    pipe.set(redis_key(STATE_KEY), ranker_to_bytes(ranker, compress=False))
    pipe.set(redis_key(VERSION_KEY), version)
    pipe.execute()


@dataclass
class _Served:
    version: int | None = None
    ranker: Ranker | None = None


class ServedRanker:
    """The process's copy of the published ranker, reloaded when the version moves.

    Without anything published (a new install) it serves a fresh ranker at version 0,
    which ranks by the popularity prior and context through its zero weights' ties, i.e.
    the given / priority order with exploration.
    """

    def __init__(self) -> None:
        self._served = _Served()
        self._lock = threading.Lock()

    def get(self, version: int | None) -> tuple[int, Ranker]:
        served = self._served
        if served.ranker is not None and served.version == version:
            return served.version or 0, served.ranker
        with self._lock:
            served = self._served
            if served.ranker is None or served.version != version:
                ranker: Ranker | None = None
                if version is not None:
                    raw = redis_client().get(redis_key(STATE_KEY))
                    ranker = ranker_from_bytes(_raw(raw)) if raw is not None else None
                self._served = served = _Served(version, ranker or ranker_new())
        return served.version or 0, served.ranker  # type: ignore[return-value]

    def clear(self) -> None:
        self._served = _Served()


served_ranker = ServedRanker()
