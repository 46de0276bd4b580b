"""Interaction data for the recommenders: reading, weighting, indexing and splitting.

Everything here works on parallel numpy arrays (one row per event) so it runs the same on a
CSV file, on rows streamed out of PostgreSQL and on the simulated store. No Django.
"""

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

# How much one event of each type says about liking an item. "rating" and unknown types use
# EVENT_VALUE when it is present, else 1 (see `event_weights`). Callers pass their own mapping
# to change them (the `type_weights` argument); a weight of 0 ignores the type.
DEFAULT_TYPE_WEIGHTS: dict[str, float] = {
    "view": 1.0,
    "click": 1.0,
    "offer_click": 1.0,
    "add_to_cart": 3.0,
    "purchase": 5.0,
    "offer_shown": 0.0,  # an impression says nothing about liking; weight 0 drops the event
}
SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True, eq=False)
class Interactions:
    """Parallel columns, one row per event; ids are strings, timestamps epoch seconds."""

    user_ids: np.ndarray
    item_ids: np.ndarray
    event_types: np.ndarray
    values: np.ndarray  # float64, NaN where EVENT_VALUE was empty
    timestamps: np.ndarray  # float64 epoch seconds

    def __len__(self) -> int:
        return len(self.user_ids)

    @classmethod
    def from_columns(
        cls,
        *,
        user_ids: Sequence | np.ndarray,
        item_ids: Sequence | np.ndarray,
        event_types: Sequence | np.ndarray | None = None,
        values: Sequence | np.ndarray | None = None,
        timestamps: Sequence | np.ndarray | None = None,
    ) -> "Interactions":
        users = np.asarray(user_ids).astype(str).astype(object)
        n = len(users)
        return cls(
            user_ids=users,
            item_ids=np.asarray(item_ids).astype(str).astype(object),
            event_types=(
                np.full(n, "", dtype=object)
                if event_types is None
                else np.asarray(event_types).astype(str).astype(object)
            ),
            values=(np.full(n, np.nan) if values is None else np.asarray(values, dtype=np.float64)),
            timestamps=(
                np.zeros(n) if timestamps is None else np.asarray(timestamps, dtype=np.float64)
            ),
        )

    def take(self, mask_or_index: np.ndarray) -> "Interactions":
        return Interactions(
            user_ids=self.user_ids[mask_or_index],
            item_ids=self.item_ids[mask_or_index],
            event_types=self.event_types[mask_or_index],
            values=self.values[mask_or_index],
            timestamps=self.timestamps[mask_or_index],
        )


def read_interactions_csv(path: str | Path) -> Interactions:
    """Read Amazon Personalize's interactions format.

    Columns are found by header name (case-insensitive): USER_ID, ITEM_ID and TIMESTAMP are
    required, EVENT_TYPE and EVENT_VALUE are optional and may be empty.
    """
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = [h.strip().upper() for h in next(reader)]
        rows = list(reader)
    missing = {"USER_ID", "ITEM_ID", "TIMESTAMP"} - set(header)
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
    rows = [r for r in rows if r]
    cols = list(zip(*rows, strict=True)) if rows else [()] * len(header)

    def col(name: str) -> np.ndarray | None:
        return np.array(cols[header.index(name)], dtype=object) if name in header else None

    values = col("EVENT_VALUE")
    if values is not None:
        values = np.array([float(v) if v.strip() else np.nan for v in values], dtype=np.float64)
    ts = col("TIMESTAMP")
    assert ts is not None  # noqa: S101  (checked above)
    return Interactions.from_columns(
        user_ids=col("USER_ID"),  # type: ignore[arg-type]
        item_ids=col("ITEM_ID"),  # type: ignore[arg-type]
        event_types=col("EVENT_TYPE"),
        values=values,
        timestamps=np.array([float(t) for t in ts], dtype=np.float64),
    )


@dataclass(frozen=True, eq=False)
class ItemFeatures:
    """Item metadata for the content model: one text per item (title, category, brand ...)."""

    item_ids: np.ndarray
    texts: list[str]


def read_items_csv(path: str | Path) -> ItemFeatures:
    """Read Personalize's items format: ITEM_ID plus any columns.

    Every other column becomes text; `|`-separated categorical values (Personalize's
    convention for multi-valued fields) become separate tokens, and short values also get a
    `column=value` token so "brand=acme" does not match the word "acme" in a title.
    """
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        ids, texts = [], []
        for row in reader:
            norm = {k.strip().upper(): (v or "").strip() for k, v in row.items() if k}
            ids.append(norm.pop("ITEM_ID"))
            texts.append(item_text(norm))
    return ItemFeatures(item_ids=np.array(ids, dtype=object), texts=texts)


def item_text(attributes: Mapping[str, str]) -> str:
    words = []
    for key, value in attributes.items():
        if not value or key in {"CREATION_TIMESTAMP", "TIMESTAMP"}:
            continue
        for part in value.split("|"):
            part = part.strip()
            if not part:
                continue
            words.append(part)
            if len(part) <= 40 and " " not in part:
                words.append(f"{key.lower()}_{part.lower()}")
    return " ".join(words)


