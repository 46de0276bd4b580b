"""Customer clusters: k-means on standardized behavioural features. Pure: numpy and
scikit-learn, no Django (CONVENTIONS §0).

`feature_matrix` turns feature states (the dicts of profiles/features.py) into named columns;
`clusters_fit` scales them, fits k-means for each k of a range (or one fixed k), keeps the k
with the best silhouette, and describes each cluster in plain words by the features whose
standardized centroid deviates most from the average customer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

DEFAULT_K_MIN = 2
DEFAULT_K_MAX = 8
MAX_K = 20
SILHOUETTE_SAMPLE = 5000
N_INIT = 3
RANDOM_STATE = 0
TOP_CATEGORIES = 12
# A centroid this many standard deviations from the mean counts as distinguishing.
DESCRIBE_THRESHOLD = 0.5
DESCRIBE_TERMS = 4

# Parts of the day by UTC hour of the events.
DAYPARTS = {
    "night": range(0, 6),
    "morning": range(6, 12),
    "afternoon": range(12, 18),
    "evening": range(18, 24),
}
CHANNELS = ("web", "app", "email", "sms", "push")

# (phrase when the cluster is high, phrase when it is low); None says nothing.
PHRASES: dict[str, tuple[str | None, str | None]] = {
    "recency_days": ("lapsed", "recently active"),
    "tenure_days": ("long-standing", "new"),
    "orders": ("frequent buyers", "low frequency"),
    "revenue": ("high spend", "low spend"),
    "average_order_value": ("big baskets", "small baskets"),
    "sessions": ("many visits", "few visits"),
    "conversion": ("converts well", "rarely buys"),
    "email_engagement": ("email-engaged", None),
    **{f"daypart:{name}": (name, None) for name in DAYPARTS},
    **{f"channel:{name}": (name, None) for name in CHANNELS},
}
# Features that move together: a description names at most two of a group, so that one
# difference (buying more) does not crowd out the others (categories, time of day).
PHRASE_GROUPS = {
    "orders": "value",
    "revenue": "value",
    "average_order_value": "value",
    "conversion": "value",
}
PHRASES_PER_GROUP = 2
# Counts and money are skewed: they are compared on a log scale.
LOG_FEATURES = frozenset({"orders", "revenue", "average_order_value", "sessions"})
EMAIL_ENGAGEMENT_EVENTS = ("email_open", "email_click")


# The columns a run may use, by group: a marketer can cluster on tastes alone, say.
FEATURE_GROUPS = {
    "value": "Recency, frequency and spend",
    "categories": "Category tastes",
    "channels": "Channels",
    "dayparts": "Time of day",
}


def feature_group(name: str) -> str:
    prefix = name.split(":", 1)[0] if ":" in name else ""
    return {"category": "categories", "channel": "channels", "daypart": "dayparts"}.get(
        prefix, "value"
    )


class ClusteringError(ValueError):
    """The data cannot be clustered as asked (too few customers, a bad k range)."""


@dataclass(frozen=True, eq=False)
class FeatureMatrix:
    names: tuple[str, ...]
    values: np.ndarray  # (n, len(names)) float64, in original units

    def column(self, name: str) -> np.ndarray:
        return self.values[:, self.names.index(name)]


@dataclass(frozen=True)
class ClusterSummary:
    index: int
    size: int
    share: float
    description: str
    centroid: dict[str, float]  # mean of each feature, original units
    zscores: dict[str, float]  # standardized centroid: distance from the mean in SDs


@dataclass(frozen=True, eq=False)
class ClusteringResult:
    k: int
    silhouette: float
    silhouette_by_k: dict[int, float]
    labels: np.ndarray  # (n,) cluster index, 0 = the largest cluster
    distances: np.ndarray  # (n,) distance to the own centroid in standardized space
    feature_names: tuple[str, ...]
    clusters: tuple[ClusterSummary, ...]


def feature_phrase(name: str, *, high: bool) -> str | None:
    """The words for a feature being high (or low) in a cluster."""
    if name.startswith("category:"):
        return name.split(":", 1)[1] if high else None
    phrases = PHRASES.get(name, (None, None))
    return phrases[0] if high else phrases[1]


def feature_matrix(
    states: Iterable[Mapping], *, now: float, top_categories: int = TOP_CATEGORIES
) -> FeatureMatrix:
    """One row per feature state (`now` in epoch seconds). Category columns are each
    category's share of the customer's affinity, for the `top_categories` categories with
    the most affinity overall; channel and daypart columns are shares of the customer's
    events; recency and tenure are in days."""
    base: list[list[float]] = []
    affinities: list[Mapping[str, float]] = []
    totals: dict[str, float] = {}
    hour_parts = [(name, list(hours)) for name, hours in DAYPARTS.items()]
    for state in states:
        counts = state.get("counts") or {}
        orders = float(state.get("orders") or 0)
        revenue = float(state.get("revenue") or 0.0)
        sessions = float(state.get("sessions") or 0)
        last_seen = state.get("last_seen")
        first_seen = state.get("first_seen")
        channels = state.get("channels") or {}
        channel_total = sum(channels.values()) or 1
        hours = state.get("hours") or [0] * 24
        hour_total = sum(hours) or 1
        email = sum(counts.get(t, 0) for t in EMAIL_ENGAGEMENT_EVENTS)
        base.append(
            [
                max(0.0, (now - last_seen) / 86400.0) if last_seen is not None else 0.0,
                max(0.0, (now - first_seen) / 86400.0) if first_seen is not None else 0.0,
                orders,
                revenue,
                revenue / orders if orders else 0.0,
                sessions,
                orders / sessions if sessions else 0.0,
                email / sessions if sessions else float(email),
                *(sum(hours[h] for h in part) / hour_total for _, part in hour_parts),
                *(channels.get(c, 0) / channel_total for c in CHANNELS),
            ]
        )
        affinity = state.get("affinity") or {}
        affinity_total = sum(affinity.values())
        shares = {c: v / affinity_total for c, v in affinity.items()} if affinity_total else {}
        affinities.append(shares)
        for c, v in shares.items():
            totals[c] = totals.get(c, 0.0) + v
    categories = sorted(totals, key=lambda c: (-totals[c], c))[:top_categories]
    names = (
        "recency_days",
        "tenure_days",
        "orders",
        "revenue",
        "average_order_value",
        "sessions",
        "conversion",
        "email_engagement",
        *(f"daypart:{name}" for name in DAYPARTS),
        *(f"channel:{c}" for c in CHANNELS),
        *(f"category:{c}" for c in categories),
    )
    values = np.zeros((len(base), len(names)), dtype=np.float64)
    if base:
        values[:, : len(base[0])] = np.asarray(base, dtype=np.float64)
        offset = len(base[0])
        for j, c in enumerate(categories):
            values[:, offset + j] = [a.get(c, 0.0) for a in affinities]
    return FeatureMatrix(names=names, values=values)


def feature_matrix_select(matrix: FeatureMatrix, names: Sequence[str]) -> FeatureMatrix:
    """Only the columns in `names` (unknown names are an error)."""
    unknown = [n for n in names if n not in matrix.names]
    if unknown:
        raise ClusteringError(f"Unknown features: {', '.join(unknown)}.")
    idx = [matrix.names.index(n) for n in names]
    return FeatureMatrix(names=tuple(names), values=matrix.values[:, idx])


def feature_matrix_groups(matrix: FeatureMatrix, groups: Sequence[str]) -> FeatureMatrix:
    """Only the columns of the given FEATURE_GROUPS."""
    unknown = [g for g in groups if g not in FEATURE_GROUPS]
    if unknown or not groups:
        raise ClusteringError(f"Choose feature groups among {', '.join(FEATURE_GROUPS)}.")
    return feature_matrix_select(matrix, [n for n in matrix.names if feature_group(n) in groups])


def standardize(matrix: FeatureMatrix) -> np.ndarray:
    """log1p on the skewed columns, then zero mean and unit variance per column."""
    x = matrix.values.copy()
    for j, name in enumerate(matrix.names):
        if name in LOG_FEATURES:
            x[:, j] = np.log1p(np.clip(x[:, j], 0.0, None))
    return StandardScaler().fit_transform(x)


def k_range_check(*, k_min: int, k_max: int, k: int | None, n: int) -> list[int]:
    """The ks to try; raises ClusteringError for a range that cannot work on n rows."""
    ks = [k] if k is not None else list(range(k_min, k_max + 1))
    if not ks or min(ks) < 2 or max(ks) > MAX_K:
        raise ClusteringError(f"k must be between 2 and {MAX_K}, with k_min <= k_max.")
    if n <= min(ks):
        raise ClusteringError(f"{n} customers are too few to form {min(ks)} clusters.")
    return [k for k in ks if k < n]


def clusters_fit(
    matrix: FeatureMatrix,
    *,
    k_min: int = DEFAULT_K_MIN,
    k_max: int = DEFAULT_K_MAX,
    k: int | None = None,
    sample_size: int = SILHOUETTE_SAMPLE,
    progress: Callable[[int], None] | None = None,
) -> ClusteringResult:
    """Fit k-means for each k (or the fixed `k`) and keep the best silhouette.

    The silhouette is computed on a fixed random sample of at most `sample_size` customers,
    which keeps the choice fast on 100k customers. `progress(k)` is called before each fit.
    """
    n = matrix.values.shape[0]
    ks = k_range_check(k_min=k_min, k_max=k_max, k=k, n=n)
    z = standardize(matrix)
    distinct = len(np.unique(z, axis=0)) if n <= 50_000 else n
    scores: dict[int, float] = {}
    best: tuple[float, int, KMeans] | None = None
    for candidate in ks:
        if candidate >= distinct:
            continue
        if progress:
            progress(candidate)
        model = KMeans(n_clusters=candidate, n_init=N_INIT, random_state=RANDOM_STATE).fit(z)
        labels = model.labels_
        if len(np.unique(labels)) < 2:
            continue
        score = float(
            silhouette_score(z, labels, sample_size=min(n, sample_size), random_state=RANDOM_STATE)
        )
        scores[candidate] = round(score, 4)
        if best is None or score > best[0]:
            best = (score, candidate, model)
    if best is None:
        raise ClusteringError("The customers' features are too alike to form clusters.")
    score, chosen, model = best
    labels, centers = _relabel_by_size(model.labels_, model.cluster_centers_)
    distances = np.linalg.norm(z - centers[labels], axis=1)
    clusters = _summaries(matrix, labels, centers)
    return ClusteringResult(
        k=chosen,
        silhouette=round(score, 4),
        silhouette_by_k=scores,
        labels=labels,
        distances=distances,
        feature_names=matrix.names,
        clusters=clusters,
    )


def _relabel_by_size(labels: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sizes = np.bincount(labels, minlength=len(centers))
    order = np.lexsort((np.arange(len(centers)), -sizes))  # largest first, ties by index
    new_index = np.empty_like(order)
    new_index[order] = np.arange(len(order))
    return new_index[labels], centers[order]


def _summaries(
    matrix: FeatureMatrix, labels: np.ndarray, centers: np.ndarray
) -> tuple[ClusterSummary, ...]:
    n = len(labels)
    sizes = np.bincount(labels, minlength=len(centers))
    sums = np.zeros((len(centers), len(matrix.names)))
    np.add.at(sums, labels, matrix.values)
    means = sums / np.maximum(sizes, 1)[:, None]
    out = []
    for i, center in enumerate(centers):
        zscores = {name: round(float(v), 3) for name, v in zip(matrix.names, center, strict=True)}
        out.append(
            ClusterSummary(
                index=i,
                size=int(sizes[i]),
                share=round(float(sizes[i]) / n, 4) if n else 0.0,
                description=cluster_describe(zscores),
                centroid={
                    name: _round(float(v)) for name, v in zip(matrix.names, means[i], strict=True)
                },
                zscores=zscores,
            )
        )
    return tuple(out)


def _round(value: float) -> float:
    if value == 0 or not math.isfinite(value):
        return value
    digits = max(2, 3 - int(math.floor(math.log10(abs(value)))))
    return round(value, digits)


def cluster_describe(
    zscores: Mapping[str, float],
    *,
    threshold: float = DESCRIBE_THRESHOLD,
    terms: int = DESCRIBE_TERMS,
) -> str:
    """Plain words for a cluster: the phrases of its most distinguishing features, strongest
    first ("high spend, electronics, evening, email"), or "average customers"."""
    words: list[str] = []
    per_group: dict[str, int] = {}
    for name, z in sorted(zscores.items(), key=lambda kv: (-abs(kv[1]), kv[0])):
        if abs(z) < threshold or len(words) >= terms:
            break
        phrase = feature_phrase(name, high=z > 0)
        group = PHRASE_GROUPS.get(name, name)
        if not phrase or phrase in words or per_group.get(group, 0) >= PHRASES_PER_GROUP:
            continue
        per_group[group] = per_group.get(group, 0) + 1
        words.append(phrase)
    return ", ".join(words) or "average customers"
