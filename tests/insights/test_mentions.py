import pytest

from insights.mentions import (
    FUZZY,
    HANDLE,
    HASHTAG,
    NAME,
    BrandTerms,
    MentionMatcher,
    normalize,
)

ACME = BrandTerms(
    key="acme",
    name="Acme",
    aliases=("Acme Corp",),
    hashtags=("#AcmeLove",),
    handles=("@acme_support", "acme.help"),
)
STORE = BrandTerms(key="store", name="Acme Store")
SNEAKERS = BrandTerms(key="sneakers", name="Nikolaus Sneakers")
GAP = BrandTerms(key="gap", name="Gap")


@pytest.fixture(scope="module")
def matcher():
    return MentionMatcher([ACME, STORE, SNEAKERS, GAP])


def found(matcher, text):
    return [(m.key, m.text, m.match_type) for m in matcher.find(text)]


def test_spans_are_offsets_into_the_original_text(matcher):
    text = "🔥🔥 I ❤️ ACMÉ, really"  # ❤️ is two code points (the heart, a variation selector)
    [match] = matcher.find(text)
    assert (match.start, match.end) == (8, 12)
    assert text[match.start : match.end] == "ACMÉ" == match.text
    assert (match.key, match.match_type, match.similarity) == ("acme", NAME, 1.0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("acme is fine", [("acme", "acme", NAME)]),
        ("I ❤ Acme", [("acme", "Acme", NAME)]),  # not the fuzzy "iacme"
        ("ACME CORP rocks", [("acme", "ACME CORP", NAME)]),
        ("Café Acmé corp", [("acme", "Acmé corp", NAME)]),
        ("Cafe\u0301 acme\u0301", [("acme", "acme\u0301", NAME)]),
        ("the acme-store app", [("store", "acme-store", NAME)]),
        ("the acmestore app", [("store", "acmestore", NAME)]),
        ("Acme  Store   again", [("store", "Acme  Store", NAME)]),
        ("ＡＣＭＥ fullwidth", [("acme", "ＡＣＭＥ", NAME)]),
    ],
)
def test_exact_names_after_normalization(matcher, text, expected):
    assert found(matcher, text) == expected


def test_hashtags_and_handles(matcher):
    text = "#AcmeLove thanks @acme_support and @Acme.Help, not @acme.news #acmestore"
    assert found(matcher, text) == [
        ("acme", "#AcmeLove", HASHTAG),
        ("acme", "@acme_support", HANDLE),
        ("acme", "@Acme.Help", HANDLE),
        ("store", "#acmestore", HASHTAG),
    ]


def test_an_email_address_is_not_a_handle(matcher):
    assert found(matcher, "write to help@acme_support.com") == []


@pytest.mark.parametrize(
    ("text", "key", "matched", "similarity"),
    [
        ("I love Acmee!", "acme", "Acmee", 0.8),
        ("nikolas sneekers are ok", "sneakers", "nikolas sneekers", 0.8824),
        ("Nikolaus Snaekers", "sneakers", "Nikolaus Snaekers", 0.9412),
    ],
)
def test_misspellings_match_fuzzily(matcher, text, key, matched, similarity):
    [match] = matcher.find(text)
    assert (match.key, match.text, match.match_type) == (key, matched, FUZZY)
    assert match.similarity == similarity


@pytest.mark.parametrize(
    "text",
    [
        "acmeology is a science",  # a longer word containing the name
        "my acne is back",  # one letter off a 4-letter name: too far
        "acm",  # too short to be fuzzy
        "some people",
    ],
)
def test_no_false_positives(matcher, text):
    assert found(matcher, text) == []


def test_a_brand_named_like_a_common_word_needs_a_capital_or_a_tag(matcher):
    assert found(matcher, "mind the gap") == []
    assert found(matcher, "new Gap jeans") == [("gap", "Gap", NAME)]
    assert found(matcher, "#gap jeans") == [("gap", "#gap", HASHTAG)]


def test_the_longer_overlapping_match_wins(matcher):
    assert found(matcher, "Acme Store and Acme") == [
        ("store", "Acme Store", NAME),
        ("acme", "Acme", NAME),
    ]


def test_a_phrase_shared_by_two_brands_is_a_mention_of_each():
    matcher = MentionMatcher(
        [BrandTerms(1, "Orbit"), BrandTerms(2, "Orbit Gum", aliases=["orbit"])]
    )
    assert [(m.key, m.text) for m in matcher.find("Orbit!")] == [(1, "Orbit"), (2, "Orbit")]


def test_repeated_mentions_each_have_their_span(matcher):
    text = "acme, ACME🔥acme"
    assert [(m.start, m.end) for m in matcher.find(text)] == [(0, 4), (6, 10), (11, 15)]


def test_find_many_and_no_brands():
    assert MentionMatcher([]).find("Acme") == []
    matcher = MentionMatcher([ACME])
    assert [len(x) for x in matcher.find_many(["Acme", "", "nothing here", "acmee acme"])] == [
        1,
        0,
        0,
        2,
    ]


def test_normalize():
    assert normalize("ÀÉÎõü Straße ﬁ") == "aeiou strasse fi"


def test_a_word_seen_plain_still_matches_when_tagged_or_in_a_phrase():
    """Words that start no match are remembered and skipped untagged; the same word as a
    hashtag or handle, or inside a longer name, still matches."""
    matcher = MentionMatcher(
        [ACME, STORE, BrandTerms(key="fit", name="Fitlab", hashtags=("#gymlife",))]
    )
    assert found(matcher, "gymlife acme_support store") == []
    assert found(matcher, "#gymlife and @acme_support") == [
        ("fit", "#gymlife", HASHTAG),
        ("acme", "@acme_support", HANDLE),
    ]
    assert found(matcher, "the store, then Acme Store") == [("store", "Acme Store", NAME)]
    texts = ["gymlife store acme", "#GymLife Acmee store", "store store #gymlife"] * 3
    cold = MentionMatcher(
        [ACME, STORE, BrandTerms(key="fit", name="Fitlab", hashtags=("#gymlife",))]
    )
    assert matcher.find_many(texts) == cold.find_many(texts) == [cold.find(t) for t in texts]
