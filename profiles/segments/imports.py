"""Imported (static) segments: a CSV of storefront customer ids or emails becomes a segment.

The file is read with the shared CSV helpers (marketing/common/csv_import.py: BOM, blank
lines, row numbers as a spreadsheet shows them, malformed rows reported) and resolved to
customers one query per chunk of rows. Every data row ends up exactly one of:

- matched: its value names a customer (an email may name several);
- duplicate: its value already appeared on an earlier row;
- unknown: no customer (or only an erased one) has that value, the cell is empty, or the row
  itself could not be read. The first `UNKNOWN_ROWS_KEPT` are listed with their row number.

Small files are imported at once; bigger ones (more than `SYNC_MAX_ROWS` rows) run in Celery
with a Job row that the page polls for a progress bar, and the report ends in `Job.result`.
Either way the report is stored in the segment's `definition`.
"""

from __future__ import annotations

import csv
import logging
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO

from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import connection, transaction
from django.utils import timezone

from marketing.common.csv_import import (
    CsvHeader,
    CsvHeaderError,
    ImportReport,
    RowError,
    chunked,
    csv_open,
    header_check,
    rows_estimate,
)
from marketing.models import Job, JobStatus
from marketing.services import job_create, job_finish, job_mark_failed, job_progress, job_start
from profiles.models import Segment, SegmentKind
from profiles.segments.errors import SegmentImportError, SegmentKindError, SegmentNameTakenError
from profiles.segments.services import segment_create_static, segment_members_set

logger = logging.getLogger(__name__)

SEGMENT_IMPORT_CHUNK = 10_000
UNKNOWN_ROWS_KEPT = 1000
SYNC_MAX_ROWS = 20_000
UPLOAD_DIR = "imports/segments"
JOB_KIND = "segment import"

EXTERNAL_ID = "external_id"
EMAIL = "email"
# Header names (normalised by csv_import.header_key) and the customer field they match;
# when a file has both kinds, the ids win (an email may be shared by several customers).
COLUMNS: dict[str, str] = {
    "CUSTOMER_ID": EXTERNAL_ID,
    "EXTERNAL_ID": EXTERNAL_ID,
    "EMAIL": EMAIL,
    "E_MAIL": EMAIL,
}
NOT_FOUND = "No customer has this value."
EMPTY = "Empty."

Progress = Callable[[int], None]


@dataclass(frozen=True)
class SegmentImportReport:
    """rows = matched + duplicates + unknown; `members` is the number of distinct
    customers the matched rows name."""

    file_name: str
    column: str
    rows: int
    matched: int
    duplicates: int
    unknown: int
    members: int
    blank: int
    unknown_rows: list[dict] = field(default_factory=list)  # {"row", "value", "reason"}

    @property
    def unknown_rows_truncated(self) -> bool:
        return self.unknown > len(self.unknown_rows)

    def as_dict(self) -> dict:
        return {**asdict(self), "unknown_rows_truncated": self.unknown_rows_truncated}


@dataclass(frozen=True)
class SegmentImportRead:
    report: SegmentImportReport
    customer_ids: list[int]


@dataclass(frozen=True)
class SegmentImportOutcome:
    """Either the import is done (`segment` and `report`) or it runs in Celery (`job`)."""

    segment: Segment | None = None
    report: SegmentImportReport | None = None
    job: Job | None = None


class _Unknown(ImportReport):
    """csv_open's row errors, kept in memory with the unknown rows (first ones only)."""

    def __init__(self) -> None:
        super().__init__(path=Path())
        self.kept: list[dict] = []

    def add(self, error: RowError) -> None:
        self.unknown_add(error.row, error.value, error.reason)

    def unknown_add(self, row: int, value: str, reason: str) -> None:
        self.rejected += 1
        if len(self.kept) < UNKNOWN_ROWS_KEPT:
            self.kept.append({"row": row, "value": value[:200], "reason": reason})


# --- reading ------------------------------------------------------------------------------


