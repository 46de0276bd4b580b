"""The Django-free recommender core: data, models, metrics and evaluate_recommender.

None of these tests requests the `db` fixture, so pytest-django blocks every database query:
the evaluation command touching the database would fail here.
"""

import io
import json

import numpy as np
import pytest
import scipy.sparse as sp
from django.core.management import call_command

from recommender.algorithms.als import AlsRecommender
from recommender.algorithms.base import CatalogTooLarge, Recommender, top_k
from recommender.algorithms.bpr import BprRecommender
from recommender.algorithms.content import ContentRecommender
from recommender.algorithms.data import (
    InteractionData,
    Interactions,
    ItemFeatures,
    event_weights,
    read_interactions_csv,
    stratified_split,
    time_split,
)
from recommender.algorithms.ease import EaseRecommender
from recommender.algorithms.evaluation import ModelSpec, evaluate, evaluate_time_holdout
from recommender.algorithms.hybrid import HybridRecommender, model_from_arrays
from recommender.algorithms.itemknn import ItemKnnRecommender
from recommender.algorithms.metrics import (
    catalog_coverage,
    intra_list_diversity,
    novelty,
    ranking_metrics,
)
from recommender.algorithms.popularity import PopularityRecommender, TrendingRecommender

N_USERS, N_ITEMS, PER_USER = 40, 20, 6  # users 0-19 like items 0-9, users 20-39 items 10-19
DAY = 86_400.0


