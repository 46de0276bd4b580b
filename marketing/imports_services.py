"""Running a CSV import: the ImportFile row, its Job (the progress bar) and its report.

The importers themselves live with the data they write (profiles/imports.py,
recommender/imports.py) and are found by kind through marketing.common.csv_import's
registry, so this module never names an app.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import connection, transaction
from django.utils import timezone

from marketing.common.csv_import import (
    KINDS,
    ImportCounts,
    ImportReport,
    importer_get,
    rows_estimate,
)
from marketing.common.errors import ApplicationError
from marketing.imports_models import ImportFile, ImportStatus
from marketing.models import Job
from marketing.services import job_create, job_finish, job_mark_failed, job_progress, job_start

logger = logging.getLogger(__name__)

IMPORT_LOCK = 7_300_002  # pg advisory lock class: one run per import at a time
REPORT_DIR = "imports/reports"


def _sha256_of(chunks) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def _path_chunks(path: Path):
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            yield block


def import_file_create(
    *,
    kind: str,
    upload: UploadedFile | None = None,
    source_path: str | Path | None = None,
    user=None,
    schedule: bool = True,
) -> ImportFile:
    """Record an import of an uploaded file (stored under MEDIA_ROOT) or of a file read in
    place (`source_path`, the command), with its Job; with `schedule`, queue the run once
    the transaction commits."""
    if kind not in KINDS:
        raise ApplicationError(f"Unknown import kind {kind!r}.", code="import_kind_unknown")
    if upload is not None and source_path is None:
        sha256, size = _sha256_of(upload.chunks())
        upload.seek(0)
        name = Path(upload.name or "upload.csv").name
    elif source_path is not None and upload is None:
        path = Path(source_path).resolve()
        if not path.is_file():
            raise ApplicationError(f"No such file: {path}", code="import_file_missing")
        sha256, size = _sha256_of(_path_chunks(path))
        name = path.name
    else:
        raise ValueError("give exactly one of upload and source_path")
    with transaction.atomic():
        job = job_create(kind=f"{kind} import", user=user)
        import_file = ImportFile(
            kind=kind,
            original_name=name[:255],
            size=size,
            sha256=sha256,
            job=job,
            created_by=user,
        )
        if upload is not None:
            import_file.file.save(name, upload, save=False)
        else:
            import_file.source_path = str(path)
        import_file.save()
        if schedule:
            from profiles.import_tasks import import_run_task

            transaction.on_commit(lambda: import_run_task.delay(import_file.pk))
    logger.info("import created", extra={"import": import_file.pk, "kind": kind, "size": size})
    return import_file


def _source(import_file: ImportFile) -> Path:
    return Path(import_file.file.path if import_file.file else import_file.source_path)


def import_file_run(*, import_file_id: int) -> ImportFile | None:
    """Run an import to the end. Safe to call again: a finished import is a no-op, one
    running elsewhere is left alone, and an interrupted one starts over without storing
    anything twice (the importers are idempotent). A file that cannot be imported at all
    (a wrong header) fails the import with a clear message and stores nothing. Returns None
    when there is no import with that id."""
    with transaction.atomic():
        import_file = (
            ImportFile.objects.select_for_update(of=("self",), no_key=True)
            .filter(pk=import_file_id)
            .first()
        )
        if import_file is None or import_file.status in (ImportStatus.DONE, ImportStatus.FAILED):
            return import_file
        ImportFile.objects.filter(pk=import_file.pk).update(status=ImportStatus.RUNNING)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [IMPORT_LOCK, import_file.pk])
        if not cursor.fetchone()[0]:
            logger.info("import already running", extra={"import": import_file.pk})
            return import_file
    try:
        return _run(import_file)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [IMPORT_LOCK, import_file.pk])


def _run(import_file: ImportFile) -> ImportFile:
    path = _source(import_file)
    job_id = import_file.job_id
    report_name = f"{REPORT_DIR}/import-{import_file.pk}.csv"
    report_path = Path(settings.MEDIA_ROOT) / report_name
    report_path.unlink(missing_ok=True)  # from an interrupted run
    if not path.is_file():
        import_file_mark_failed(import_file_id=import_file.pk, error=f"The file is gone: {path}")
        import_file.refresh_from_db()
        return import_file
    total = rows_estimate(path)
    if job_id:
        job_start(job_id=job_id, total=total, message=f"reading {import_file.original_name}")

    def progress(done: int) -> None:
        if job_id:
            job_progress(job_id=job_id, done=min(done, total) if total else done)

    importer = importer_get(import_file.kind)
    try:
        with ImportReport(report_path) as report:
            counts: ImportCounts = importer(path=path, report=report, progress=progress)
    except ApplicationError as exc:
        report_path.unlink(missing_ok=True)
        import_file_mark_failed(import_file_id=import_file.pk, error=exc.message)
        import_file.refresh_from_db()
        return import_file
    has_report = report.rejected > 0
    message = (
        f"{counts.imported} imported, {counts.unchanged} unchanged, {counts.rejected} rejected"
    )
    ImportFile.objects.filter(pk=import_file.pk).update(
        status=ImportStatus.DONE,
        rows=counts.rows,
        imported=counts.imported,
        unchanged=counts.unchanged,
        rejected=counts.rejected,
        details=counts.details,
        report=report_name if has_report else "",
        error="",
        finished_at=timezone.now(),
    )
    if job_id:
        job_progress(job_id=job_id, done=counts.rows)
        _job_total_set(job_id=job_id, total=counts.rows)
        job_finish(job_id=job_id, result=asdict(counts), message=message)
    logger.info("import done", extra={"import": import_file.pk, **asdict(counts)})
    import_file.refresh_from_db()
    return import_file


def _job_total_set(*, job_id: int, total: int) -> None:
    """The estimate counted lines; the bar ends on the rows actually read."""
    Job.objects.filter(pk=job_id).update(total=total)


def import_file_mark_failed(*, import_file_id: int, error: str) -> None:
    """A terminal failure: the import and its job show the error. Rows stored by earlier
    chunks stay (they are valid, and a re-import skips them)."""
    import_file = ImportFile.objects.filter(pk=import_file_id).first()
    if import_file is None:
        return
    ImportFile.objects.filter(pk=import_file_id).exclude(status=ImportStatus.DONE).update(
        status=ImportStatus.FAILED, error=error[:10000], finished_at=timezone.now()
    )
    if import_file.job_id:
        job_mark_failed(job_id=import_file.job_id, error=error)
    logger.warning("import failed", extra={"import": import_file_id, "error": error[:500]})
