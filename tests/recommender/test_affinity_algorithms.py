"""Pure affinity scoring and item expressions, on tiny arrays (no database)."""

import numpy as np
import pytest

from recommender.algorithms.affinity import (
    CannotScoreError,
    affinity_scores,
    aggregate_scores,
    can_score,
    mass_share,
    profile_share,
    rank_blend,
    select_top,
    user_scores,
)
from recommender.algorithms.als import AlsRecommender
from recommender.algorithms.hybrid import HybridRecommender
from recommender.algorithms.item_expression import ExpressionError, evaluate, parse
from recommender.algorithms.popularity import PopularityRecommender

FIELDS = ["category", "brand", "price", "in_stock", "color"]
ROWS = [
    {"category": "Action", "brand": "A", "price": 10.5, "in_stock": True, "color": ["red"]},
    {"category": "Drama", "brand": "B", "price": 25.0, "in_stock": False, "color": []},
    {"category": "action", "brand": "C", "price": None, "in_stock": True, "color": "blue"},
    {"category": "Comedy", "brand": "A", "price": 19.99, "in_stock": True},
]


def factor_model(user_factors, item_factors) -> AlsRecommender:
    return AlsRecommender.from_arrays(
        {"user_factors": np.array(user_factors), "item_factors": np.array(item_factors)}
    )


def popularity_model(scores) -> PopularityRecommender:
    return PopularityRecommender.from_arrays(
        {"item_scores": np.array(scores), "half_life_days": np.array(np.nan)}
    )


# items 0, 1: "action"; item 2: "drama"; user 0 likes action, user 1 drama, user 2 both a bit.
MODEL = factor_model([[1.0, 0.0], [0.0, 1.0], [0.5, 0.4]], [[1, 0], [0.8, 0], [0, 1]])


def test_user_scores_are_standardised_per_user():
    scores = user_scores(MODEL, np.array([0, 1]))
    np.testing.assert_allclose(scores.mean(axis=1), [0, 0], atol=1e-6)
    np.testing.assert_allclose(scores.std(axis=1), [1, 1], atol=1e-6)
    raw = user_scores(MODEL, np.array([0]), standardize=False)
    np.testing.assert_allclose(raw, [[1.0, 0.8, 0.0]], atol=1e-6)


def test_item_affinity_ranks_users_by_the_items_score():
    scores = affinity_scores(MODEL, np.array([2]), n_users=3, block_size=2)
    assert np.argsort(-scores).tolist() == [1, 2, 0]


def test_attribute_affinity_over_a_set_of_items_with_progress():
    calls = []
    scores = affinity_scores(
        MODEL, np.array([0, 1]), n_users=3, block_size=2, progress=lambda d, t: calls.append((d, t))
    )
    assert np.argsort(-scores).tolist() == [0, 2, 1]
    assert calls == [(2, 3), (3, 3)]


def test_hybrid_scores_keep_seen_items():
    """The served hybrid masks seen items; affinity must not (a past buyer is a likely buyer)."""
    import scipy.sparse as sp

    hybrid = HybridRecommender([(MODEL, 1.0)], fitted=True)
    hybrid.user_items = sp.csr_matrix(np.array([[1, 0, 0], [0, 0, 1], [0, 0, 0]], dtype=float))
    hybrid.n_items = 3
    raw = user_scores(hybrid, np.array([0]), standardize=False)
    np.testing.assert_allclose(raw, [[1.0, 0.8, 0.0]], atol=1e-6)
    assert hybrid.score_batch(np.array([0]))[0, 0] == 0.0  # the served blend hides it


def test_popularity_cannot_rank_users():
    popularity = popularity_model([3.0, 2.0, 1.0])
    assert can_score(popularity) is False
    assert can_score(MODEL) is True
    assert can_score(HybridRecommender([(popularity, 1.0), (MODEL, 1.0)], fitted=True)) is True
    with pytest.raises(CannotScoreError):
        affinity_scores(popularity, np.array([0]), n_users=3)


@pytest.mark.parametrize(
    ("aggregate", "expected"),
    [("max", [4.0, 3.0]), ("mean", [2.0, 2.0]), ("top_mean", [3.0, 2.5])],
)
def test_aggregates(aggregate, expected):
    block = np.array([[4.0, 2.0, 0.0], [3.0, 2.0, 1.0]])
    result = aggregate_scores(block, aggregate=aggregate, top_m=2)
    np.testing.assert_allclose(result, expected)


