"""Sentiment of posts and their aspect keywords: plain Python, no Django.

Two scorers share one interface, `score_many(texts) -> list[Score]`:

- `VaderScorer`: the VADER lexicon and rules (Hutto & Gilbert 2014, the `vaderSentiment`
  package), tuned for social media, needing no training data. Its compound score is the
  score; >= 0.05 is positive and <= -0.05 negative, the thresholds its authors recommend.
- `SklearnScorer`: a scikit-learn pipeline trained on labelled posts: VADER's four scores
  as features (the lexicon's judgement, which the model may correct), TF-IDF of words
  (1-2-grams) and of characters (2-5-grams within words, robust to misspellings and
  elongations), into a multinomial logistic regression. Its score is P(positive) -
  P(negative), in [-1, 1]; its label is the most probable class. Without the VADER
  features (`vader=False`) it scores a batch in one vectorized call, several times faster
  than VADER, but on 369 labelled tweets it measured clearly worse (macro-F1 0.63 vs 0.77).

`evaluate` gives accuracy and macro-F1 (the mean of the three classes' F1, so a model
that calls everything neutral scores badly even when most posts are neutral).
`aspects_find` names the aspects (price, delivery, quality, ...) a post talks about.
"""

from __future__ import annotations

import io
import pickle  # noqa: S403 - artifacts are written by our own training, stored in our DB
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

import numpy as np
from scipy.sparse import csr_matrix
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.pipeline import FeatureUnion, Pipeline
from vaderSentiment import vaderSentiment as vader
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer, SentiText

POSITIVE = "positive"
NEUTRAL = "neutral"
NEGATIVE = "negative"
LABELS = (NEGATIVE, NEUTRAL, POSITIVE)
VADER_THRESHOLD = 0.05
VADER_NAME = "vader"


@dataclass(frozen=True)
class Score:
    label: str
    score: float  # in [-1, 1]


class Scorer(Protocol):
    name: str

    def score_many(self, texts: Sequence[str]) -> list[Score]: ...


def label_of(score: float, *, threshold: float = VADER_THRESHOLD) -> str:
    if score >= threshold:
        return POSITIVE
    if score <= -threshold:
        return NEGATIVE
    return NEUTRAL


def label_normalize(raw: str) -> str | None:
    """A label as people write it: positive/pos/+/1, neutral/neu/0, negative/neg/-/-1."""
    value = str(raw).strip().lower()
    if value in {"positive", "pos", "+", "1", "p"}:
        return POSITIVE
    if value in {"neutral", "neu", "0", "n", "none"}:
        return NEUTRAL
    if value in {"negative", "neg", "-", "-1"}:
        return NEGATIVE
    return None


# --- VADER --------------------------------------------------------------------------------


_NON_ASCII = re.compile(r"[^\x00-\x7f]")


