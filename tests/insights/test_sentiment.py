import random

import pytest
from vaderSentiment.vaderSentiment import (
    BOOSTER_DICT,
    NEGATE,
    SPECIAL_CASES,
    SentimentIntensityAnalyzer,
)

from insights.sentiment import (
    NEGATIVE,
    NEUTRAL,
    POSITIVE,
    FastVader,
    SklearnScorer,
    VaderScorer,
    aspects_find,
    evaluate,
    holdout_split,
    label_from_value,
    label_of,
    sentiment_compare,
    sklearn_cross_validate,
)

POS = [
    "I love this, absolutely wonderful",
    "great service and fast delivery, thanks!",
    "best purchase ever, so happy :)",
    "amazing quality, would buy again",
    "fantastic app, works perfectly",
    "really nice staff, lovely shop",
]
NEG = [
    "terrible, it broke after a day",
    "awful support, never again",
    "worst delivery ever, so slow :(",
    "hate it, total waste of money",
    "the app crashes all the time, useless",
    "rude staff and horrible service",
]
NEU = [
    "the store opens at nine",
    "is the blue one in stock",
    "order number 4411 shipped today",
    "they moved to a new street",
    "what sizes does it come in",
    "the sale starts on monday",
]


def test_vader_scores_and_labels():
    scorer = VaderScorer()
    scores = scorer.score_many(["I love it!", "I hate it.", "It is a table."])
    assert [s.label for s in scores] == [POSITIVE, NEGATIVE, NEUTRAL]
    assert scores[0].score > 0.5
    assert scores[1].score < -0.5
    assert scores[2].score == 0.0
    assert scorer.score("I love it!") == scores[0]


def _vader_corpus(n: int, seed: int) -> list[str]:
    """Texts built to hit every VADER rule: lexicon words, negations (also "n't"), "no",
    "least", "never so", "without doubt", "kind of", boosters and dampeners, idioms,
    "but", ALL CAPS among lower case, punctuation around words, "!" and "?" runs,
    emoticons, emoji next to words, tabs and double spaces."""
    rng = random.Random(seed)
    analyzer = SentimentIntensityAnalyzer()
    lexicon = sorted(analyzer.lexicon)
    emoji = sorted(k for k in analyzer.emojis if len(k) == 1)
    idioms = " ".join([*SPECIAL_CASES, *BOOSTER_DICT]).split()
    tricky = "no least at very kind of but never so this without doubt or nor isn't don't"
    plain = ["acme", "store", "x", "hello", "ok", "the", "a"]

    def word() -> str:
        pick = rng.random()
        pool = (
            lexicon
            if pick < 0.25
            else NEGATE
            if pick < 0.4
            else tricky.split()
            if pick < 0.55
            else idioms
            if pick < 0.65
            else emoji
            if pick < 0.72
            else plain
        )
        w = rng.choice(pool)
        shape = rng.random()
        w = w.upper() if shape < 0.15 else w.capitalize() if shape < 0.2 else w
        around = rng.random()
        if around < 0.1:
            w += rng.choice(["!", "!!", "?", "??", "???", "...", ",", ":)", ":("])
        elif around < 0.15:
            w = rng.choice(["(", "'", '"', "#", "@"]) + w
        return w

    texts = []
    for _ in range(n):
        words = [word() for _ in range(rng.randint(0, 25))]
        sep = rng.choice([" ", " ", "  ", "\t", ""])
        texts.append(sep.join(words) if sep else "".join(w + rng.choice(" _") for w in words))
    # Each idiom and booster phrase at each distance before and after an opinion word.
    for phrase in [*SPECIAL_CASES, *(k for k in BOOSTER_DICT if " " in k)]:
        for gap in range(4):
            filler = "x " * gap
            texts += [f"{phrase} {filler}good", f"bad {filler}{phrase}", f"{filler}{phrase} ok"]
    return texts + [
        "",
        "   ",
        "😀",
        " 😀😀 a😁b ",
        "VADER is VERY SMART, uber handsome, and FRIGGIN FUNNY!!!",
        "At least it isn't a horrible book.",
        "The book was only kind of good.",
        "Today only kinda sux! But I'll get by, lol",
        "Make sure you :) or :D today!",
        "Not bad at all",
        "no no no good",
        "good but bad but good",
    ]


def test_fast_vader_gives_the_packages_scores_exactly():
    """FastVader reimplements VADER's rules for speed: every score of the package, to the
    last bit, on 6,000 texts built to hit every rule."""
    reference = SentimentIntensityAnalyzer()
    fast = FastVader()
    texts = _vader_corpus(6000, seed=3)
    for text in texts:
        expected = reference.polarity_scores(text)
        assert fast.polarity_scores(text) == expected, text
        assert fast.compound(text) == expected["compound"], text
    # Twice: the word cache gives the same answers.
    assert [fast.compound(t) for t in texts[:500]] == [
        reference.polarity_scores(t)["compound"] for t in texts[:500]
    ]
    scores = VaderScorer().score_many(texts[:200])
    assert [s.score for s in scores] == [
        reference.polarity_scores(t)["compound"] for t in texts[:200]
    ]