def event_weights(
    event_types: np.ndarray,
    values: np.ndarray,
    type_weights: Mapping[str, float] | None = None,
) -> np.ndarray:
    """Weight of each event: the type's weight if the type is listed, otherwise EVENT_VALUE
    when present (ratings), otherwise 1."""
    type_weights = DEFAULT_TYPE_WEIGHTS if type_weights is None else type_weights
    values = np.asarray(values, dtype=np.float64)
    out = np.where(np.isnan(values), 1.0, values)
    types = np.asarray(event_types, dtype=object)
    for name, weight in type_weights.items():
        out[types == name] = weight
    return out


@dataclass(eq=False)
class InteractionData:
    """Index maps between ids and ints plus a CSR user x item weight matrix.

    `rows`, `cols`, `weights` and `timestamps` keep the event level (before summing duplicate
    user-item pairs) for models that need time, like trending.
    """

    user_ids: np.ndarray  # index -> id
    item_ids: np.ndarray
    matrix: sp.csr_matrix  # float32, summed weights
    rows: np.ndarray = field(repr=False)
    cols: np.ndarray = field(repr=False)
    weights: np.ndarray = field(repr=False)
    timestamps: np.ndarray = field(repr=False)
    user_index: dict[str, int] = field(init=False, repr=False)
    item_index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.user_index = {u: i for i, u in enumerate(self.user_ids)}
        self.item_index = {t: i for i, t in enumerate(self.item_ids)}

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def now(self) -> float:
        return float(self.timestamps.max()) if len(self.timestamps) else 0.0

    @classmethod
    def from_interactions(
        cls,
        interactions: Interactions,
        *,
        type_weights: Mapping[str, float] | None = None,
        half_life_days: float | None = None,
        now: float | None = None,
        extra_item_ids: Sequence[str] | np.ndarray | None = None,
    ) -> "InteractionData":
        """Build the index and matrix. `half_life_days` multiplies every weight by
        2^(-age / half-life), age measured from `now` (default: the latest event).
        `extra_item_ids` adds items without interactions (new items for the content model)."""
        w = event_weights(interactions.event_types, interactions.values, type_weights)
        ts = interactions.timestamps
        if half_life_days is not None and len(ts):
            ref = float(ts.max()) if now is None else now
            age_days = np.maximum(ref - ts, 0.0) / SECONDS_PER_DAY
            w = w * np.exp2(-age_days / half_life_days)
        user_ids, rows = np.unique(interactions.user_ids.astype(str), return_inverse=True)
        items = interactions.item_ids.astype(str)
        if extra_item_ids is not None and len(extra_item_ids):
            item_ids = np.unique(np.concatenate([items, np.asarray(extra_item_ids, dtype=str)]))
            cols = np.searchsorted(item_ids, items)
        else:
            item_ids, cols = np.unique(items, return_inverse=True)
        keep = w > 0
        matrix = sp.csr_matrix(
            (w[keep].astype(np.float32), (rows[keep], cols[keep])),
            shape=(len(user_ids), len(item_ids)),
        )
        matrix.sum_duplicates()
        matrix.eliminate_zeros()
        return cls(
            user_ids=user_ids.astype(object),
            item_ids=item_ids.astype(object),
            matrix=matrix,
            rows=rows[keep].astype(np.int64),
            cols=cols[keep].astype(np.int64),
            weights=w[keep],
            timestamps=ts[keep],
        )

    def encode_users(self, user_ids: Sequence[str] | np.ndarray) -> np.ndarray:
        """Indexes of the given ids, -1 for unknown users."""
        return np.array([self.user_index.get(str(u), -1) for u in user_ids], dtype=np.int64)

    def encode_items(self, item_ids: Sequence[str] | np.ndarray) -> np.ndarray:
        return np.array([self.item_index.get(str(t), -1) for t in item_ids], dtype=np.int64)

    def binary(self) -> sp.csr_matrix:
        out = self.matrix.copy()
        out.data[:] = 1.0
        return out


def time_split(
    interactions: Interactions, *, test_ratio: float = 0.2
) -> tuple[Interactions, Interactions]:
    """Per user, the latest `test_ratio` of their events (by timestamp, ties by row order) go
    to test; users with a single event stay in train (Recommenders' python_chrono_split)."""
    order = np.lexsort((np.arange(len(interactions)), interactions.timestamps))
    return _split_by_user(interactions, order, 1.0 - test_ratio)


def stratified_split(
    interactions: Interactions, *, ratio: float = 0.75, seed: int = 42
) -> tuple[Interactions, Interactions]:
    """Random split within each user, reproducing Recommenders' python_stratified_split:
    shuffle all rows with RandomState(seed) (what pandas' sample(frac=1) does), then the first
    round(ratio * n_u) rows of each user go to train."""
    order = np.random.RandomState(seed).permutation(len(interactions))  # noqa: NPY002
    return _split_by_user(interactions, order, ratio)


def _split_by_user(
    interactions: Interactions, order: np.ndarray, ratio: float
) -> tuple[Interactions, Interactions]:
    users = interactions.user_ids[order].astype(str)
    _, codes = np.unique(users, return_inverse=True)
    by_user = np.argsort(codes, kind="stable")  # keeps `order` within each user
    codes_sorted = codes[by_user]
    counts = np.bincount(codes_sorted)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(len(codes_sorted)) - starts[codes_sorted]
    n_train = np.round(ratio * counts).astype(np.int64)  # half to even, like Python's round
    train_mask_sorted = rank < n_train[codes_sorted]
    rows = order[by_user]
    train_rows = np.sort(rows[train_mask_sorted])
    test_rows = np.sort(rows[~train_mask_sorted])
    return interactions.take(train_rows), interactions.take(test_rows)