class FastVader(SentimentIntensityAnalyzer):
    """VADER's `polarity_scores` with the same rules and the same arithmetic in the same
    order, so the same scores to the last bit (tests/insights/test_sentiment.py compares
    the two on thousands of texts built to hit every rule), about three times faster.

    vaderSentiment 3.3.2 lower-cases the whole post again for every negation and idiom
    check of every opinion word (up to four times per lexicon word), tests negation
    words against a list, and rebuilds the text one character at a time to replace
    emoji. Here the words are lower-cased once, negations are a set, only lexicon words
    are visited, and emoji are replaced by one regular expression. The quirky parts
    ("but", the valence sums) are the package's own methods, called as they are.
    """

    def __init__(self) -> None:
        super().__init__()
        self._negate = frozenset(vader.NEGATE)
        # Lexicon words that are not boosters (a booster scores 0 before the lexicon).
        self._opinion = frozenset(self.lexicon.keys() - vader.BOOSTER_DICT.keys())
        self._words_cache: dict[str, str] = {}
        # Words of the idioms and of the booster phrases ("kind of"): an idiom check with
        # none of them around the word changes nothing.
        phrases = [*vader.SPECIAL_CASES, *(k for k in vader.BOOSTER_DICT if " " in k)]
        self._idiom_words = frozenset(w for phrase in phrases for w in phrase.split())

    def _replace_emoji(self, text: str) -> str:
        # An emoji becomes its description, after a space unless it starts the text or
        # follows a space (an emoji before it counts as not a space), as the package does.
        # Every emoji is past ASCII; a regular expression finds those characters.
        emojis = self.emojis
        parts = []
        last = 0
        for m in _NON_ASCII.finditer(text):
            description = emojis.get(m.group())
            if description is None:
                continue
            at = m.start()
            parts.append(text[last:at])
            if at > 0 and text[at - 1] != " ":
                parts.append(" ")
            parts.append(description)
            last = at + 1
        parts.append(text[last:])
        return "".join(parts)

    def _words(self, text: str) -> list[str]:
        """SentiText's words: split on white space, punctuation stripped (cached)."""
        cache = self._words_cache
        tokens = text.split()
        words = [cache.get(token) for token in tokens]
        if None in words:
            strip = SentiText._strip_punc_if_word
            if len(cache) > 200_000:
                cache.clear()
            for k, token in enumerate(tokens):
                if words[k] is None:
                    words[k] = cache[token] = strip(token)
        return words  # type: ignore[return-value]

    def _sentiments(self, text: str) -> tuple[str, list]:
        """The text as VADER scores it (emoji replaced, stripped) and its words' valences,
        as `polarity_scores` computes them before summing."""
        if not text.isascii():
            text = self._replace_emoji(text)
        text = text.strip()
        words = self._words(text)
        n = len(words)
        low = [w.lower() for w in words]
        sentiments: list = [0] * n
        lexicon = self.lexicon
        opinion = self._opinion
        if not opinion.isdisjoint(low):
            uppers = sum(map(str.isupper, words))
            is_cap_diff = 0 < n - uppers < n
            for i, lw in enumerate(low):
                if lw not in opinion:
                    continue
                if lw == "kind" and i < n - 1 and low[i + 1] == "of":
                    continue
                sentiments[i] = self._valence(words, low, i, is_cap_diff, lexicon)
        if "but" in low:
            sentiments = self._but_check(words, sentiments)
        return text, sentiments

    def polarity_scores(self, text):
        text, sentiments = self._sentiments(text)
        return self.score_valence(sentiments, text)

    def compound(self, text: str) -> float:
        """`polarity_scores(text)["compound"]`, the same arithmetic (score_valence's first
        half) without the positive/negative/neutral shares."""
        text, sentiments = self._sentiments(text)
        if not sentiments:
            return 0.0
        sum_s = float(sum(sentiments))
        if sum_s == 0:
            return round(vader.normalize(sum_s), 4)
        punct_emph_amplifier = self._punctuation_emphasis(text)
        if sum_s > 0:
            sum_s += punct_emph_amplifier
        elif sum_s < 0:
            sum_s -= punct_emph_amplifier
        return round(vader.normalize(sum_s), 4)

    def _valence(self, words, low, i, is_cap_diff, lexicon) -> float:
        n = len(low)
        lw = low[i]
        valence = lexicon[lw]
        if lw == "no" and i != n - 1 and low[i + 1] in lexicon:
            valence = 0.0
        if (
            (i > 0 and low[i - 1] == "no")
            or (i > 1 and low[i - 2] == "no")
            or (i > 2 and low[i - 3] == "no" and low[i - 1] in ("or", "nor"))
        ):
            valence = lexicon[lw] * vader.N_SCALAR
        if is_cap_diff and words[i].isupper():
            if valence > 0:
                valence += vader.C_INCR
            else:
                valence -= vader.C_INCR
        for start_i in range(0, 3):
            if i > start_i and low[i - (start_i + 1)] not in lexicon:
                s = vader.scalar_inc_dec(words[i - (start_i + 1)], valence, is_cap_diff)
                if start_i == 1 and s != 0:
                    s = s * 0.95
                if start_i == 2 and s != 0:
                    s = s * 0.9
                valence = valence + s
                valence = self._negation(valence, low, start_i, i)
                if start_i == 2:
                    valence = self._idioms(valence, low, i)
        # "least" (the package's _least_check)
        if i > 1 and low[i - 1] not in lexicon and low[i - 1] == "least":
            if low[i - 2] != "at" and low[i - 2] != "very":
                valence = valence * vader.N_SCALAR
        elif i > 0 and low[i - 1] not in lexicon and low[i - 1] == "least":
            valence = valence * vader.N_SCALAR
        return valence

    def _negated(self, word: str) -> bool:
        return word in self._negate or "n't" in word

    def _negation(self, valence, low, start_i, i):
        # The package's _negation_check on the lower-cased words.
        if start_i == 0 and self._negated(low[i - 1]):
            valence = valence * vader.N_SCALAR
        if start_i == 1:
            if low[i - 2] == "never" and (low[i - 1] == "so" or low[i - 1] == "this"):
                valence = valence * 1.25
            elif low[i - 2] == "without" and low[i - 1] == "doubt":
                pass
            elif self._negated(low[i - 2]):
                valence = valence * vader.N_SCALAR
        if start_i == 2:
            if (
                low[i - 3] == "never"
                and (low[i - 2] == "so" or low[i - 2] == "this")
                or (low[i - 1] == "so" or low[i - 1] == "this")
            ):
                valence = valence * 1.25
            elif low[i - 3] == "without" and (low[i - 2] == "doubt" or low[i - 1] == "doubt"):
                pass
            elif self._negated(low[i - 3]):
                valence = valence * vader.N_SCALAR
        return valence

    def _idioms(self, valence, low, i):
        # The package's _special_idioms_check on the lower-cased words (i >= 3 here).
        if self._idiom_words.isdisjoint(low[i - 3 : i + 3]):
            return valence
        special = vader.SPECIAL_CASES
        onezero = f"{low[i - 1]} {low[i]}"
        twoonezero = f"{low[i - 2]} {low[i - 1]} {low[i]}"
        twoone = f"{low[i - 2]} {low[i - 1]}"
        threetwoone = f"{low[i - 3]} {low[i - 2]} {low[i - 1]}"
        threetwo = f"{low[i - 3]} {low[i - 2]}"
        for seq in (onezero, twoonezero, twoone, threetwoone, threetwo):
            if seq in special:
                valence = special[seq]
                break
        if len(low) - 1 > i:
            zeroone = f"{low[i]} {low[i + 1]}"
            if zeroone in special:
                valence = special[zeroone]
        if len(low) - 1 > i + 1:
            zeroonetwo = f"{low[i]} {low[i + 1]} {low[i + 2]}"
            if zeroonetwo in special:
                valence = special[zeroonetwo]
        for n_gram in (threetwoone, threetwo, twoone):
            if n_gram in vader.BOOSTER_DICT:
                valence = valence + vader.BOOSTER_DICT[n_gram]
        return valence


