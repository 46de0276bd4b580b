"""Hashed features for the offer ranker: request context, customer and candidate action.

Why hashing: the inputs are free-form dicts (a storefront sends whatever context it has, an
inline candidate carries its own features), so there is no vocabulary to maintain. Each
`key=value` token is hashed (CRC-32, stable across processes, unlike Python's salted `hash`)
into a fixed space of 2^bits weights, as Vowpal Wabbit / Personalizer do.

Three namespaces: `context` (device, page, hour, referrer, cart value ...), `customer` (live
profile buckets, segment ids, the customer's own id for per-customer crosses; top categories
and category shares enter through the match tokens below) and `action` (offer id, type,
category, price, discount, inline features). A linear model on first-order features alone would
give every customer the same offer order, so the action namespace is crossed with the others
(`-q ca -q ua` in VW terms): the index of a pair is (h_left * FNV_prime xor h_right) masked
to the space. Only action-dependent features change the ranking; shared ones (context and
customer first-order terms) still matter for the predicted click probability.

Values: strings and ids become one token `key=value`; lists and sets one token per element
(`segments=12`, `top_categories=books`); booleans `key=1/0`; numbers fall into buckets
(`hour#2`), with edges for well-known keys (hour, cart value, price, discount, orders, revenue,
recency) and log2 buckets otherwise, because a raw number times a weight would impose a
monotone effect (a 2 am visitor is not "twice" a 1 am one). Every feature value is 1.
"""

import bisect
import math
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

CONTEXT = "context"
CUSTOMER = "customer"
ACTION = "action"
NAMESPACES = (CONTEXT, CUSTOMER, ACTION)
_PREFIX = {CONTEXT: "c|", CUSTOMER: "u|", ACTION: "a|"}
DEFAULT_INTERACTIONS: tuple[tuple[str, str], ...] = ((CONTEXT, ACTION), (CUSTOMER, ACTION))
DEFAULT_BITS = 18  # room for the per-customer crosses (2 MiB of weights)
FNV_PRIME = 16_777_619
# Upper-exclusive bucket edges: value v falls in bucket bisect_right(edges, v).
NUMERIC_BUCKETS: dict[str, tuple[float, ...]] = {
    "hour": (6, 12, 18),  # night, morning, afternoon, evening
    "cart_value": (0.01, 25, 50, 100, 200),
    "price": (10, 25, 50, 100, 250),
    "discount": (5, 10, 20, 30, 50),
    "orders": (1, 2, 5, 10, 20),
    "revenue": (1, 50, 200, 500, 2000),
    "recency_days": (7, 30, 90, 365),
    # a recommender's standardized score of the customer for the candidate (z over the
    # catalog), e.g. sent by the storefront as an inline candidate feature
    "affinity_z": (-1, -0.5, 0, 0.5, 1, 1.5, 2, 2.5, 3),
}
# (action key, customer key): one action feature saying how the customer relates to the
# action's value, e.g. where the offer's category stands among the customer's top categories.
DEFAULT_MATCHES: tuple[tuple[str, str], ...] = (
    ("category", "top_categories"),
    ("category", "category_affinity"),
)
SHARE_BUCKETS = (0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75)
_HASH_CACHE_LIMIT = 200_000
_ACTION_CACHE_LIMIT = 20_000

Action = Mapping[str, Any]


