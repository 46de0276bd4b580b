"""Finding brand and product mentions in post text: plain Python, no Django.

A `MentionMatcher` is built once from brand definitions (name, aliases, hashtags, handles)
and then scans texts. It finds

- exact phrases: the name or an alias, compared after normalization (Unicode NFKD, accents
  dropped, case folded) token by token, so "ACME Store", "acme-store", "Acmé  store" and
  "acmestore" (the phrase written as one word) all match "Acme Store";
- hashtags ("#AcmeStore", a listed hashtag or the name written as one word) and handles
  ("@acme_support", a listed handle);
- misspellings: a word (or a run of as many words as the name has) within a small edit
  distance of a name or alias
  (Damerau-Levenshtein, so "Acmee" and "Amce" match "Acme"), with guards against false
  positives: terms shorter than `min_fuzzy_length` are never fuzzy-matched, one edit is
  allowed below 8 characters and two from 8, the similarity must reach `threshold`, common
  English words are never taken for a misspelling, and a brand whose name is itself a
  common word ("Gap", "Apple") matches untagged only when written capitalized.

Spans are (start, end) offsets into the original text, as Python slices it. Where matches
overlap, an exact one wins over a fuzzy one, then the longer one, then the earlier one, so
"Acme Store" is one mention of the product "Acme Store", not also one of the brand "Acme";
a phrase that several brands share is a mention of each.

Speed: tokens repeat across posts (Zipf), so the fuzzy verdict of a token is cached; the
common case, a word that is nobody's brand, costs two dict lookups.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import islice

from rapidfuzz.distance import DamerauLevenshtein

NAME = "name"
HASHTAG = "hashtag"
HANDLE = "handle"
FUZZY = "fuzzy"

# A word: letters, digits, underscore and combining marks (text in NFD keeps its accents
# inside the word). A hashtag or handle: "#"/"@" then a word, handles also with dots.
_TOKEN = re.compile(
    r"(?<!\w)(?P<at>@)(?P<handle>\w+(?:\.\w+)*)|(?:(?<!\w)(?P<hash>#))?(?P<word>[\w\u0300-\u036f]+)"
)

# Frequent English words and social-media filler: never read as a misspelled brand, and a
# brand named like one of them needs a capital or a tag to match untagged.
_COMMON_WORDS_TEXT = """
    a about above after again against all almost also always am an and any app apple apply
    are around as at away back bad be because been before being best better between big
    both brand but buy by call came can cannot care case change cheap check come could
    day days did do does doing done dont down each even ever every fact far fast feel few
    find first for free from fun gap get give go going gone good got great had has have
    having he help her here him his home how if in into is it its just keep kind know last
    least less like line little live long look lot love made make man many may me more
    most much must my need never new next nice no not now of off oh ok okay old on once
    one only or order other our out over own part people place please post pretty price
    real really right said same say see seem shop should show since size slow so some
    something still store such sure take than thank thanks that the their them then there
    these they thing things think this those though time to today too try under until up
    us use used very want was way we week well went were what when where which while who
    why will with without work would year yes yet you your