def _column(header: CsvHeader) -> tuple[int, str]:
    for kind in (EXTERNAL_ID, EMAIL):
        for key, field_name in COLUMNS.items():
            index = header.index(key)
            if field_name == kind and index is not None:
                return index, kind
    hint = (
        " Separate the columns with commas."
        if any(sep in name for name in header.names for sep in ";\t")
        else ""
    )
    raise SegmentImportError(
        "The header must name a customer_id (or external_id) or an email column; it has "
        f"{', '.join(header.names)}. Nothing was imported.{hint}",
        extra={"errors": {"file": "no_customer_column"}, "found": list(header.names)},
    )


def segment_import_header_check(stream: IO[bytes]) -> str:
    """Check an upload's header without reading the rest; returns the column kind
    ("external_id" or "email"). The stream is rewound."""
    stream.seek(0)
    try:
        header = header_check(stream)
    except CsvHeaderError as exc:
        raise SegmentImportError(exc.message, extra={"errors": {"file": exc.code}}) from exc
    except csv.Error as exc:
        raise SegmentImportError(f"The header row is not valid CSV: {exc}.") from exc
    finally:
        stream.seek(0)
    return _column(header)[1]


def _lookup(column: str, keys: list[str]) -> dict[str, list[int]]:
    """The customers (not erased) each key names, in one query. An id matches the
    customer's external_id first, else an alias the storefront used for them."""
    if column == EMAIL:
        sql = (
            "SELECT lower(c.email), c.id, 0 FROM profiles_customer c "
            "WHERE lower(c.email) = ANY(%s) AND c.erased_at IS NULL"
        )
        params: list = [keys]
    else:
        sql = (
            "SELECT c.external_id, c.id, 0 FROM profiles_customer c "
            "WHERE c.external_id = ANY(%s) AND c.erased_at IS NULL "
            "UNION ALL "
            "SELECT a.alias, a.customer_id, 1 FROM profiles_customeralias a "
            "JOIN profiles_customer c ON c.id = a.customer_id AND c.erased_at IS NULL "
            "WHERE a.alias = ANY(%s)"
        )
        params = [keys, keys]
    found: dict[str, list[int]] = {}
    rank: dict[str, int] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for key, pk, priority in cursor.fetchall():
            if key not in rank or priority < rank[key]:
                rank[key], found[key] = priority, [pk]
            elif priority == rank[key]:
                found[key].append(pk)
    return found


def segment_import_read(
    *, path: str | Path, file_name: str, progress: Progress | None = None
) -> SegmentImportRead:
    """Read the file and resolve its rows to customers; stores nothing. Raises
    SegmentImportError for a file that cannot be imported at all."""
    unknown = _Unknown()
    try:
        source = csv_open(path, required=(), errors=unknown)
    except CsvHeaderError as exc:
        raise SegmentImportError(exc.message, extra={"errors": {"file": exc.code}}) from exc
    try:
        index, column = _column(source.header)
        seen: set[str] = set()
        customer_ids: dict[int, None] = {}
        matched = duplicates = 0
        for chunk in chunked(source.rows, SEGMENT_IMPORT_CHUNK):
            values = [(number, row[index].strip()) for number, row in chunk]
            keys = {v.lower() if column == EMAIL else v for _, v in values if v} - seen
            found = _lookup(column, sorted(keys)) if keys else {}
            for number, value in values:
                key = value.lower() if column == EMAIL else value
                if not key:
                    unknown.unknown_add(number, value, EMPTY)
                elif key in seen:
                    duplicates += 1
                else:
                    seen.add(key)
                    if key in found:
                        matched += 1
                        customer_ids.update(dict.fromkeys(found[key]))
                    else:
                        unknown.unknown_add(number, value, NOT_FOUND)
            if progress is not None:
                progress(chunk[-1][0] - 1)  # data lines read, blank and unreadable ones too
    finally:
        source.close()
    rows = matched + duplicates + unknown.rejected  # with the rows csv_open could not read
    if rows == 0:
        raise SegmentImportError(
            "The file has no rows after the header. Nothing was imported.",
            extra={"errors": {"file": "empty"}},
        )
    report = SegmentImportReport(
        file_name=file_name,
        column=column,
        rows=rows,
        matched=matched,
        duplicates=duplicates,
        unknown=unknown.rejected,
        members=len(customer_ids),
        blank=unknown.blank,
        unknown_rows=unknown.kept,
    )
    return SegmentImportRead(report=report, customer_ids=list(customer_ids))


