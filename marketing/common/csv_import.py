"""Reading customer-data CSV files: plain Python, no models.

The importers (profiles/imports.py, recommender/imports.py) stream a file through
`csv_rows`, turn each row into values or `RowError`s, and write the errors to a report
the marketer downloads. A header that lacks a required column refuses the whole file
before anything is stored.

Importers register themselves by kind (`importer_register`); `importer_get` finds them by
importing every installed app's `imports` module, the way the admin finds `admin` modules,
so the code that runs an import never names the app that owns the data.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import IO, Any

from marketing.common.errors import ApplicationError

PIPE = "|"
REPORT_HEADER = ("row", "column", "reason", "value")
REPORT_VALUE_MAX = 200
# Genres, descriptions and JSON blobs can be long; a quoted field may even span lines.
csv.field_size_limit(10 * 1024 * 1024)


@dataclass(frozen=True)
class KindSpec:
    label: str
    required: tuple[str, ...]
    example: str


# The header each kind of file needs, in normalised form (see `header_key`).
KINDS: dict[str, KindSpec] = {
    "interactions": KindSpec(
        "Interactions (Amazon Personalize)",
        ("USER_ID", "ITEM_ID", "TIMESTAMP"),
        "USER_ID,ITEM_ID,EVENT_VALUE,EVENT_TYPE,TIMESTAMP",
    ),
    "items": KindSpec(
        "Items (Amazon Personalize)", ("ITEM_ID", "TITLE"), "ITEM_ID,TITLE,...,GENRES"
    ),
    "users": KindSpec("Users (Amazon Personalize)", ("USER_ID",), "USER_ID,GENDER,E_MAIL,AGE"),
    "endpoints": KindSpec(
        "Channel endpoints (Amazon Pinpoint)",
        ("USER.USERID", "CHANNELTYPE", "ADDRESS"),
        "User.UserId,ChannelType,Address,User.UserAttributes.*",
    ),
    "posts": KindSpec(
        "Social-media posts",
        ("POST_ID", "TEXT", "CREATED_TIME"),
        "source,post_id,author,text,language,created_time,likes,shares,comments,url",
    ),
}


class CsvHeaderError(ApplicationError):
    """The file cannot be imported at all; nothing of it was stored."""

    code = "csv_header_invalid"


# --- header -------------------------------------------------------------------------------


def header_key(name: str) -> str:
    """How columns are matched: case-insensitive, surrounding blanks and a BOM ignored,
    inner spaces and hyphens read as underscores ("e-mail" is E_MAIL)."""
    return re.sub(r"[\s\-]+", "_", name.strip().lstrip("\ufeff").strip()).upper()


def attribute_key(name: str) -> str:
    """The attribute name a free column becomes: `RELEASE_YEAR` -> `release_year`,
    `User.UserAttributes.FavouriteShow` -> (after the prefix) `favourite_show`."""
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name.strip())
    return re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower()


@dataclass(frozen=True)
class CsvHeader:
    names: tuple[str, ...]  # as written in the file, stripped
    keys: tuple[str, ...]  # normalised with header_key

    def index(self, key: str) -> int | None:
        try:
            return self.keys.index(key)
        except ValueError:
            return None

    def required_index(self, key: str) -> int:
        """The position of a column `header_parse` was told is required (so it is there)."""
        index = self.index(key)
        if index is None:
            raise CsvHeaderError(
                f"The header lacks the required column {key}. Nothing was imported.",
                extra={"missing": [key], "found": list(self.names)},
            )
        return index


def header_parse(row: list[str], *, required: Iterable[str]) -> CsvHeader:
    names = tuple(n.strip().lstrip("\ufeff").strip() for n in row)
    keys = tuple(header_key(n) for n in names)
    if not any(keys):
        raise CsvHeaderError("The first row must be a header naming the columns; it is empty.")
    if any(not k for k in keys):
        position = keys.index("") + 1
        raise CsvHeaderError(f"Column {position} of the header has no name.")
    repeated = sorted(k for k, count in Counter(keys).items() if count > 1)
    if repeated:
        raise CsvHeaderError(
            f"The header names a column more than once: {', '.join(repeated)}.",
            extra={"repeated": repeated},
        )
    missing = [k for k in required if k not in keys]
    if missing:
        raise CsvHeaderError(
            f"The header lacks the required column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)}; it has {', '.join(names)}. Nothing was imported.",
            extra={"missing": missing, "found": list(names)},
        )
    return CsvHeader(names=names, keys=keys)


def header_check(
    stream: IO[bytes], *, kind: str | None = None, required: Iterable[str] = ()
) -> CsvHeader:
    """Read and check the header of an upload without reading the rest of it: the columns
    of a registered `kind`, or the `required` ones."""
    first = stream.readline(1024 * 1024)
    if not first.strip():
        raise CsvHeaderError("The file is empty.")
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CsvHeaderError("The file must be UTF-8 encoded CSV.") from exc
    row = next(csv.reader([text]), [])
    return header_parse(row, required=KINDS[kind].required if kind else required)


# --- rows ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowError:
    row: int
    column: str
    reason: str
    value: str = ""


class RowInvalid(Exception):  # noqa: N818 - raised to reject one row, not an error of ours
    """Raised by a row parser; the row goes to the report, the import goes on."""

    def __init__(self, column: str, reason: str, value: Any = ""):
        super().__init__(reason)
        self.column = column
        self.reason = reason
        self.value = "" if value is None else str(value)


def _undecodable(row: list[str]) -> bool:
    for value in row:
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return True
    return False


@dataclass
class CsvFile:
    """A CSV file opened for import: its checked header and an iterator over
    (row number, values) of the data rows. Row numbers are as a spreadsheet shows them:
    the header is row 1. Rows the csv module or UTF-8 decoding cannot read are reported to
    `errors` and skipped."""

    header: CsvHeader
    rows: Iterator[tuple[int, list[str]]]
    close: Callable[[], None]


def csv_open(path: str | Path, *, required: Iterable[str], errors: ImportReport) -> CsvFile:
    # surrogateescape: a stray Latin-1 byte spoils its row, not the whole file.
    handle = open(path, encoding="utf-8-sig", errors="surrogateescape", newline="")  # noqa: SIM115
    try:
        reader = csv.reader(handle)
        first = next(reader, None)
        if first is None or not any(v.strip() for v in first):
            raise CsvHeaderError("The file is empty.")
        if _undecodable(first):
            raise CsvHeaderError("The file must be UTF-8 encoded CSV.")
        header = header_parse(first, required=required)
    except (csv.Error, CsvHeaderError) as exc:
        handle.close()
        if isinstance(exc, csv.Error):
            raise CsvHeaderError(f"The header row is not valid CSV: {exc}.") from exc
        raise
    width = len(header.keys)

    def rows() -> Iterator[tuple[int, list[str]]]:
        number = 1
        while True:
            number += 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                errors.add(RowError(number, "", f"Not valid CSV: {exc}."))
                continue
            if not row or (len(row) == 1 and not row[0].strip()):
                errors.skip_blank()
                continue
            if _undecodable(row):
                errors.add(RowError(number, "", "Not valid UTF-8 text."))
                continue
            if len(row) != width:
                errors.add(
                    RowError(
                        number,
                        "",
                        f"Has {len(row)} value{'' if len(row) == 1 else 's'}; "
                        f"the header has {width} columns.",
                    )
                )
                continue
            yield number, row

    return CsvFile(header=header, rows=rows(), close=handle.close)


def chunked(iterable: Iterable, size: int) -> Iterator[list]:
    iterator = iter(iterable)
    while chunk := list(islice(iterator, size)):
        yield chunk


def rows_estimate(path: str | Path) -> int:
    """Data rows in the file, counted as lines (a quoted value spanning lines counts
    twice): good enough for a progress bar's total, and fast."""
    lines = 0
    last = b"\n"
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            lines += block.count(b"\n")
            last = block[-1:]
    if last != b"\n":
        lines += 1
    return max(0, lines - 1)