@pytest.mark.parametrize(
    ("score", "label"),
    [(0.05, POSITIVE), (0.049, NEUTRAL), (-0.049, NEUTRAL), (-0.05, NEGATIVE), (1, POSITIVE)],
)
def test_label_thresholds(score, label):
    assert label_of(score) == label


@pytest.mark.parametrize(
    ("raw", "label"),
    [
        ("positive", POSITIVE),
        ("NEG", NEGATIVE),
        ("0", NEUTRAL),
        ("-1", NEGATIVE),
        ("2.7", POSITIVE),
        ("0.5", NEUTRAL),
        ("-0.51", NEGATIVE),
        ("maybe", None),
        ("nan", None),
    ],
)
def test_labels_and_ratings(raw, label):
    assert label_from_value(raw) == label


def test_sklearn_scorer_learns_and_round_trips():
    texts = POS * 3 + NEG * 3 + NEU * 3
    labels = [POSITIVE] * 18 + [NEGATIVE] * 18 + [NEUTRAL] * 18
    scorer = SklearnScorer.fit(texts, labels, name="t")
    scores = scorer.score_many(["I love this shop, wonderful", "awful, it broke, hate it"])
    assert [s.label for s in scores] == [POSITIVE, NEGATIVE]
    assert scores[0].score > 0 > scores[1].score
    assert all(-1 <= s.score <= 1 for s in scores)
    again = SklearnScorer.loads(scorer.dumps(), name="t")
    assert again.score_many(["I love this shop, wonderful"]) == scores[:1]
    assert scorer.score_many([]) == []


def test_evaluate_accuracy_and_macro_f1():
    metrics = evaluate(
        [POSITIVE, POSITIVE, NEGATIVE, NEUTRAL], [POSITIVE, NEGATIVE, NEGATIVE, NEUTRAL]
    )
    assert metrics.accuracy == 0.75
    # F1: positive 2/3, negative 2/3, neutral 1 -> mean 0.7778
    assert metrics.macro_f1 == 0.7778
    assert metrics.n == 4


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_holdout_split_is_stratified_and_refuses_a_lone_example(seed):
    labels = [POSITIVE] * 16 + [NEGATIVE] * 4
    train_t, test_t, train_l, test_l = holdout_split(
        [f"t{i}" for i in range(20)], labels, test_size=0.2, seed=seed
    )
    assert (len(train_t), len(test_t)) == (16, 4)
    assert (train_l.count(NEGATIVE), test_l.count(NEGATIVE)) == (3, 1)
    with pytest.raises(ValueError, match="at least 2 examples"):
        holdout_split([f"t{i}" for i in range(20)], [POSITIVE] * 19 + [NEGATIVE], seed=0)


def test_cross_validation_predicts_every_row_once():
    texts = POS + NEG + NEU
    labels = [POSITIVE] * 6 + [NEGATIVE] * 6 + [NEUTRAL] * 6
    metrics = sklearn_cross_validate(texts, labels, folds=3)
    assert metrics.n == 18
    assert 0 <= metrics.accuracy <= 1


def test_compare_reports_both_and_picks_the_better():
    texts = POS + NEG + NEU
    labels = [POSITIVE] * 6 + [NEGATIVE] * 6 + [NEUTRAL] * 6
    result = sentiment_compare(texts, labels, folds=3)
    assert result["rows"] == 18
    assert result["labels"] == {NEGATIVE: 6, NEUTRAL: 6, POSITIVE: 6}
    assert set(result["vader"]) == {"accuracy", "macro_f1", "n", "method"}
    assert "3-fold" in result["sklearn"]["method"]
    better = max(("vader", "sklearn"), key=lambda k: result[k]["macro_f1"])
    if result["vader"]["macro_f1"] == result["sklearn"]["macro_f1"]:
        better = "vader"
    assert result["best"] == better


@pytest.mark.parametrize(
    ("text", "aspects"),
    [
        ("Great price but the delivery was awfully slow", ["price", "delivery"]),
        ("The staff were rude", ["service"]),
        ("The app keeps crashing, terrible", ["app"]),
        ("My order has shipped", []),  # no opinion nearby
        ("", []),
        ("love the colours, fits perfectly", ["design", "size"]),
    ],
)
def test_aspects(text, aspects):
    assert aspects_find(text) == aspects