@dataclass(frozen=True)
class FeatureSpec:
    """What the ranker sees: the hash space, the crossed namespaces, dropped keys.

    These are also the "feature set" knobs of offline evaluation: a spec without the
    `customer x action` interaction, or ignoring `segments`, is a candidate setting.
    """

    bits: int = DEFAULT_BITS
    interactions: tuple[tuple[str, str], ...] = DEFAULT_INTERACTIONS
    matches: tuple[tuple[str, str], ...] = DEFAULT_MATCHES
    # Whether the action id enters the interactions: per-offer x customer/context weights
    # are many parameters with little data each; without them an offer is known by its
    # attributes in the crosses (and by its id in a first-order term).
    cross_ids: bool = True
    # Customer keys that enter only through `matches`, not as tokens of their own: the
    # category shares and top categories as customer tokens add ~15 crossed features per
    # candidate that say again, less directly, what the match tokens say (on the simulated
    # storefront dropping them raised the learned policy from 0.75 to 0.76 of the oracle).
    match_only: frozenset[str] = frozenset({"top_categories", "category_affinity"})
    ignore: frozenset[str] = frozenset()
    buckets: Mapping[str, tuple[float, ...]] = field(default_factory=lambda: NUMERIC_BUCKETS)

    def __post_init__(self) -> None:
        if not 4 <= self.bits <= 24:
            raise ValueError("bits must be between 4 and 24")
        for pair in self.interactions:
            if len(pair) != 2 or not set(pair) <= set(NAMESPACES):
                raise ValueError(f"interaction {pair!r} must pair two of {NAMESPACES}")
            if pair == (ACTION, ACTION):
                raise ValueError("action x action interactions are not supported")

    @property
    def dim(self) -> int:
        return 1 << self.bits

    def to_dict(self) -> dict[str, Any]:
        return {
            "bits": self.bits,
            "interactions": [list(p) for p in self.interactions],
            "matches": [list(p) for p in self.matches],
            "cross_ids": self.cross_ids,
            "match_only": sorted(self.match_only),
            "ignore": sorted(self.ignore),
            "buckets": {k: list(v) for k, v in self.buckets.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "FeatureSpec":
        return cls(
            bits=int(data["bits"]),
            interactions=tuple((str(a), str(b)) for a, b in data["interactions"]),
            matches=tuple((str(a), str(b)) for a, b in data.get("matches", ())),
            cross_ids=bool(data.get("cross_ids", True)),
            # states stored before the field existed used every customer key as a token
            match_only=frozenset(data.get("match_only", ())),
            ignore=frozenset(data.get("ignore", ())),
            buckets={k: tuple(float(x) for x in v) for k, v in data["buckets"].items()},
        )


@dataclass(frozen=True, eq=False)
class FeatureBatch:
    """The hashed features of one request's K candidates, in sparse form.

    `shared` indices are active for every candidate; `indices[j]` is active for candidate
    `rows[j]` only. All values are 1, so a linear score is w[shared].sum() plus
    bincount(rows, w[indices]).
    """

    shared: np.ndarray
    indices: np.ndarray
    rows: np.ndarray
    n_actions: int
    ids: tuple[str, ...]

    def action_indices(self, action: int) -> np.ndarray:
        """Every index active for one candidate (shared ones first)."""
        if not 0 <= action < self.n_actions:
            raise IndexError(f"action {action} out of range 0..{self.n_actions - 1}")
        return np.concatenate((self.shared, self.indices[self.rows == action]))

    def linear_scores(self, weights: np.ndarray) -> np.ndarray:
        """x_k . w for every candidate k."""
        per_action = np.bincount(self.rows, weights=weights[self.indices], minlength=self.n_actions)
        return per_action + weights[self.shared].sum()


class Featurizer:
    """Turns (context, customer, candidates) dicts into a `FeatureBatch`.

    Keeps a cache from token to hash: tokens repeat across requests (a few hundred devices,
    pages, offers), so after warm-up featurizing is mostly dict look-ups.
    """

    def __init__(self, spec: FeatureSpec | None = None) -> None:
        self.spec = spec or FeatureSpec()
        self._mask = np.uint64(self.spec.dim - 1)
        self._cache: dict[str, int] = {}
        self._customer_skip = self.spec.ignore | self.spec.match_only
        self._action_cache: dict[tuple, list[int]] = {}
        self._match_keys = tuple(action_key for action_key, _ in self.spec.matches)
        self._shared_pairs = [p for p in self.spec.interactions if ACTION not in p]
        self._action_partners = [
            a if b == ACTION else b for a, b in self.spec.interactions if ACTION in (a, b)
        ]

    def tokens(self, namespace: str, features: Mapping[str, Any] | None) -> list[str]:
        """The `key=value` / `key#bucket` tokens of one namespace, prefixed by it."""
        if not features:
            return []
        prefix = _PREFIX[namespace]
        out: list[str] = []
        skip = self._customer_skip if namespace == CUSTOMER else self.spec.ignore
        for key, value in features.items():
            if key in skip:
                continue
            self._add_tokens(out, prefix + str(key), key, value)
        return out

    def _add_tokens(self, out: list[str], name: str, key: str, value: Any) -> None:
        kind = type(value)
        if kind is str:
            out.append(f"{name}={value}")
        elif kind is float or kind is int:
            out.append(f"{name}#{self.bucket(key, value)}")
        elif value is None:
            return
        elif isinstance(value, bool):
            out.append(f"{name}={int(value)}")
        elif isinstance(value, int | float | np.integer | np.floating):
            out.append(f"{name}#{self.bucket(key, float(value))}")
        elif isinstance(value, str):
            out.append(f"{name}={value}")
        elif isinstance(value, Mapping):
            for sub_key, sub_value in value.items():
                self._add_tokens(out, f"{name}.{sub_key}", str(sub_key), sub_value)
        elif isinstance(value, Iterable):
            out.extend(f"{name}={element}" for element in value)
        else:
            out.append(f"{name}={value}")

    def bucket(self, key: str, value: float) -> int:
        edges = self.spec.buckets.get(key)
        if edges is not None:
            return bisect.bisect_right(edges, value)
        if not math.isfinite(value):
            return 99
        magnitude = int(math.log2(1.0 + abs(value)))
        return -magnitude - 1 if value < 0 else magnitude

    def match_tokens(self, action: Mapping[str, Any], customer: Mapping[str, Any]) -> list[str]:
        """Customer-dependent action tokens for the configured (action key, customer key)
        pairs: the position of the action's value in a customer list (`@top_categories=0`,
        `=none` when absent) or the bucketed share in a customer mapping.

        A cross `top_categories=books x category=books` has to be learned once per category;
        this one token means "the offer is in the customer's favourite category" for every
        category, so it is learned from all traffic at once.
        """
        out = []
        for action_key, customer_key in self.spec.matches:
            value = action.get(action_key)
            known = customer.get(customer_key)
            if value is None or known is None or customer_key in self.spec.ignore:
                continue
            name = f"a|{action_key}@{customer_key}"
            if isinstance(known, Mapping):
                share = known.get(value)
                share = float(share) if isinstance(share, int | float) else 0.0
                out.append(f"{name}#{bisect.bisect_right(SHARE_BUCKETS, share)}")
            elif isinstance(known, list | tuple):
                position = known.index(value) if value in known else "none"
                out.append(f"{name}={position}")
        return out

    def hashes(self, tokens: Sequence[str]) -> np.ndarray:
        return np.array(self._hash_list(tokens), dtype=np.uint64)

    def _hash_list(self, tokens: Sequence[str]) -> list[int]:
        cache = self._cache
        if len(cache) > _HASH_CACHE_LIMIT:
            cache.clear()
        out = []
        for token in tokens:
            h = cache.get(token)
            if h is None:
                h = cache[token] = zlib.crc32(token.encode())
            out.append(h)
        return out

    def _action_hashes(self, features: Mapping[str, Any]) -> list[int]:
        """The hashed tokens of one candidate's own features, cached by their values: the
        same offers come back request after request (the catalog's, or a storefront's inline
        candidates), and tokenizing them was half of featurizing. The key keeps each value's
        type (True and 1 make different tokens); a list or mapping value is not cached."""
        try:
            key = tuple((k, v.__class__, v) for k, v in features.items())
            cached = self._action_cache.get(key)
        except TypeError:
            return self._hash_list(self.tokens(ACTION, features))
        if cached is None:
            if len(self._action_cache) > _ACTION_CACHE_LIMIT:
                self._action_cache.clear()
            cached = self._action_cache[key] = self._hash_list(self.tokens(ACTION, features))
        return cached

    def featurize(
        self,
        *,
        context: Mapping[str, Any] | None,
        customer: Mapping[str, Any] | None,
        actions: Sequence[Action],
    ) -> FeatureBatch:
        """Features of every candidate. An action is `{"id": ..., "features": {...}}`;
        its id becomes the token `id=<id>`, so each offer also gets its own weights."""
        if not actions:
            raise ValueError("need at least one candidate action")
        by_ns = {
            CONTEXT: self.hashes(self.tokens(CONTEXT, context)),
            CUSTOMER: self.hashes(self.tokens(CUSTOMER, customer)),
        }
        mask = self._mask
        shared = [by_ns[CONTEXT], by_ns[CUSTOMER]]
        for first, second in self._shared_pairs:
            shared.append(_cross(by_ns[first], by_ns[second]))
        action_hashes: list[int] = []
        counts: list[int] = []
        ids = []
        use_matches = bool(self.spec.matches and customer)
        # match tokens depend on the candidate only through the matched keys' values (its
        # category): computed once per value and request
        matched_by_value: dict[tuple, list[int]] = {}
        for row, action in enumerate(actions):
            action_id = str(action.get("id", row))
            ids.append(action_id)
            action_features = action.get("features") or {}
            hashed = self._action_hashes(action_features)
            if use_matches:
                values = tuple(action_features.get(k) for k in self._match_keys)
                try:
                    matched = matched_by_value.get(values)
                except TypeError:  # a list value
                    values, matched = (), None
                if matched is None:
                    matched = self._hash_list(self.match_tokens(action_features, customer or {}))
                    if values:
                        matched_by_value[values] = matched
                hashed = hashed + matched
            action_hashes.extend(hashed)
            counts.append(len(hashed))
        a_hash = np.array(action_hashes, dtype=np.uint64)
        a_rows = np.repeat(np.arange(len(actions), dtype=np.int64), counts)
        pieces = [a_hash]
        rows = [a_rows]
        if "id" not in self.spec.ignore:
            id_hash = self.hashes([f"a|id={action_id}" for action_id in ids])
            id_rows = np.arange(len(ids), dtype=np.int64)
            pieces.append(id_hash)
            rows.append(id_rows)
            if self.spec.cross_ids:
                a_hash = np.concatenate((a_hash, id_hash))
                a_rows = np.concatenate((a_rows, id_rows))
        for partner in self._action_partners:
            left = by_ns[partner]
            if len(left):
                pieces.append(_cross(left, a_hash))
                rows.append(np.tile(a_rows, len(left)))
        return FeatureBatch(
            shared=(np.concatenate(shared) & mask).astype(np.int64),
            indices=(np.concatenate(pieces) & mask).astype(np.int64),
            rows=np.concatenate(rows),
            n_actions=len(actions),
            ids=tuple(ids),
        )


def _cross(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Hashes of every (left, right) pair, left-major: VW's quadratic interaction."""
    return ((left[:, None] * np.uint64(FNV_PRIME)) ^ right[None, :]).ravel()
