"""Reading journeys from CSV files, with every bad row reported by its line number.

Two layouts:

- touchpoints (`journeys`): one row per touch, columns found by header name
  (case-insensitive) `journey_id,timestamp,channel,conversion,value` plus an optional
  `campaign`. The conversion flag goes on the last row of a converting path. Column names
  of the public touchpoint sample (`customer_id`, `time`, `conversion_value`) are accepted
  as aliases, and extra columns (its `interaction`) are ignored.
- aggregated paths (`paths`, ChannelAttribution's format): `;`-separated
  `path;total_conversions;total_conversion_value;total_null`, path like `a > b > c`.

`auto` picks `paths` when the header has a `path` column and `journeys` otherwise.
"""

import csv
import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from experiments.attribution.paths import (
    DEFAULT_LOOKBACK_DAYS,
    Paths,
    paths_from_sequences,
    paths_from_touchpoints,
)

FORMATS = ("auto", "journeys", "paths")
ALIASES = {"customer_id": "journey_id", "time": "timestamp", "conversion_value": "value"}
REQUIRED = ("journey_id", "timestamp", "channel", "conversion")
TRUE = {"1", "true", "yes", "y", "t"}
FALSE = {"0", "false", "no", "n", "f", ""}
MAX_REPORTED_ERRORS = 20


class JourneyFileError(ValueError):
    """The file cannot be read; `errors` lists every bad row as "line N: problem"."""

    def __init__(self, source: str, errors: list[str]):
        self.errors = errors
        shown = errors[:MAX_REPORTED_ERRORS]
        more = len(errors) - len(shown)
        suffix = f"\n... and {more} more" if more else ""
        super().__init__(f"{source}: {len(errors)} bad row(s)\n" + "\n".join(shown) + suffix)


def parse_timestamp(text: str) -> float:
    """Unix seconds, or ISO 8601 (a trailing Z or an offset; naive times are taken as UTC)."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _number(text: str, what: str) -> float:
    value = float(text) if text.strip() else 0.0
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{what} must be a non-negative number, got {text!r}")
    return value


def _flag(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in TRUE:
        return True
    if lowered in FALSE:
        return False
    raise ValueError(f"conversion must be 0 or 1, got {text!r}")


def _rows(path: str | Path, delimiter: str) -> Iterator[tuple[int, dict[str, str]]]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        header = [h.strip().lower() for h in next(reader, [])]
        header = [ALIASES.get(h, h) for h in header]
        yield 1, dict.fromkeys(header, "")
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                yield reader.line_num, {"": f"expected {len(header)} columns, got {len(row)}"}
                continue
            yield reader.line_num, dict(zip(header, row, strict=True))


def detect_format(path: str | Path) -> str:
    with open(path, encoding="utf-8-sig") as fh:
        first = fh.readline().lower()
    columns = [c.strip() for c in first.replace(";", ",").split(",")]
    return "paths" if "path" in columns else "journeys"


def _parse(
    path: str | Path,
    *,
    delimiter: str,
    required: tuple[str, ...],
    parse_row: Callable[[dict[str, str]], tuple],
) -> tuple[set[str], list[tuple]]:
    """(header columns, one tuple per row); every bad row is collected, then all reported."""
    rows = _rows(path, delimiter)
    _, header = next(rows)
    missing = [c for c in required if c not in header]
    if missing:
        raise JourneyFileError(str(path), [f"line 1: missing column(s) {', '.join(missing)}"])
    parsed, errors = [], []
    for line, row in rows:
        try:
            if "" in row:
                raise ValueError(row[""])
            parsed.append(parse_row(row))
        except ValueError as exc:
            errors.append(f"line {line}: {exc}")
    if errors:
        raise JourneyFileError(str(path), errors)
    return set(header), parsed


def _touchpoint(row: dict[str, str]) -> tuple[str, float, str, bool, float, str]:
    journey = row["journey_id"].strip()
    if not journey:
        raise ValueError("journey_id is empty")
    flag = _flag(row["conversion"])
    channel = row["channel"].strip()
    if not channel and not flag:
        raise ValueError("channel is empty on a row that is not a conversion")
    value = _number(row.get("value", ""), "value")
    if value and not flag:
        raise ValueError(f"value {row['value']!r} on a row that is not a conversion")
    try:
        moment = parse_timestamp(row["timestamp"])
    except ValueError:
        raise ValueError(
            f"timestamp {row['timestamp']!r} is neither ISO 8601 nor unix seconds"
        ) from None
    return journey, moment, channel, flag, value, row.get("campaign", "").strip()


def read_journeys_csv(
    path: str | Path, *, lookback_days: float | None = DEFAULT_LOOKBACK_DAYS
) -> Paths:
    header, rows = _parse(path, delimiter=",", required=REQUIRED, parse_row=_touchpoint)
    journeys, times, channels, flags, values, campaigns = (
        (list(column) for column in zip(*rows, strict=True)) if rows else ([], [], [], [], [], [])
    )
    return paths_from_touchpoints(
        journey_ids=np.array(journeys, dtype=str),
        timestamps=np.array(times, dtype=np.float64),
        channels=np.array(channels, dtype=str),
        conversions=np.array(flags, dtype=bool),
        values=np.array(values, dtype=np.float64),
        campaigns=np.array(campaigns, dtype=str) if "campaign" in header else None,
        lookback_days=lookback_days,
    )


def _aggregated_path(row: dict[str, str]) -> tuple[list[str], float, float, float]:
    sequence = [c.strip() for c in row["path"].split(">")]
    if not all(sequence):
        raise ValueError(f"path {row['path']!r} has an empty channel")
    return (
        sequence,
        _number(row["total_conversions"], "total_conversions"),
        _number(row["total_conversion_value"], "total_conversion_value"),
        _number(row["total_null"], "total_null"),
    )


def read_paths_csv(path: str | Path) -> Paths:
    """ChannelAttribution's aggregated paths (no timestamps, so no lookback or time decay)."""
    needed = ("path", "total_conversions", "total_conversion_value", "total_null")
    _, rows = _parse(path, delimiter=";", required=needed, parse_row=_aggregated_path)
    return paths_from_sequences(
        [r[0] for r in rows],
        conversions=[r[1] for r in rows],
        values=[r[2] for r in rows],
        nulls=[r[3] for r in rows],
    )


def read_paths_file(
    path: str | Path,
    *,
    file_format: str = "auto",
    lookback_days: float | None = DEFAULT_LOOKBACK_DAYS,
) -> Paths:
    if file_format not in FORMATS:
        raise ValueError(f"unknown format {file_format!r}; choose from {', '.join(FORMATS)}")
    if file_format == "auto":
        file_format = detect_format(path)
    if file_format == "paths":
        return read_paths_csv(path)
    return read_journeys_csv(path, lookback_days=lookback_days)
