"""k-means customer clusters on small synthetic data whose clusters are known."""

import numpy as np
import pytest

from profiles.features import features_empty
from profiles.segments.clustering import (
    ClusteringError,
    FeatureMatrix,
    cluster_describe,
    clusters_fit,
    feature_matrix,
    feature_matrix_groups,
    feature_matrix_select,
)

DAY = 86400.0
NOW = 1_800_000_000.0


def _blobs(centers: list[list[float]], per: int = 60, seed: int = 1) -> FeatureMatrix:
    rng = np.random.default_rng(seed)
    rows = [rng.normal(c, 0.05, size=(per, len(c))) for c in centers]
    names = tuple(f"category:c{j}" for j in range(len(centers[0])))
    return FeatureMatrix(names=names, values=np.vstack(rows))


@pytest.mark.parametrize("true_k", [2, 3, 4, 5])
def test_silhouette_picks_the_true_k_on_well_separated_blobs(true_k):
    corners = np.eye(true_k) * 10
    matrix = _blobs(corners.tolist())

    result = clusters_fit(matrix, k_min=2, k_max=8)

    assert result.k == true_k
    assert set(result.silhouette_by_k) == set(range(2, 9))
    assert result.silhouette == max(result.silhouette_by_k.values())
    assert result.silhouette > 0.9
    assert [c.size for c in result.clusters] == [60] * true_k
    # Every blob lands in exactly one cluster.
    blobs = np.repeat(np.arange(true_k), 60)
    assert len({(b, label) for b, label in zip(blobs, result.labels, strict=True)}) == true_k


def test_fixed_k_fits_only_that_k():
    matrix = _blobs([[0, 0], [10, 0], [0, 10]])

    calls = []
    result = clusters_fit(matrix, k=2, progress=calls.append)

    assert calls == [2]
    assert result.k == 2
    assert list(result.silhouette_by_k) == [2]


def test_clusters_are_numbered_largest_first_with_sizes_shares_and_distances():
    rng = np.random.default_rng(3)
    values = np.vstack([rng.normal(0, 0.1, (30, 2)), rng.normal(5, 0.1, (90, 2))])
    matrix = FeatureMatrix(names=("orders", "sessions"), values=values)

    result = clusters_fit(matrix, k=2)

    assert [(c.index, c.size, c.share) for c in result.clusters] == [(0, 90, 0.75), (1, 30, 0.25)]
    assert (result.labels[:30] == 1).all()
    assert (result.labels[30:] == 0).all()
    assert result.distances.shape == (120,)
    assert (result.distances >= 0).all()
    assert result.clusters[0].centroid["orders"] == pytest.approx(values[30:, 0].mean(), abs=0.01)
    assert result.clusters[1].centroid["orders"] == pytest.approx(values[:30, 0].mean(), abs=0.01)


def test_descriptions_name_the_distinguishing_features():
    rng = np.random.default_rng(7)
    n = 100
    # Cluster A: big spenders on electronics in the evening; cluster B: lapsed, rare buyers.
    a = np.column_stack(
        [
            rng.normal(2, 1, n),  # recency_days
            rng.normal(2000, 50, n),  # revenue
            rng.normal(0.9, 0.02, n),  # category:electronics
            rng.normal(0.9, 0.02, n),  # daypart:evening
        ]
    )
    b = np.column_stack(
        [
            rng.normal(200, 5, n),
            rng.normal(5, 1, n),
            rng.normal(0.1, 0.02, n),
            rng.normal(0.1, 0.02, n),
        ]
    )
    names = ("recency_days", "revenue", "category:electronics", "daypart:evening")
    result = clusters_fit(FeatureMatrix(names=names, values=np.vstack([a, b])), k=2)

    by_spend = sorted(result.clusters, key=lambda c: -c.centroid["revenue"])
    high, low = by_spend
    assert set(high.description.split(", ")) == {
        "high spend",
        "electronics",
        "evening",
        "recently active",
    }
    assert set(low.description.split(", ")) == {"lapsed", "low spend"}
    assert high.zscores["revenue"] == pytest.approx(1.0, abs=0.01)


def test_describe_orders_by_strength_skips_small_and_unspoken_deviations():
    zscores = {
        "revenue": 1.5,
        "category:books": 2.5,
        "daypart:morning": -3.0,  # low share of a daypart says nothing
        "sessions": -0.8,
        "orders": 0.2,
    }
    assert cluster_describe(zscores) == "books, high spend, few visits"
    assert cluster_describe({"orders": 0.1}) == "average customers"
    assert cluster_describe(zscores, terms=1) == "books"


