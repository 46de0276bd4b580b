"""Validation of incoming posts: plain Python, shared by the API, the file importers and
the connectors.

A post arrives as a dict. Field names are canonical (`source`, `external_id`, `author`,
`author_email`, `text`, `language`, `url`, `posted_at`, `likes`, `shares`, `comments`,
`metrics`) and a few common spellings are accepted for the id (`post_id`, `id`) and the
time (`created_time`, `created_at`, `timestamp`). Times are ISO 8601 (a time without zone
is UTC) or Unix epoch seconds. Errors are reported by row and field.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

MAX_BATCH = 1000
MAX_TEXT = 20_000
MAX_ID = 128
MAX_AUTHOR = 200
MAX_SOURCE = 32
MAX_LANGUAGE = 16
MAX_URL = 1000
MAX_COUNT = 2_147_483_647
MAX_FUTURE = timedelta(days=1)

ID_ALIASES = ("external_id", "post_id", "id")
TIME_ALIASES = ("posted_at", "created_time", "created_at", "timestamp")
COUNTS = ("likes", "shares", "comments")
FIELDS = frozenset(
    {
        "source",
        *ID_ALIASES,
        "author",
        "author_email",
        "text",
        "language",
        "url",
        *TIME_ALIASES,
        *COUNTS,
        "metrics",
    }
)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)
_SOURCE = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")


@dataclass(frozen=True, slots=True)
class PostRow:
    row: int
    source: str
    external_id: str
    author: str
    author_email: str
    text: str
    language: str
    url: str
    posted_at: datetime
    likes: int
    shares: int
    comments: int
    metrics: dict = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PostRowError:
    row: int
    field: str
    message: str


def post_validate(
    raw: Any,
    *,
    row: int,
    now: datetime,
    source_default: str | None = None,
    strict: bool = True,
) -> tuple[PostRow | None, list[PostRowError]]:
    """One post. With `strict`, a field we do not know is an error (the API); without,
    numeric unknown fields go to `metrics` and others are ignored (files)."""
    errors: list[PostRowError] = []

    def error(name: str, message: str) -> None:
        errors.append(PostRowError(row, name, message))

    if not isinstance(raw, dict):
        error("non_field_errors", "Each post must be an object.")
        return None, errors
    metrics: dict = {}
    for name in raw.keys() - FIELDS:
        if strict:
            error(name, "Unknown field.")
        else:
            value = raw[name]
            if isinstance(value, int | float) and not isinstance(value, bool):
                metrics[str(name)] = value
    source = _text(raw.get("source"), "source", MAX_SOURCE, error) or (source_default or "")
    source = source.lower()
    if not source:
        error("source", "This field is required.")
    elif not _SOURCE.match(source):
        error("source", "Letters, digits, '.', '_' and '-' only, e.g. 'mastodon'.")
    id_name = next((n for n in ID_ALIASES if raw.get(n) not in (None, "")), "external_id")
    external_id = _text(raw.get(id_name), id_name, MAX_ID, error, numbers=True)
    if not external_id:
        error(id_name, "This field is required.")
    text = _text(raw.get("text"), "text", MAX_TEXT, error, strip=False)
    if not (text or "").strip():
        error("text", "This field is required.")
    author = _text(raw.get("author"), "author", MAX_AUTHOR, error)
    email = (_text(raw.get("author_email"), "author_email", 254, error) or "").lower()
    if email and not _EMAIL.match(email):
        error("author_email", "Enter a valid email address.")
    language = (_text(raw.get("language"), "language", MAX_LANGUAGE, error) or "").lower()
    url = _text(raw.get("url"), "url", MAX_URL, error)
    if url and not _URL.match(url):
        error("url", "Enter a valid http(s) URL.")
    time_name = next((n for n in TIME_ALIASES if raw.get(n) not in (None, "")), "posted_at")
    posted_at = _time(raw.get(time_name), time_name, now, error)
    counts = {name: _count(raw.get(name), name, error) for name in COUNTS}
    given = raw.get("metrics")
    if given not in (None, ""):
        if not isinstance(given, dict):
            error("metrics", "Must be an object of numbers.")
        else:
            for key, value in given.items():
                if key in COUNTS:
                    if not raw.get(key):
                        counts[key] = _count(value, f"metrics.{key}", error)
                elif isinstance(value, int | float) and not isinstance(value, bool):
                    metrics[str(key)] = value
                else:
                    error(f"metrics.{key}", "Must be a number.")
    if errors or posted_at is None:
        return None, errors
    return (
        PostRow(
            row=row,
            source=source,
            external_id=external_id or "",
            author=author or "",
            author_email=email,
            text=text or "",
            language=language,
            url=url or "",
            posted_at=posted_at,
            likes=counts["likes"],
            shares=counts["shares"],
            comments=counts["comments"],
            metrics=metrics,
        ),
        [],
    )


def _text(value: Any, name: str, limit: int, error, *, numbers=False, strip=True) -> str | None:
    if value is None:
        return None
    if numbers and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        error(name, "Must be a string.")
        return None
    if strip:
        value = value.strip()
    if "\x00" in value:
        error(name, "Must not contain NUL characters.")
        return None
    if len(value) > limit:
        error(name, f"At most {limit} characters; got {len(value)}.")
        return None
    return value


def _count(value: Any, name: str, error) -> int:
    if value in (None, ""):
        return 0
    if isinstance(value, str):
        stripped = value.strip().replace(",", "")
        if stripped.isdigit():
            value = int(stripped)
        else:
            error(name, "Must be a whole number >= 0.")
            return 0
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value > MAX_COUNT:
        error(name, "Must be a whole number >= 0.")
        return 0
    return value


def _time(value: Any, name: str, now: datetime, error) -> datetime | None:
    if value in (None, ""):
        error(name, "This field is required (ISO 8601 or Unix seconds).")
        return None
    parsed: datetime | None = None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        parsed = _epoch(float(value))
    elif isinstance(value, str):
        stripped = value.strip()
        if re.fullmatch(r"\d{9,11}(\.\d+)?", stripped):
            parsed = _epoch(float(stripped))
        else:
            try:
                parsed = datetime.fromisoformat(stripped.replace("Z", "+00:00"))
            except ValueError:
                parsed = None
            if parsed is not None and parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
    if parsed is None:
        error(name, "Must be an ISO 8601 date-time (e.g. 2026-05-01T12:30:00Z) or Unix seconds.")
        return None
    if parsed > now + MAX_FUTURE:
        error(name, "Must not be more than a day in the future.")
        return None
    return parsed


def _epoch(seconds: float) -> datetime | None:
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