@lru_cache(maxsize=1)
def _vader() -> FastVader:
    return FastVader()


class VaderScorer:
    name = VADER_NAME
    kind = "vader"

    def __init__(self, *, threshold: float = VADER_THRESHOLD):
        self.threshold = threshold
        self._analyzer = _vader()

    def score(self, text: str) -> Score:
        compound = float(self._analyzer.compound(text))
        return Score(label_of(compound, threshold=self.threshold), compound)

    def score_many(self, texts: Sequence[str]) -> list[Score]:
        polarity = self._analyzer.compound
        threshold = self.threshold
        out = []
        for text in texts:
            compound = float(polarity(text))
            out.append(Score(label_of(compound, threshold=threshold), compound))
        return out


# --- scikit-learn -------------------------------------------------------------------------


class VaderFeatures(BaseEstimator, TransformerMixin):
    """VADER's compound, positive, negative and neutral scores as four features, so the
    trained model starts from the lexicon and learns the corrections the data shows."""

    def fit(self, texts, labels=None):
        return self

    def transform(self, texts):
        polarity = _vader().polarity_scores
        rows = [polarity(text) for text in texts]
        return csr_matrix(
            np.array(
                [[r["compound"], r["pos"], r["neg"], r["neu"]] for r in rows], dtype=np.float64
            )
        )


def pipeline_build(*, c: float = 4.0, vader: bool = True) -> Pipeline:
    features = FeatureUnion(
        [
            *([("vader", VaderFeatures())] if vader else []),
            (
                "words",
                TfidfVectorizer(
                    ngram_range=(1, 2),
                    min_df=1,
                    sublinear_tf=True,
                    token_pattern=r"(?u)\b\w+\b|[!?]+|[:;][-']?[()DPp]",  # noqa: S106
                    lowercase=True,
                ),
            ),
            (
                "chars",
                TfidfVectorizer(
                    analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True
                ),
            ),
        ]
    )
    return Pipeline([("features", features), ("model", LogisticRegression(C=c, max_iter=2000))])


