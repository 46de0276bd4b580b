"""Top themes of positive and negative mentions, without Django (CONVENTIONS §0).

A theme is an aspect keyword the sentiment scorer found in a post (Post.aspects); posts
without aspects contribute their frequent words instead (lowercased, stop words, brand names
and very short words left out), so the page shows themes before any aspect is extracted.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

WORD = re.compile(r"[a-zà-ÿ][a-zà-ÿ'\-]{2,}")
_STOP_TEXT = """
    the and for are but not you your yours with this that these those was were have has had
    its it's our ours out all any can could just get got from they them their there what when
    where which who why how will would should been being about into than then too very much
    more most some such only own same also here over under again once off did does doing done
    i'm i've you're don't didn't doesn't isn't wasn't can't won't it’s im ive dont cant wont
    one two new now today really still even ever like love hate good bad great best worst
    amp http https www com
"""
STOP_WORDS = frozenset(_STOP_TEXT.split())


def aspect_terms(aspects) -> list[str]:
    """The keywords of a post's `aspects`: strings, or objects with a term/aspect key."""
    terms = []
    for aspect in aspects or ():
        if isinstance(aspect, str):
            term = aspect
        elif isinstance(aspect, dict):
            term = aspect.get("term") or aspect.get("aspect") or aspect.get("name") or ""
        else:
            continue
        term = str(term).strip().lower()
        if term:
            terms.append(term)
    return terms


def text_terms(text: str, *, exclude: frozenset[str] = frozenset()) -> list[str]:
    """Distinct content words of a text (a word counts once per post)."""
    seen: dict[str, None] = {}
    for word in WORD.findall((text or "").lower()):
        word = word.strip("'-")
        if len(word) < 3 or word in STOP_WORDS or word in exclude:
            continue
        seen.setdefault(word, None)
    return list(seen)


def top_themes(
    posts: Iterable[tuple[object, str]], *, exclude: Iterable[str] = (), limit: int = 10
) -> list[tuple[str, int]]:
    """The `limit` most frequent themes of (aspects, text) pairs, most frequent first, ties
    alphabetically; each post counts a theme once."""
    excluded = frozenset(w.lower() for name in exclude for w in WORD.findall(name.lower()))
    counts: Counter[str] = Counter()
    for aspects, text in posts:
        terms = aspect_terms(aspects) or text_terms(text, exclude=excluded)
        counts.update(dict.fromkeys(terms, 1))
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