# --- values -------------------------------------------------------------------------------

_INT = re.compile(r"-?(?:0|[1-9]\d{0,17})")
_FLOAT = re.compile(r"-?(?:0|[1-9]\d{0,17})\.\d{1,12}")


def scalar(value: str) -> int | float | str:
    """A number when the text is plainly one (no leading zeros: "02139" stays text)."""
    if _INT.fullmatch(value):
        return int(value)
    if _FLOAT.fullmatch(value):
        return float(value)
    return value


def attribute_value(value: str) -> Any:
    """A free column's value: pipe-separated values become a list."""
    if PIPE in value:
        return [scalar(v.strip()) for v in value.split(PIPE) if v.strip()]
    return scalar(value)


_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})


def boolean(value: str, column: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise RowInvalid(column, "Must be true or false (yes/no, 1/0).", value)


def text(value: str, column: str, *, max_length: int) -> str:
    value = value.strip()
    if len(value) > max_length:
        raise RowInvalid(column, f"At most {max_length} characters; got {len(value)}.", value)
    return value


# --- report -------------------------------------------------------------------------------


@dataclass
class ImportReport:
    """Collects rejected rows and writes them, as they come, to a CSV file
    (row, column, reason, value). `rejected` counts rows, not errors."""

    path: Path
    rejected: int = 0
    errors: int = 0
    blank: int = 0
    _handle: IO[str] | None = field(default=None, repr=False)
    _writer: Any = field(default=None, repr=False)
    _last_row: int = field(default=0, repr=False)

    def add(self, error: RowError) -> None:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.path, "w", encoding="utf-8", newline="")  # noqa: SIM115
            self._writer = csv.writer(self._handle)
            self._writer.writerow(REPORT_HEADER)
        if error.row != self._last_row:
            self.rejected += 1
            self._last_row = error.row
        self.errors += 1
        value = error.value
        if len(value) > REPORT_VALUE_MAX:
            value = value[:REPORT_VALUE_MAX] + "…"
        value = value.encode("utf-8", "replace").decode("utf-8")
        self._writer.writerow((error.row, error.column, error.reason, value))

    def reject(self, row: int, exc: RowInvalid) -> None:
        self.add(RowError(row, exc.column, exc.reason, exc.value))

    def skip_blank(self) -> None:
        self.blank += 1

    def close(self) -> bool:
        """Flush the file; True when there is a report (some row was rejected)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        return self._writer is not None

    def __enter__(self) -> ImportReport:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def report_rows(path: str | Path) -> list[dict[str, str]]:
    """Read a report back (tests, the command's summary)."""
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


# --- importers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportCounts:
    """rows = imported + unchanged + rejected. `imported` rows created or changed a record
    (or stored a new event); `unchanged` rows changed nothing (a re-import, a duplicate)."""

    rows: int
    imported: int
    unchanged: int
    rejected: int
    details: dict = field(default_factory=dict)


# An importer reads `path`, writes rejected rows to `report`, calls `progress(rows_done)`
# after each chunk it stores, and returns the counts.
Importer = Callable[..., ImportCounts]
_IMPORTERS: dict[str, Importer] = {}
_discovered = False


def importer_register(kind: str, importer: Importer) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown import kind {kind!r}")
    _IMPORTERS[kind] = importer


def importer_get(kind: str) -> Importer:
    global _discovered  # noqa: PLW0603 - a registry filled once
    if kind not in _IMPORTERS and not _discovered:
        from django.utils.module_loading import autodiscover_modules

        autodiscover_modules("imports")
        _discovered = True
    try:
        return _IMPORTERS[kind]
    except KeyError:
        raise ApplicationError(
            f"No importer for {kind!r} files.", code="import_kind_unknown"
        ) from None