class SklearnScorer:
    kind = "sklearn"

    def __init__(self, pipeline: Pipeline, *, name: str = "sklearn"):
        self.pipeline = pipeline
        self.name = name
        classes = list(pipeline.classes_)
        self._labels = classes
        self._pos = classes.index(POSITIVE) if POSITIVE in classes else None
        self._neg = classes.index(NEGATIVE) if NEGATIVE in classes else None

    @classmethod
    def fit(
        cls,
        texts: Sequence[str],
        labels: Sequence[str],
        *,
        name: str = "sklearn",
        c: float = 4.0,
        vader: bool = True,
    ) -> SklearnScorer:
        pipeline = pipeline_build(c=c, vader=vader)
        pipeline.fit(list(texts), list(labels))
        return cls(pipeline, name=name)

    def score_many(self, texts: Sequence[str]) -> list[Score]:
        if not texts:
            return []
        proba = self.pipeline.predict_proba(list(texts))
        best = proba.argmax(axis=1)
        pos = proba[:, self._pos] if self._pos is not None else np.zeros(len(texts))
        neg = proba[:, self._neg] if self._neg is not None else np.zeros(len(texts))
        scores = pos - neg
        return [
            Score(self._labels[b], round(float(s), 4)) for b, s in zip(best, scores, strict=True)
        ]

    def predict(self, texts: Sequence[str]) -> list[str]:
        return [str(p) for p in self.pipeline.predict(list(texts))]

    def dumps(self) -> bytes:
        buffer = io.BytesIO()
        pickle.dump(self.pipeline, buffer, protocol=pickle.HIGHEST_PROTOCOL)
        return buffer.getvalue()

    @classmethod
    def loads(cls, data: bytes, *, name: str = "sklearn") -> SklearnScorer:
        pipeline = pickle.loads(data)  # noqa: S301 - our own artifact, see the import
        return cls(pipeline, name=name)


def scorer_load(*, kind: str, name: str, artifact: bytes | None) -> Scorer:
    if kind == "sklearn" and artifact:
        return SklearnScorer.loads(bytes(artifact), name=name)
    return VaderScorer()


# --- evaluation ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Metrics:
    accuracy: float
    macro_f1: float
    n: int

    def as_dict(self) -> dict:
        return {"accuracy": self.accuracy, "macro_f1": self.macro_f1, "n": self.n}


def evaluate(y_true: Sequence[str], y_pred: Sequence[str]) -> Metrics:
    return Metrics(
        accuracy=round(float(accuracy_score(y_true, y_pred)), 4),
        macro_f1=round(
            float(f1_score(y_true, y_pred, labels=list(LABELS), average="macro", zero_division=0)),
            4,
        ),
        n=len(y_true),
    )


def vader_evaluate(texts: Sequence[str], labels: Sequence[str]) -> Metrics:
    return evaluate(labels, [s.label for s in VaderScorer().score_many(texts)])


def sklearn_cross_validate(
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    folds: int = 5,
    seed: int = 0,
    vader: bool = True,
) -> Metrics:
    """Stratified k-fold: every post is predicted once by a model that did not see it."""
    texts_a = np.asarray(texts, dtype=object)
    labels_a = np.asarray(labels, dtype=object)
    smallest = min(np.unique(labels_a, return_counts=True)[1])
    folds = max(2, min(folds, int(smallest)))
    predicted = np.empty(len(texts_a), dtype=object)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(texts_a, labels_a):
        scorer = SklearnScorer.fit(list(texts_a[train]), list(labels_a[train]), vader=vader)
        predicted[test] = scorer.predict(list(texts_a[test]))
    return evaluate(list(labels_a), list(predicted))


def holdout_split(
    texts: Sequence[str], labels: Sequence[str], *, test_size: float = 0.2, seed: int = 0
) -> tuple[list[str], list[str], list[str], list[str]]:
    """(train texts, test texts, train labels, test labels), stratified: each class in the
    same proportion in both parts. A class with fewer than two examples is a ValueError
    (unstratified, its one example could go to the test part and leave the training part
    without it, which scikit-learn then refuses to fit)."""
    counts = {label: list(labels).count(label) for label in set(labels)}
    few = sorted(label for label, n in counts.items() if n < 2)
    if few:
        raise ValueError(f"each class needs at least 2 examples to hold some out: {few}")
    train_t, test_t, train_l, test_l = train_test_split(
        list(texts), list(labels), test_size=test_size, random_state=seed, stratify=list(labels)
    )
    return list(train_t), list(test_t), list(train_l), list(test_l)


# --- aspects ------------------------------------------------------------------------------

