"""Offline ranking metrics, vectorised over users.

Definitions follow Microsoft Recommenders' python_evaluation (binary relevance), averaged over
the users that have at least one relevant (test) item:

- precision@k = hits in the top k / k (k, not the list length, even if fewer were returned)
- recall@k    = hits / |relevant|
- MAP@k       = (sum over hit ranks r of precision@r) / min(|relevant|, k)  (Recommenders >= 1.2;
                older releases divided by |relevant|, which gives lower numbers)
- NDCG@k      = DCG / IDCG, DCG = sum over hits of 1 / log2(rank + 1), IDCG the DCG of
                min(|relevant|, k) hits at the top
- catalog coverage = distinct recommended items / catalog size
- novelty     = mean over recommended items of -log2(share of training users who had the item)
- intra-list diversity = mean over users of 1 - mean pairwise cosine similarity in the list

`recs` is an int array [n_users, k] of item indexes, -1 marking empty slots.
"""

import numpy as np
import scipy.sparse as sp


def hit_matrix(recs: np.ndarray, truth: sp.csr_matrix) -> np.ndarray:
    """hits[u, r] is True when recs[u, r] is a relevant item of row u of `truth`."""
    n, k = recs.shape
    if n == 0 or k == 0:
        return np.zeros((n, k), dtype=bool)
    rows = np.repeat(np.arange(n), k)
    cols = recs.ravel()
    valid = cols >= 0
    hits = np.zeros(n * k, dtype=bool)
    if valid.any():
        hits[valid] = np.asarray(truth[rows[valid], cols[valid]]).ravel() > 0
    return hits.reshape(n, k)


def precision_at_k(hits: np.ndarray, k: int) -> float:
    return float((hits[:, :k].sum(axis=1) / k).mean()) if len(hits) else 0.0


def recall_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> float:
    return float((hits[:, :k].sum(axis=1) / n_relevant).mean()) if len(hits) else 0.0


def map_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> float:
    if not len(hits):
        return 0.0
    h = hits[:, :k].astype(np.float64)
    precision_at_rank = np.cumsum(h, axis=1) / np.arange(1, h.shape[1] + 1)
    ap = (precision_at_rank * h).sum(axis=1) / np.minimum(n_relevant, k)
    return float(ap.mean())


def ndcg_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> float:
    if not len(hits):
        return 0.0
    h = hits[:, :k].astype(np.float64)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (h * discounts[: h.shape[1]]).sum(axis=1)
    idcg = np.cumsum(discounts)[np.minimum(n_relevant, k) - 1]
    return float((dcg / idcg).mean())


def catalog_coverage(recs: np.ndarray, n_items: int) -> float:
    if n_items == 0:
        return 0.0
    return float(len(np.unique(recs[recs >= 0])) / n_items)


def novelty(recs: np.ndarray, item_user_share: np.ndarray) -> float:
    """Mean self-information of the recommended items; items nobody had count as 1/n_users
    would be infinite, so shares are floored at the smallest positive share."""
    items = recs[recs >= 0]
    if not len(items):
        return 0.0
    positive = item_user_share[item_user_share > 0]
    floor = positive.min() if len(positive) else 1.0
    return float(-np.log2(np.maximum(item_user_share[items], floor)).mean())


def intra_list_diversity(recs: np.ndarray, item_vectors: np.ndarray | sp.spmatrix) -> float:
    """1 - mean pairwise cosine similarity within each list, averaged over users."""
    if recs.shape[1] < 2:
        return 0.0
    vectors = sp.csr_matrix(item_vectors, dtype=np.float64)
    norms = np.sqrt(np.asarray(vectors.multiply(vectors).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    vectors = sp.diags(1.0 / norms) @ vectors
    out = []
    for row in recs:
        items = row[row >= 0]
        m = len(items)
        if m < 2:
            continue
        v = vectors[items]
        sim = (v @ v.T).toarray()
        out.append(1.0 - (sim.sum() - np.trace(sim)) / (m * (m - 1)))
    return float(np.mean(out)) if out else 0.0


def ranking_metrics(
    recs: np.ndarray, truth: sp.csr_matrix, k: int, *, n_relevant: np.ndarray | None = None
) -> dict[str, float]:
    """precision/recall/map/ndcg @k over the rows of `truth` that have relevant items.

    `n_relevant` overrides |relevant| per row (relevant items outside the catalog still count
    in recall's denominator, as in Recommenders)."""
    n_rel = np.diff(truth.indptr) if n_relevant is None else np.asarray(n_relevant)
    keep = n_rel > 0
    hits = hit_matrix(recs[keep], truth[keep])
    n_rel = n_rel[keep]
    return {
        f"precision@{k}": precision_at_k(hits, k),
        f"recall@{k}": recall_at_k(hits, n_rel, k),
        f"map@{k}": map_at_k(hits, n_rel, k),
        f"ndcg@{k}": ndcg_at_k(hits, n_rel, k),
    }
