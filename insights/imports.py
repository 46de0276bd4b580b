"""File imports of social-media posts (found by kind through marketing.common.csv_import's
registry). A CSV file has a header row: post_id, text and created_time are required;
source, author, author_email, language, url, likes, shares, comments are read when present
(see insights/ingest.py for aliases) and any other numeric column becomes a metric. A file
ending in .json holds a list of post objects, .jsonl one object per line.

Rows go through `posts_ingest` in chunks: rejected rows are written to the report with
their row number (the spreadsheet's, header = 1; for JSON the object's 1-based position or
line), and re-importing a file only updates the metrics of the posts it already stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson

from insights.connectors import csv_posts, json_posts
from insights.services import posts_ingest
from marketing.common.csv_import import (
    ImportCounts,
    ImportReport,
    RowError,
    chunked,
    importer_register,
)

CHUNK = 1000
DEFAULT_SOURCE = "import"


def posts_import(*, path: Path, report: ImportReport, progress) -> ImportCounts:
    rows: Iterator[tuple[int, dict]]
    suffix = Path(path).suffix.lower()
    rows = (
        json_posts(path, errors=report)
        if suffix in (".json", ".jsonl")
        else csv_posts(path, errors=report)
    )
    created = updated = mentions = linked = read = 0
    for chunk in chunked(rows, CHUNK):
        numbers = [n for n, _ in chunk]
        result = posts_ingest([r for _, r in chunk], source_default=DEFAULT_SOURCE)
        reported: set[int] = set()
        for error in result.errors:
            number = numbers[error.row]
            report.add(RowError(number, error.field, error.message, _value(chunk, error)))
            reported.add(number)
        created += result.created
        updated += result.updated
        mentions += result.mentions
        linked += result.linked
        read += len(chunk)
        progress(read)
    rows_total = created + updated + report.rejected
    return ImportCounts(
        rows=rows_total,
        imported=created,
        unchanged=updated,
        rejected=report.rejected,
        details={"mentions": mentions, "linked": linked, "metrics_updated": updated},
    )


def _value(chunk: list[tuple[int, dict]], error) -> str:
    raw = chunk[error.row][1]
    if not isinstance(raw, dict):
        return ""
    value = raw.get(error.field.split(".")[0], "")
    return value if isinstance(value, str) else orjson.dumps(value).decode()


importer_register("posts", posts_import)