def test_mass_share_is_the_share_of_each_users_scores_on_the_targets():
    scores = np.array([[3.0, 1.0, 0.0], [30.0, 10.0, 60.0], [-1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    # a heavy user (row 1, ten times the scores) is not preferred for it; negative rows are
    # shifted to start at 0; a row without mass gets the targets' share of the items
    np.testing.assert_allclose(mass_share(scores, np.array([0, 1])), [1.0, 0.4, 2 / 3, 2 / 3])


def test_share_is_the_default_attribute_aggregate():
    # raw scores: user 0 [1, .8, 0], user 1 [0, 0, 1], user 2 [.5, .4, .4]
    scores = affinity_scores(MODEL, np.array([0, 1]), n_users=3)
    np.testing.assert_allclose(scores, [1.0, 0.0, 0.9 / 1.3])
    standardised = affinity_scores(MODEL, np.array([0, 1]), n_users=3, aggregate="top_mean")
    assert not np.allclose(standardised, scores)


def test_profile_share_is_smoothed_towards_the_even_share():
    shares = profile_share(
        np.array([10.0, 1.0, 0.0, 0.0]),
        np.array([10.0, 1.0, 0.0, 5.0]),
        n_categories=10,
        n_target_categories=2,
        prior=5.0,
    )
    # 10 of 10 events, 1 of 1 event, no events (the even share 2/10), 0 of 5 events
    np.testing.assert_allclose(shares, [11 / 15, 2 / 6, 0.2, 1 / 10])
    with pytest.raises(ValueError, match="target categories"):
        profile_share(np.zeros(1), np.zeros(1), n_categories=3, n_target_categories=4)


def test_rank_blend_averages_the_orders_not_the_scales():
    model = np.array([0.9, 0.5, 0.1, 0.2])
    profile = np.array([100.0, 0.0, 50.0, 50.0])
    blended = rank_blend(model, profile, weight_b=0.5)
    # ranks model [4, 3, 1, 2], profile [4, 1, 2.5, 2.5] -> [4, 2, 1.75, 2.25], scaled to [0, 1]
    np.testing.assert_allclose(blended, [1.0, 1 / 3, 0.25, 1.25 / 3])
    np.testing.assert_allclose(rank_blend(model, profile, weight_b=0.0), [1.0, 2 / 3, 0.0, 1 / 3])
    assert rank_blend(np.array([0.3]), np.array([1.0])).tolist() == [1.0]
    with pytest.raises(ValueError, match="one value per user"):
        rank_blend(np.zeros(2), np.zeros(3))


def test_unknown_aggregate_and_bad_targets_are_refused():
    with pytest.raises(ValueError, match="unknown aggregate"):
        aggregate_scores(np.ones((1, 2)), aggregate="median")
    with pytest.raises(ValueError, match="unknown aggregate"):
        affinity_scores(MODEL, np.array([0]), n_users=3, aggregate="median")
    with pytest.raises(ValueError, match="out of range"):
        affinity_scores(MODEL, np.array([3]), n_users=3)
    with pytest.raises(ValueError, match="no target items"):
        affinity_scores(MODEL, np.array([], dtype=np.int64), n_users=3)


def test_select_top_n_and_percent():
    scores = np.array([0.1, 0.9, np.nan, 0.5, 0.9])
    top = select_top(scores, top_n=3)
    assert top.users.tolist() == [1, 4, 3]
    assert top.scores.tolist() == [0.9, 0.9, 0.5]
    assert top.scored == 4
    assert select_top(scores, top_percent=50).users.tolist() == [1, 4]
    assert select_top(scores, top_percent=10).users.tolist() == [1]
    assert select_top(scores, top_n=10).users.tolist() == [1, 4, 3, 0]
    with pytest.raises(ValueError, match="exactly one"):
        select_top(scores, top_n=1, top_percent=5)
    with pytest.raises(ValueError, match="top_percent"):
        select_top(scores, top_percent=0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('category = "action"', [True, False, True, False]),
        ("brand in ('A', \"B\")", [True, True, False, True]),
        ("price < 20", [True, False, False, True]),
        ("price >= 19.99 and in_stock = true", [False, False, False, True]),
        ('(brand = "A" or brand = "C") and not category = "Comedy"', [True, False, True, False]),
        ('color = "red" OR color = "BLUE"', [True, False, True, False]),
        ('brand not in ("A")', [False, True, True, False]),
        ('color != "red"', [False, True, True, True]),
    ],
)
def test_expressions_select_items(text, expected):
    assert evaluate(parse(text, fields=FIELDS), ROWS).tolist() == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('categry = "a"', "Unknown field 'categry'; known fields: brand, category, color, "
         "in_stock, price (at position 1)"),
        ("category = ", "Expected a value, found the end (at position 12)"),
        ('category = "a', "Unterminated text value (at position 12)"),
        ('price < "x"', "'price' is a number (at position 9)"),
        ('brand < "x"', "'<' compares numbers (at position 9)"),
        ('(brand = "A"', "Expected ')', found the end (at position 13)"),
        ('brand in "A"', "Expected '(' after 'in', found '\"A\"' (at position 10)"),
        ('brand = "A" brand', "Expected 'and', 'or' or the end, found 'brand' (at position 13)"),
        ("brand ~ 1", "Unexpected character '~' (at position 7)"),
        ("   ", 'Enter an expression, e.g. category = "books"'),
    ],
)  # fmt: skip
def test_expression_errors_name_the_position(text, message):
    with pytest.raises(ExpressionError) as caught:
        parse(text, fields=FIELDS)
    assert str(caught.value).startswith(message)