def planted() -> Interactions:
    rng = np.random.default_rng(0)
    users, items, times = [], [], []
    for u in range(N_USERS):
        base = 0 if u < N_USERS // 2 else N_ITEMS // 2
        for j, item in enumerate(rng.choice(N_ITEMS // 2, PER_USER, replace=False)):
            users.append(f"u{u:02d}")
            items.append(f"i{base + item:02d}")
            times.append(1_700_000_000 + j * DAY)
    return Interactions.from_columns(user_ids=users, item_ids=items, timestamps=times)


def features() -> ItemFeatures:
    ids = [f"i{i:02d}" for i in range(N_ITEMS)] + ["i99"]
    texts = [f"{'alpha' if i < 10 else 'beta'} gadget model{i}" for i in range(N_ITEMS)]
    return ItemFeatures(item_ids=np.array(ids, dtype=object), texts=[*texts, "alpha novelty"])


MODELS = {
    "popularity": PopularityRecommender,
    "trending": TrendingRecommender,
    "als": lambda: AlsRecommender(factors=2, regularization=0.1, iterations=10, num_threads=1),
    "bpr": lambda: BprRecommender(factors=4, learning_rate=0.05, iterations=200, num_threads=1),
    "itemknn": ItemKnnRecommender,
    "ease": lambda: EaseRecommender(l2=10.0),
    "content": ContentRecommender,
    "hybrid": lambda: HybridRecommender(
        [(EaseRecommender(l2=10.0), 0.6), (ItemKnnRecommender(), 0.3), (ContentRecommender(), 0.1)]
    ),
}
PERSONAL = [name for name in MODELS if name not in {"popularity", "trending"}]


def fit(name: str) -> tuple[Recommender, InteractionData]:
    data = InteractionData.from_interactions(planted(), extra_item_ids=features().item_ids)
    return MODELS[name]().fit(data, features()), data


def group_of(item_ids: np.ndarray) -> set[str]:
    return {"a" if int(i[1:]) < 10 else ("new" if int(i[1:]) == 99 else "b") for i in item_ids}


@pytest.mark.parametrize("name", PERSONAL)
def test_model_recommends_unseen_items_from_the_users_group(name):
    model, data = fit(name)
    users = data.encode_users(["u00", "u05", "u25", "u39"])
    recs, scores = model.recommend(users, 3, exclude=data.matrix)
    for row, user, expected in zip(recs, users, ["a", "a", "b", "b"], strict=True):
        assert group_of(data.item_ids[row]) == {expected}
        assert set(row) & set(data.matrix[user].indices) == set()
    assert np.all(np.diff(scores, axis=1) <= 0)


@pytest.mark.parametrize("name", list(MODELS))
def test_model_is_deterministic_and_round_trips_through_arrays(name):
    first, data = fit(name)
    second, _ = fit(name)
    users = np.arange(data.n_users)
    recs, scores = first.recommend(users, 5, exclude=data.matrix)
    again, _ = second.recommend(users, 5, exclude=data.matrix)
    assert np.array_equal(recs, again)
    arrays = first.to_arrays()
    assert all(isinstance(v, np.ndarray) for v in arrays.values())
    restored = model_from_arrays(first.name, arrays)
    restored_recs, restored_scores = restored.recommend(users, 5, exclude=data.matrix)
    assert np.array_equal(restored_recs, recs)
    assert np.allclose(restored_scores, scores)


def test_popularity_ranks_by_users_and_trending_by_recency():
    inter = Interactions.from_columns(
        user_ids=["a", "b", "c", "a", "b"],
        item_ids=["old", "old", "old", "new", "new"],
        event_types=["view"] * 5,
        timestamps=[0, 0, 0, 30 * DAY, 30 * DAY],
    )
    data = InteractionData.from_interactions(inter)
    assert list(data.item_ids) == ["new", "old"]
    pop = PopularityRecommender().fit(data)
    assert pop.item_scores.tolist() == [2.0, 3.0]
    trend = TrendingRecommender(half_life_days=10.0).fit(data)
    assert trend.item_scores.tolist() == pytest.approx([2.0, 3.0 / 8.0])
    assert pop.recommend(np.array([0]), 2)[0].tolist() == [[1, 0]]
    assert trend.recommend(np.array([0]), 2)[0].tolist() == [[0, 1]]


def test_content_recommends_a_new_item_nobody_has_seen():
    model, data = fit("content")
    new = data.item_index["i99"]
    assert data.matrix[:, new].nnz == 0
    user = data.encode_users(["u00"])
    recs, _ = model.recommend(user, N_ITEMS, exclude=data.matrix)
    assert new in recs[0]
    similar, _ = model.similar_items(np.array([new]), 3)
    assert group_of(data.item_ids[similar[0]]) == {"a"}


@pytest.mark.parametrize("name", ["als", "itemknn", "ease", "content"])
def test_similar_items_stay_in_the_group_and_exclude_the_item(name):
    model, data = fit(name)
    items = data.encode_items(["i01", "i15"])
    similar, _ = model.similar_items(items, 3)
    assert group_of(data.item_ids[similar[0]]) == {"a"}
    assert group_of(data.item_ids[similar[1]]) == {"b"}
    assert items[0] not in similar[0]
    assert items[1] not in similar[1]


def test_itemknn_keeps_at_most_the_requested_neighbours():
    data = InteractionData.from_interactions(planted())
    model = ItemKnnRecommender(neighbours=3).fit(data)
    assert np.diff(model.similarity.indptr).max() == 3
    assert model.similarity.diagonal().sum() == 0


def test_ease_refuses_a_catalog_above_its_limit():
    data = InteractionData.from_interactions(planted())
    with pytest.raises(CatalogTooLarge):
        EaseRecommender(max_items=10).fit(data)


def test_event_weights_by_type_then_value_then_one():
    weights = event_weights(
        np.array(["view", "purchase", "add_to_cart", "rating", "", "click"], dtype=object),
        np.array([9.0, 2.0, np.nan, 4.0, np.nan, np.nan]),
    )
    assert weights.tolist() == [1.0, 5.0, 3.0, 4.0, 1.0, 1.0]


def test_interaction_data_sums_weights_and_decays_with_half_life():
    inter = Interactions.from_columns(
        user_ids=["x", "x", "y"],
        item_ids=["p", "p", "q"],
        event_types=["view", "purchase", "add_to_cart"],
        timestamps=[0.0, 7 * DAY, 14 * DAY],
    )
    plain = InteractionData.from_interactions(inter)
    assert plain.matrix.toarray().tolist() == [[6.0, 0.0], [0.0, 3.0]]
    decayed = InteractionData.from_interactions(inter, half_life_days=7.0)
    assert decayed.matrix.toarray() == pytest.approx(np.array([[0.25 + 2.5, 0.0], [0.0, 3.0]]))
    custom = InteractionData.from_interactions(inter, type_weights={"purchase": 10.0})
    assert custom.matrix.toarray().tolist() == [[11.0, 0.0], [0.0, 1.0]]
    assert custom.encode_users(["y", "zz"]).tolist() == [1, -1]


def test_stratified_split_puts_round_ratio_of_each_user_in_train():
    inter = planted()
    train, test = stratified_split(inter, ratio=0.75, seed=42)
    assert len(train) == N_USERS * 4
    assert len(test) == N_USERS * 2
    again, _ = stratified_split(inter, ratio=0.75, seed=42)
    assert np.array_equal(train.item_ids, again.item_ids)
    pairs = {(u, i) for u, i in zip(train.user_ids, train.item_ids, strict=True)}
    assert not pairs & {(u, i) for u, i in zip(test.user_ids, test.item_ids, strict=True)}


def test_time_split_keeps_each_users_latest_events_for_test():
    inter = Interactions.from_columns(
        user_ids=["a"] * 5 + ["b"], item_ids=list("vwxyzq"), timestamps=[5, 1, 4, 2, 3, 9]
    )
    train, test = time_split(inter, test_ratio=0.4)
    assert sorted(test.item_ids) == ["v", "x"]
    assert sorted(train.item_ids) == ["q", "w", "y", "z"]


def test_ranking_metrics_on_a_hand_computed_case():
    recs = np.array([[1, 2, 3], [4, 5, 6], [7, -1, -1]])
    truth = sp.csr_matrix(([1, 1, 1, 1], ([0, 0, 1, 2], [2, 9, 7, 7])), shape=(3, 10))
    got = ranking_metrics(recs, truth, 3)
    # user 0: one hit at rank 2 of 2 relevant; user 1: none; user 2: hit at rank 1 of 1.
    ndcg0 = (1 / np.log2(3)) / (1 + 1 / np.log2(3))
    assert got == pytest.approx(
        {
            "precision@3": (1 / 3 + 0 + 1 / 3) / 3,
            "recall@3": (1 / 2 + 0 + 1) / 3,
            "map@3": ((1 / 2) / 2 + 0 + 1) / 3,
            "ndcg@3": (ndcg0 + 0 + 1) / 3,
        }
    )
    with_outside_items = ranking_metrics(recs, truth, 3, n_relevant=np.array([4, 1, 1]))
    assert with_outside_items["recall@3"] == pytest.approx((1 / 4 + 0 + 1) / 3)


def test_coverage_novelty_and_diversity():
    recs = np.array([[0, 1], [1, 2]])
    assert catalog_coverage(recs, 6) == 0.5
    share = np.array([0.5, 0.25, 1.0, 0.0, 0.0, 0.0])
    assert novelty(recs, share) == pytest.approx((1 + 2 + 2 + 0) / 4)
    vectors = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert intra_list_diversity(recs, vectors) == pytest.approx((0.0 + 1.0) / 2)


def test_top_k_breaks_ties_by_lower_index():
    idx, vals = top_k(np.array([[1.0, 3.0, 3.0, 2.0]]), 3)
    assert idx.tolist() == [[1, 2, 3]]
    assert vals.tolist() == [[3.0, 3.0, 2.0]]


def write_csv(path, rows):
    path.write_text(
        "USER_ID,ITEM_ID,EVENT_VALUE,EVENT_TYPE,TIMESTAMP\n"
        + "".join(",".join(str(c) for c in row) + "\n" for row in rows)
    )


def test_read_interactions_csv_allows_empty_type_and_value(tmp_path):
    path = tmp_path / "i.csv"
    write_csv(path, [("u1", "i1", "", "", 10), ("u1", "i2", 4.5, "purchase", 20)])
    got = read_interactions_csv(path)
    assert got.user_ids.tolist() == ["u1", "u1"]
    assert got.event_types.tolist() == ["", "purchase"]
    assert np.isnan(got.values[0])
    assert got.values[1] == 4.5
    assert got.timestamps.tolist() == [10.0, 20.0]


def test_evaluate_recommender_prints_json_for_every_model_without_the_database(tmp_path):
    inter = planted()
    train, test = stratified_split(inter, ratio=0.75, seed=1)
    for name, part in (("train", train), ("test", test)):
        rows = zip(part.user_ids, part.item_ids, ["1"] * len(part), ["view"] * len(part),
                   part.timestamps.astype(int), strict=True)  # fmt: skip
        write_csv(tmp_path / f"{name}.csv", rows)
    (tmp_path / "items.csv").write_text(
        "ITEM_ID,TITLE,CATEGORY\n"
        + "".join(
            f"{i},{t.split()[1]} {t.split()[2]},{t.split()[0]}\n"
            for i, t in zip(features().item_ids, features().texts[:-1], strict=False)
        )
    )
    out = io.StringIO()
    call_command(
        "evaluate_recommender",
        "--train", str(tmp_path / "train.csv"),
        "--test", str(tmp_path / "test.csv"),
        "--items", str(tmp_path / "items.csv"),
        "--k", "3",
        "--json",
        stdout=out,
    )  # fmt: skip
    result = json.loads(out.getvalue().strip().splitlines()[-1])
    assert list(result) == [
        "popularity", "trending", "als_default", "als", "bpr", "itemknn", "ease", "content",
        "hybrid",
    ]  # fmt: skip
    for metrics in result.values():
        assert {"precision@3", "recall@3", "map@3", "ndcg@3", "coverage", "train_seconds"} <= set(
            metrics
        )
        assert 0.0 <= metrics["ndcg@3"] <= 1.0
    assert result["ease"]["precision@3"] > result["popularity"]["precision@3"]


def test_time_holdout_evaluation_scores_the_latest_events():
    result = evaluate_time_holdout(
        planted(),
        test_ratio=0.34,
        k=3,
        specs=[ModelSpec("ease", lambda: EaseRecommender(l2=10.0))],
        hybrid=False,
    )
    assert result.n_train == N_USERS * 4
    assert result.n_users == N_USERS
    assert list(result.results) == ["ease"]
    # Closed form, so exact; in-group guessing among 6 unseen items with 2 relevant gives 1/3.
    assert result.results["ease"]["precision@3"] == pytest.approx(7 / 24)


def test_users_unknown_to_training_get_the_popularity_ranking_from_every_model():
    test = Interactions.from_columns(user_ids=["newcomer", "newcomer"], item_ids=["i03", "i77"])
    result = evaluate(
        train=planted(),
        test=test,
        k=5,
        specs=[
            ModelSpec("popularity", PopularityRecommender),
            ModelSpec("ease", lambda: EaseRecommender(l2=10.0)),
        ],
        hybrid=False,
    )
    assert result.n_users == 1
    assert result.results["ease"]["ndcg@5"] == result.results["popularity"]["ndcg@5"]
    # i03 is third in the popularity ranking; i77 is outside the catalog but still relevant.
    assert result.results["ease"]["precision@5"] == pytest.approx(1 / 5)
    assert result.results["ease"]["recall@5"] == pytest.approx(1 / 2)
    assert result.results["ease"]["map@5"] == pytest.approx((1 / 3) / 2)