def _definition(report: SegmentImportReport) -> dict:
    return {
        "source": "import",
        "file_name": report.file_name,
        "rows": report.rows,
        "matched": report.matched,
        "unknown": report.unknown,
        "column": report.column,
        "duplicates": report.duplicates,
        "members": report.members,
        "imported_at": timezone.now().isoformat(),
        "report": report.as_dict(),
    }


# --- storing ------------------------------------------------------------------------------


def segment_import_save(
    *,
    read: SegmentImportRead,
    name: str = "",
    description: str = "",
    segment: Segment | None = None,
    user=None,
) -> Segment:
    """Create an imported segment from what was read, or (`segment` given) replace the
    members of an existing imported segment, keeping its name."""
    definition = _definition(read.report)
    if segment is None:
        return segment_create_static(
            name=name,
            kind=SegmentKind.IMPORTED,
            customer_ids=read.customer_ids,
            description=description,
            definition=definition,
            user=user,
        )
    if segment.kind != SegmentKind.IMPORTED:
        raise SegmentKindError("Only an imported segment can have its members replaced.")
    with transaction.atomic():
        Segment.objects.filter(pk=segment.pk).update(
            definition=definition, updated_at=timezone.now()
        )
        segment_members_set(segment=segment, customer_ids=read.customer_ids)
    segment.refresh_from_db()
    return segment


def segment_import_file(
    *,
    path: str | Path,
    file_name: str,
    name: str = "",
    description: str = "",
    segment: Segment | None = None,
    user=None,
    progress: Progress | None = None,
) -> tuple[Segment, SegmentImportReport]:
    """Read and store in one go (the synchronous path, tests, a command)."""
    read = segment_import_read(path=path, file_name=file_name, progress=progress)
    saved = segment_import_save(
        read=read, name=name, description=description, segment=segment, user=user
    )
    logger.info("segment imported", extra={"segment": saved.pk, **_counts(read.report)})
    return saved, read.report


def _counts(report: SegmentImportReport) -> dict:
    return {
        "rows": report.rows,
        "matched": report.matched,
        "duplicates": report.duplicates,
        "unknown": report.unknown,
        "members": report.members,
    }


def _name_check(name: str) -> None:
    if Segment.objects.filter(name=name).exists():
        raise SegmentNameTakenError.for_name(name)


def segment_import_start(
    *,
    file: UploadedFile,
    name: str = "",
    description: str = "",
    segment: Segment | None = None,
    user=None,
    sync_max_rows: int | None = None,
) -> SegmentImportOutcome:
    """Import an uploaded file: at once when it is small, else in Celery (the outcome
    carries the Job). A bad header or a taken name is refused before anything is stored."""
    segment_import_header_check(file)
    if segment is None:
        _name_check(name)
    elif segment.kind != SegmentKind.IMPORTED:
        raise SegmentKindError("Only an imported segment can have its members replaced.")
    file_name = Path(file.name or "upload.csv").name[:255]
    stored = default_storage.save(f"{UPLOAD_DIR}/{uuid.uuid4().hex}.csv", file)
    path = Path(default_storage.path(stored))
    if rows_estimate(path) <= (SYNC_MAX_ROWS if sync_max_rows is None else sync_max_rows):
        try:
            saved, report = segment_import_file(
                path=path,
                file_name=file_name,
                name=name,
                description=description,
                segment=segment,
                user=user,
            )
        finally:
            default_storage.delete(stored)
        return SegmentImportOutcome(segment=saved, report=report)
    from profiles.segments.import_tasks import segment_import_task

    with transaction.atomic():
        job = job_create(kind=JOB_KIND, user=user)
        kwargs = {
            "job_id": job.pk,
            "stored": stored,
            "file_name": file_name,
            "name": name,
            "description": description,
            "segment_id": segment.pk if segment is not None else None,
            "user_id": user.pk if user is not None and user.is_authenticated else None,
        }
        transaction.on_commit(lambda: segment_import_task.delay(**kwargs))
    logger.info("segment import queued", extra={"job": job.pk, "file": file_name})
    return SegmentImportOutcome(job=job)


