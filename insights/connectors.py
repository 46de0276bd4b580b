"""Where posts come from: live platform connectors and files.

A live connector (Mastodon, X, Reddit, ...) implements `Connector`: `fetch(cursor)` returns
a page of post dicts in the shape `posts_ingest` takes (see insights/ingest.py) and the
cursor to resume from. `connector_sync` drives one: it fetches pages until the platform has
nothing newer and hands each to `posts_ingest`; it stores nothing itself, so the caller
persists the returned cursor (e.g. in a row per connector) and a Celery beat entry calls it.
None ships here: this machine cannot reach the platforms. Files go through the import
machinery (insights/imports.py) with the two readers below.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import orjson

from marketing.common.csv_import import (
    CsvHeaderError,
    ImportReport,
    RowError,
    csv_open,
)

# A CSV header (normalised by csv_import.header_key) -> the field posts_ingest takes.
CSV_COLUMNS = {
    "SOURCE": "source",
    "POST_ID": "external_id",
    "AUTHOR": "author",
    "AUTHOR_EMAIL": "author_email",
    "TEXT": "text",
    "LANGUAGE": "language",
    "CREATED_TIME": "posted_at",
    "URL": "url",
    "LIKES": "likes",
    "SHARES": "shares",
    "COMMENTS": "comments",
}
CSV_REQUIRED = ("POST_ID", "TEXT", "CREATED_TIME")


@dataclass(frozen=True)
class Page:
    posts: list[dict]
    cursor: str | None  # where the next fetch starts; None: nothing newer yet


class Connector(Protocol):
    """A live platform. `source` is stored on every post it yields."""

    source: str

    def fetch(self, cursor: str | None) -> Page: ...


def connector_sync(
    connector: Connector,
    *,
    cursor: str | None,
    ingest: Callable[..., object],
    max_pages: int = 100,
) -> str | None:
    """Fetch and ingest pages from `cursor` on; return the cursor to resume from."""
    for _ in range(max_pages):
        page = connector.fetch(cursor)
        if page.posts:
            ingest(page.posts, source_default=connector.source)
        if page.cursor is None or page.cursor == cursor:
            return cursor if page.cursor is None else page.cursor
        cursor = page.cursor
    return cursor


def csv_posts(path: str | Path, *, errors: ImportReport) -> Iterator[tuple[int, dict]]:
    """(row number, post dict) for each data row of a CSV file."""
    opened = csv_open(path, required=CSV_REQUIRED, errors=errors)
    keys = opened.header.keys
    try:
        for number, values in opened.rows:
            post: dict = {}
            for key, value in zip(keys, values, strict=True):
                name = CSV_COLUMNS.get(key)
                if name is not None:
                    if value.strip():
                        post[name] = value
                elif value.strip():
                    post[key.lower()] = _number(value)
            yield number, post
    finally:
        opened.close()


def _number(value: str) -> float | int | str:
    text = value.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def json_posts(path: str | Path, *, errors: ImportReport) -> Iterator[tuple[int, dict]]:
    """(position, post dict) from a .json list (1-based position) or .jsonl (line number)."""
    path = Path(path)
    if path.suffix.lower() == ".jsonl":
        with open(path, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    errors.skip_blank()
                    continue
                try:
                    yield number, orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    errors.add(RowError(number, "", f"Not valid JSON: {exc}."))
        return
    try:
        data = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise CsvHeaderError(f"The file is not valid JSON: {exc}. Nothing was imported.") from exc
    if isinstance(data, dict):
        data = data.get("posts", [data])
    if not isinstance(data, list):
        raise CsvHeaderError("A JSON file must hold a list of posts. Nothing was imported.")
    for number, item in enumerate(data, start=1):
        yield number, item


__all__ = ["CSV_COLUMNS", "Connector", "Page", "connector_sync", "csv_posts", "json_posts"]