# Aspect -> the words that name it. A post "talks about" an aspect when one of its words
# appears within ASPECT_WINDOW words of an opinion word (a word in VADER's lexicon).
ASPECTS: dict[str, tuple[str, ...]] = {
    "price": (
        "price",
        "prices",
        "priced",
        "pricing",
        "cost",
        "costs",
        "expensive",
        "cheap",
        "value",
        "deal",
        "discount",
        "money",
        "overpriced",
        "affordable",
    ),
    "delivery": (
        "delivery",
        "delivered",
        "deliver",
        "shipping",
        "shipped",
        "ship",
        "package",
        "parcel",
        "courier",
        "arrived",
        "arrival",
        "late",
        "tracking",
    ),
    "quality": (
        "quality",
        "broke",
        "broken",
        "build",
        "material",
        "durable",
        "flimsy",
        "defective",
        "faulty",
        "sturdy",
        "cheaply",
        "lasts",
        "ripped",
    ),
    "service": (
        "service",
        "support",
        "staff",
        "customer",
        "helpdesk",
        "agent",
        "refund",
        "return",
        "returns",
        "response",
        "rude",
        "helpful",
        "store",
    ),
    "size": ("size", "sizes", "sizing", "fit", "fits", "small", "large", "tight", "loose"),
    "app": (
        "app",
        "website",
        "site",
        "checkout",
        "login",
        "crash",
        "crashes",
        "bug",
        "update",
        "online",
    ),
    "taste": ("taste", "tastes", "flavour", "flavor", "delicious", "bland", "fresh", "stale"),
    "design": ("design", "look", "looks", "style", "color", "colour", "colours", "colors"),
}
ASPECT_WINDOW = 4
_ASPECT_OF = {word: aspect for aspect, words in ASPECTS.items() for word in words}
_ASPECT_WORDS = frozenset(_ASPECT_OF)
_WORD = re.compile(r"[a-z']+")


@lru_cache(maxsize=1)
def _opinion_words() -> frozenset[str]:
    return frozenset(w for w, v in _vader().lexicon.items() if abs(float(v)) >= 0.5)


def aspects_find(text: str) -> list[str]:
    """The aspects a text talks about with an opinion nearby, in order of appearance."""
    words = _WORD.findall(text.lower())
    if _ASPECT_WORDS.isdisjoint(words):
        return []
    opinions = _opinion_words()
    opinion_at = [i for i, w in enumerate(words) if w in opinions]
    if not opinion_at:
        return []
    found: list[str] = []
    for i, word in enumerate(words):
        aspect = _ASPECT_OF.get(word)
        if aspect is None or aspect in found:
            continue
        if word in opinions or any(abs(i - j) <= ASPECT_WINDOW for j in opinion_at):
            found.append(aspect)
    return found


def aspects_many(texts: Iterable[str]) -> list[list[str]]:
    return [aspects_find(text) for text in texts]


# --- labelled files -----------------------------------------------------------------------


def label_from_value(raw: str, *, rating_threshold: float = 0.5) -> str | None:
    """A class label, or a numeric rating mapped to one: > threshold positive,
    < -threshold negative, else neutral (VADER's ground truth rates -4..4)."""
    label = label_normalize(raw)
    if label is not None:
        return label
    try:
        rating = float(raw)
    except (TypeError, ValueError):
        return None
    if not np.isfinite(rating):
        return None
    if rating > rating_threshold:
        return POSITIVE
    if rating < -rating_threshold:
        return NEGATIVE
    return NEUTRAL


def labelled_csv_read(
    path: str,
    *,
    text_column: str = "text",
    label_column: str = "label",
    rating_threshold: float = 0.5,
) -> tuple[list[str], list[str], int]:
    """(texts, labels, rows skipped for an empty text or an unreadable label)."""
    import csv

    texts: list[str] = []
    labels: list[str] = []
    skipped = 0
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in (text_column, label_column) if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(
                f"{path} has no column {', '.join(missing)}; it has "
                f"{', '.join(reader.fieldnames or [])}"
            )
        for row in reader:
            text = (row.get(text_column) or "").strip()
            label = label_from_value(row.get(label_column) or "", rating_threshold=rating_threshold)
            if not text or label is None:
                skipped += 1
                continue
            texts.append(text)
            labels.append(label)
    return texts, labels, skipped


def sentiment_compare(
    texts: Sequence[str], labels: Sequence[str], *, folds: int = 5, seed: int = 0
) -> dict:
    """VADER (no training: scored on every row) beside the scikit-learn pipeline
    (stratified k-fold cross-validation: every row predicted by a model that did not see
    it), with the better one by macro-F1."""
    vader = vader_evaluate(texts, labels)
    result: dict = {
        "rows": len(texts),
        "labels": {label: list(labels).count(label) for label in LABELS},
        "vader": {**vader.as_dict(), "method": "lexicon, no training; scored on every row"},
    }
    if len(set(labels)) >= 2 and len(texts) >= 10:
        sk = sklearn_cross_validate(texts, labels, folds=folds, seed=seed)
        result["sklearn"] = {
            **sk.as_dict(),
            "method": f"VADER's 4 scores + TF-IDF words 1-2 + chars 2-5, logistic regression; "
            f"{folds}-fold stratified cross-validation, seed {seed}",
        }
        result["best"] = "sklearn" if sk.macro_f1 > vader.macro_f1 else "vader"
    else:
        result["sklearn"] = None
        result["best"] = "vader"
    return result