def segment_import_run(
    *,
    job_id: int,
    stored: str,
    file_name: str,
    name: str = "",
    description: str = "",
    segment_id: int | None = None,
    user_id: int | None = None,
) -> Job | None:
    """The Celery side of `segment_import_start`. Idempotent: a finished job is a no-op, and
    the segment is stored in the same transaction that finishes the job, so a redelivered
    task that ran to the end finds the job done. A file that cannot be imported fails the
    job with a clear message and stores nothing."""
    job = Job.objects.filter(pk=job_id).first()
    if job is None or job.status in (JobStatus.DONE, JobStatus.FAILED):
        return job
    try:
        path = Path(default_storage.path(stored))
        if not path.is_file():
            raise SegmentImportError("The uploaded file is gone; upload it again.")
        total = rows_estimate(path)
        job_start(job_id=job_id, total=total, message=f"reading {file_name}")
        read = segment_import_read(
            path=path,
            file_name=file_name,
            progress=lambda done: job_progress(job_id=job_id, done=min(done, total)),
        )
        with transaction.atomic():
            locked = Job.objects.select_for_update(of=("self",), no_key=True).get(pk=job_id)
            if locked.status != JobStatus.RUNNING:
                return locked  # another delivery finished it meanwhile
            segment = None
            if segment_id is not None:
                segment = Segment.objects.filter(pk=segment_id).first()
                if segment is None:
                    raise SegmentImportError("The segment was deleted meanwhile.")
            user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
            saved = segment_import_save(
                read=read, name=name, description=description, segment=segment, user=user
            )
            Job.objects.filter(pk=job_id).update(total=read.report.rows)
            job_finish(
                job_id=job_id,
                result={"segment": saved.pk, "report": read.report.as_dict()},
                message=f"{read.report.matched} matched, {read.report.duplicates} duplicates, "
                f"{read.report.unknown} unknown",
            )
    except (SegmentImportError, SegmentNameTakenError, SegmentKindError) as exc:
        job_mark_failed(job_id=job_id, error=exc.message)
    else:
        logger.info("segment imported", extra={"segment": saved.pk, **_counts(read.report)})
    default_storage.delete(stored)
    return Job.objects.get(pk=job_id)


def segment_import_mark_failed(*, job_id: int, stored: str, error: str) -> None:
    """A terminal failure of the task (retries ran out, an unexpected error)."""
    Job.objects.filter(pk=job_id).exclude(status=JobStatus.DONE).update(
        status=JobStatus.FAILED, finished_at=timezone.now(), error=error[:10000]
    )
    default_storage.delete(stored)


# --- reading back -------------------------------------------------------------------------


def imported_segment_get(*, pk: int) -> Segment | None:
    return Segment.objects.filter(pk=pk, kind=SegmentKind.IMPORTED).first()


def segment_import_job_get(*, pk: int) -> tuple[Job, Segment | None] | None:
    """A segment import's Job and, once it is done, the segment it made."""
    job = Job.objects.filter(pk=pk, kind=JOB_KIND).first()
    if job is None:
        return None
    segment_id = job.result.get("segment") if job.status == JobStatus.DONE else None
    return job, Segment.objects.filter(pk=segment_id).first() if segment_id else None