def test_describe_names_at_most_two_of_the_spending_features():
    zscores = {
        "revenue": 2.0,
        "orders": 1.9,
        "average_order_value": 1.8,
        "conversion": 1.7,
        "category:toys": 0.9,
    }
    assert cluster_describe(zscores) == "high spend, frequent buyers, toys"


def _state(**kw):
    s = features_empty()
    s.update(kw)
    return s


def test_feature_matrix_from_feature_states():
    hours = [0] * 24
    hours[20] = 3
    hours[9] = 1
    states = [
        _state(
            orders=2,
            revenue=150.0,
            sessions=4,
            first_seen=NOW - 30 * DAY,
            last_seen=NOW - 2 * DAY,
            counts={"view": 10, "purchase": 2, "email_open": 2, "email_click": 2},
            channels={"web": 3, "email": 1},
            hours=hours,
            affinity={"electronics": 3.0, "books": 1.0},
        ),
        _state(),  # no events at all
    ]

    matrix = feature_matrix(states, now=NOW)

    assert matrix.names[:8] == (
        "recency_days",
        "tenure_days",
        "orders",
        "revenue",
        "average_order_value",
        "sessions",
        "conversion",
        "email_engagement",
    )
    assert matrix.names[-2:] == ("category:electronics", "category:books")
    row = dict(zip(matrix.names, matrix.values[0].tolist(), strict=True))
    assert row == {
        "recency_days": 2.0,
        "tenure_days": 30.0,
        "orders": 2.0,
        "revenue": 150.0,
        "average_order_value": 75.0,
        "sessions": 4.0,
        "conversion": 0.5,
        "email_engagement": 1.0,
        "daypart:night": 0.0,
        "daypart:morning": 0.25,
        "daypart:afternoon": 0.0,
        "daypart:evening": 0.75,
        "channel:web": 0.75,
        "channel:app": 0.0,
        "channel:email": 0.25,
        "channel:sms": 0.0,
        "channel:push": 0.0,
        "category:electronics": 0.75,
        "category:books": 0.25,
    }
    assert matrix.values[1].tolist() == [0.0] * len(matrix.names)


def test_feature_matrix_keeps_the_top_categories():
    states = [_state(affinity={"a": 1.0, "b": 2.0, "c": 5.0}), _state(affinity={"b": 1.0})]

    matrix = feature_matrix(states, now=NOW, top_categories=2)

    assert matrix.names[-2:] == ("category:b", "category:c")
    assert feature_matrix_select(matrix, ["orders", "category:c"]).values.tolist() == [
        [0.0, 0.625],
        [0.0, 0.0],
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 1}, "k must be between 2 and 20"),
        ({"k": 21}, "k must be between 2 and 20"),
        ({"k_min": 5, "k_max": 3}, "k must be between 2 and 20"),
        ({"k": 10}, "10 customers are too few to form 10 clusters."),
    ],
)
def test_bad_k_is_a_clear_error(kwargs, message):
    matrix = FeatureMatrix(names=("orders",), values=np.arange(10.0)[:, None])
    with pytest.raises(ClusteringError, match=message):
        clusters_fit(matrix, **kwargs)


def test_identical_customers_cannot_be_clustered():
    matrix = FeatureMatrix(names=("orders",), values=np.ones((20, 1)))
    with pytest.raises(ClusteringError, match="too alike"):
        clusters_fit(matrix)


def test_unknown_feature_selection_is_an_error():
    matrix = FeatureMatrix(names=("orders",), values=np.ones((2, 1)))
    with pytest.raises(ClusteringError, match="Unknown features: nope."):
        feature_matrix_select(matrix, ["nope"])


def test_feature_groups_keep_only_their_columns():
    matrix = feature_matrix([_state(affinity={"books": 1.0})], now=NOW)

    assert feature_matrix_groups(matrix, ["categories", "dayparts"]).names == (
        "daypart:night",
        "daypart:morning",
        "daypart:afternoon",
        "daypart:evening",
        "category:books",
    )
    assert feature_matrix_groups(matrix, ["value"]).names == matrix.names[:8]
    with pytest.raises(ClusteringError, match="Choose feature groups among value, categories"):
        feature_matrix_groups(matrix, ["colour"])
    with pytest.raises(ClusteringError, match="Choose feature groups"):
        feature_matrix_groups(matrix, [])