"""
COMMON_WORDS = frozenset(_COMMON_WORDS_TEXT.split())


@dataclass(frozen=True)
class BrandTerms:
    """What to look for, for one brand or product. `key` is handed back in each `Match`
    (the Brand's pk, or anything hashable)."""

    key: Hashable
    name: str
    aliases: Sequence[str] = ()
    hashtags: Sequence[str] = ()
    handles: Sequence[str] = ()


@dataclass(frozen=True)
class Match:
    key: Hashable
    start: int
    end: int
    text: str
    match_type: str
    similarity: float = 1.0


@lru_cache(maxsize=200_000)
def normalize(text: str) -> str:
    """Compatibility-decompose, drop combining marks (accents), case-fold."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _word_of(m: re.Match) -> str:
    return m.group("handle") or m.group("word")


def _words(text: str) -> tuple[str, ...]:
    return tuple(normalize(_word_of(m)) for m in _TOKEN.finditer(text))


def _bare(tag: str) -> str:
    return normalize(tag.strip().lstrip("#@").strip())


@dataclass
class _Candidate:
    keys: tuple[Hashable, ...]
    start_token: int
    end_token: int  # exclusive
    match_type: str
    similarity: float
    tagged: bool = False

    @property
    def length(self) -> int:
        return self.end_token - self.start_token


@dataclass
class MentionMatcher:
    brands: Iterable[BrandTerms]
    threshold: float = 0.8
    min_fuzzy_length: int = 4
    common_words: frozenset[str] = COMMON_WORDS
    _phrases: dict[tuple[str, ...], list[Hashable]] = field(init=False, repr=False)
    _hashtags: dict[str, list[Hashable]] = field(init=False, repr=False)
    _handles: dict[str, list[Hashable]] = field(init=False, repr=False)
    _fuzzy_terms: dict[int, dict[str, list[Hashable]]] = field(init=False, repr=False)
    _common_named: set[tuple[Hashable, str]] = field(init=False, repr=False)
    _max_words: int = field(init=False, repr=False)
    _fuzzy_cache: dict[str, tuple[tuple[Hashable, ...], float] | None] = field(
        init=False, repr=False
    )

    def __post_init__(self) -> None:
        self.brands = list(self.brands)
        self._phrases = {}
        self._hashtags = {}
        self._handles = {}
        self._fuzzy_terms = {}
        self._common_named = set()
        self._fuzzy_cache = {}
        for brand in self.brands:
            for phrase in (brand.name, *brand.aliases):
                words = _words(phrase)
                if not words:
                    continue
                _add(self._phrases, words, brand.key)
                joined = "".join(words)
                if len(words) > 1:
                    _add(self._phrases, (joined,), brand.key)
                _add(self._hashtags, joined, brand.key)
                if len(joined) >= self.min_fuzzy_length:
                    by_words = self._fuzzy_terms.setdefault(len(words), {})
                    _add(by_words, " ".join(words), brand.key)
                    if len(words) > 1:
                        _add(self._fuzzy_terms.setdefault(1, {}), joined, brand.key)
                if len(words) == 1 and words[0] in self.common_words:
                    self._common_named.add((brand.key, words[0]))
            for tag in brand.hashtags:
                if bare := _bare(tag):
                    _add(self._hashtags, bare, brand.key)
            for handle in brand.handles:
                if bare := _bare(handle):
                    _add(self._handles, bare, brand.key)
        self._max_words = max((len(p) for p in self._phrases), default=1)
        self._phrase_first = {p[0] for p in self._phrases}
        self._fuzzy_first = {
            n: {t.split(" ")[0] for t in terms} for n, terms in self._fuzzy_terms.items() if n > 1
        }
        self._runs_cache: dict[str, tuple[int, ...]] = {}
        # Words that start no name and no fuzzy run: an untagged one is skipped at once.
        self._plain: set[str] = set()
        self._fuzzy_lengths = sorted({len(t) for ts in self._fuzzy_terms.values() for t in ts})

    # -- scanning ------------------------------------------------------------------------

    def find(self, text: str) -> list[Match]:
        # findall (C speed) gives (at, handle, hash, word) per token; spans are read later,
        # and only for texts with a candidate.
        found = _TOKEN.findall(text)
        if not found:
            return []
        norms = [normalize(handle or word) for _, handle, _, word in found]
        tags = [at or hashtag for at, _, hashtag, _ in found]
        count = len(norms)
        candidates: list[_Candidate] = []
        plain = self._plain
        for i, norm in enumerate(norms):
            tag = tags[i]
            if not tag and norm in plain:
                continue
            if tag == "#":
                keys = self._hashtags.get(norm)
                if keys:
                    candidates.append(_Candidate(tuple(keys), i, i + 1, HASHTAG, 1.0, True))
                    continue
            elif tag == "@":
                keys = self._handles.get(norm)
                if keys:
                    candidates.append(_Candidate(tuple(keys), i, i + 1, HANDLE, 1.0, True))
                    continue
                if "." in norm:
                    continue  # someone else's handle, e.g. @news.site
            if norm in self._phrase_first:
                hit_exact = False
                for n in range(min(self._max_words, count - i), 0, -1):
                    keys = self._phrases.get(tuple(norms[i : i + n]))
                    if keys:
                        candidates.append(_Candidate(tuple(keys), i, i + n, NAME, 1.0, bool(tag)))
                        hit_exact = True
                        break
                if hit_exact:
                    continue
            runs = self._fuzzy_runs(norm)
            if not runs and not tag and norm not in self._phrase_first:
                if len(plain) > 500_000:
                    plain.clear()
                plain.add(norm)
            for n in runs:
                if i + n > count or any(tags[i + 1 : i + n]):
                    continue
                hit = self._fuzzy(norm if n == 1 else " ".join(norms[i : i + n]))
                if hit is not None:
                    candidates.append(_Candidate(hit[0], i, i + n, FUZZY, hit[1], bool(tag)))
                    break
        if not candidates:
            return []
        return self._resolve(text, candidates)

    def find_many(self, texts: Iterable[str]) -> list[list[Match]]:
        return [self.find(text) for text in texts]

    def _fuzzy_runs(self, first: str) -> tuple[int, ...]:
        """The run lengths worth a fuzzy look from a word: 1, and n > 1 when the word is
        within two edits of the first word of an n-word name (cached: words repeat)."""
        runs = self._runs_cache.get(first)
        if runs is None:
            found = [
                n
                for n, words in self._fuzzy_first.items()
                if any(DamerauLevenshtein.distance(first, w, score_cutoff=2) <= 2 for w in words)
            ]
            single = 1 in self._fuzzy_terms and self._fuzzy(first) is not None
            runs = tuple(sorted(found, reverse=True)) + ((1,) if single else ())
            if len(self._runs_cache) > 500_000:
                self._runs_cache.clear()
            self._runs_cache[first] = runs
        return runs

    def _fuzzy(self, candidate: str) -> tuple[tuple[Hashable, ...], float] | None:
        cached = self._fuzzy_cache.get(candidate, False)
        if cached is not False:
            return cached  # type: ignore[return-value]
        result = self._fuzzy_uncached(candidate)
        if len(self._fuzzy_cache) > 500_000:
            self._fuzzy_cache.clear()
        self._fuzzy_cache[candidate] = result
        return result

    def _fuzzy_uncached(self, candidate: str) -> tuple[tuple[Hashable, ...], float] | None:
        size = len(candidate)
        if size < self.min_fuzzy_length or candidate in self.common_words:
            return None
        terms = self._fuzzy_terms.get(candidate.count(" ") + 1)
        if not terms:
            return None
        if not any(abs(size - length) <= 2 for length in self._fuzzy_lengths):
            return None
        best: tuple[tuple[Hashable, ...], float] | None = None
        for term, keys in terms.items():
            if term == candidate:
                continue  # an exact match would have been found as a phrase
            allowed = 1 if len(term) < 8 else 2
            if abs(len(term) - size) > allowed:
                continue
            distance = DamerauLevenshtein.distance(candidate, term, score_cutoff=allowed)
            if distance > allowed:
                continue
            similarity = 1.0 - distance / max(len(term), size)
            if similarity < self.threshold:
                continue
            if best is None or similarity > best[1]:
                best = (tuple(keys), round(similarity, 4))
        return best

    def _resolve(self, text: str, candidates: list[_Candidate]) -> list[Match]:
        last_token = max(c.end_token for c in candidates)
        tokens = list(islice(_TOKEN.finditer(text), last_token))

        def span_of(k: int) -> tuple[int, int, int]:
            m = tokens[k]
            group = "handle" if m.group("at") else "word"
            return m.start(group), m.end(group), len(m.group("at") or m.group("hash") or "")

        candidates.sort(
            key=lambda c: (c.match_type == FUZZY, -c.length, -c.similarity, c.start_token)
        )
        taken: set[int] = set()
        matches: list[Match] = []
        for cand in candidates:
            span = range(cand.start_token, cand.end_token)
            if any(i in taken for i in span):
                continue
            first = span_of(cand.start_token)
            last = first if cand.length == 1 else span_of(cand.end_token - 1)
            keys = cand.keys
            if not cand.tagged and cand.length == 1 and not text[first[0]].isupper():
                norm = normalize(text[first[0] : first[1]])
                keys = tuple(k for k in keys if (k, norm) not in self._common_named)
                if cand.match_type == FUZZY:
                    keys = tuple(k for k in keys if not _common_named_key(self, k))
            if not keys:
                continue
            taken.update(span)
            start = first[0] - first[2]
            end = last[1]
            for key in keys:
                matches.append(
                    Match(
                        key=key,
                        start=start,
                        end=end,
                        text=text[start:end],
                        match_type=cand.match_type,
                        similarity=cand.similarity,
                    )
                )
        matches.sort(key=lambda m: (m.start, str(m.key)))
        return matches


def _common_named_key(matcher: MentionMatcher, key: Hashable) -> bool:
    return any(k == key for k, _ in matcher._common_named)


def _add(index: dict, term, key: Hashable) -> None:
    keys = index.setdefault(term, [])
    if key not in keys:
        keys.append(key)
