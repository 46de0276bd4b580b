from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from marketing.models import Job, JobStatus
from profiles.models import (
    CustomerAlias,
    Segment,
    SegmentKind,
    SegmentMembership,
    SegmentSnapshot,
)
from profiles.segments import imports
from profiles.segments.errors import SegmentImportError, SegmentKindError, SegmentNameTakenError
from profiles.segments.import_tasks import segment_import_task
from profiles.segments.imports import (
    segment_import_file,
    segment_import_header_check,
    segment_import_start,
)
from tests.profiles.factories import CustomerFactory, SegmentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def customers():
    return [
        CustomerFactory(external_id="c1", email="Ann@Example.com"),
        CustomerFactory(external_id="c2", email="bob@example.com"),
        CustomerFactory(external_id="c3", email="cy@example.com"),
    ]


def _file(tmp_path, data: bytes, name: str = "list.csv"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _members(segment) -> set[int]:
    return set(
        SegmentMembership.objects.filter(segment=segment).values_list("customer_id", flat=True)
    )


def _nothing_created():
    assert Segment.objects.count() == 0
    assert SegmentMembership.objects.count() == 0
    assert Job.objects.count() == 0


# --- service ------------------------------------------------------------------------------


def test_ids_file_becomes_a_segment_and_unknown_rows_are_numbered(tmp_path, customers):
    path = _file(tmp_path, b"customer_id,note\nc1,a\nnope,b\nc2,c\n\nc1,d\n,e\n")

    segment, report = segment_import_file(path=path, file_name="list.csv", name="VIPs")

    assert segment.kind == SegmentKind.IMPORTED
    assert _members(segment) == {customers[0].pk, customers[1].pk}
    assert segment.member_count == 2
    assert (report.rows, report.matched, report.duplicates, report.unknown) == (5, 2, 1, 2)
    assert (report.members, report.blank, report.column) == (2, 1, "external_id")
    assert report.unknown_rows == [
        {"row": 3, "value": "nope", "reason": "No customer has this value."},
        {"row": 7, "value": "", "reason": "Empty."},
    ]
    definition = segment.definition
    assert {k: definition[k] for k in ("source", "file_name", "rows", "matched", "unknown")} == {
        "source": "import",
        "file_name": "list.csv",
        "rows": 5,
        "matched": 2,
        "unknown": 2,
    }
    assert definition["column"] == "external_id"
    assert definition["report"]["unknown_rows"] == report.unknown_rows
    assert definition["report"]["unknown_rows_truncated"] is False


def test_emails_match_case_insensitively_with_bom_and_whitespace(tmp_path, customers):
    path = _file(
        tmp_path, "\ufeff Email \r\n  ann@example.COM \r\nBOB@example.com\r\nzed@x.org\r\n".encode()
    )

    segment, report = segment_import_file(path=path, file_name="e.csv", name="By email")

    assert report.column == "email"
    assert _members(segment) == {customers[0].pk, customers[1].pk}
    assert (report.rows, report.matched, report.duplicates, report.unknown) == (3, 2, 0, 1)
    assert report.unknown_rows == [
        {"row": 4, "value": "zed@x.org", "reason": "No customer has this value."}
    ]


def test_duplicates_count_once_whatever_the_case_of_an_email(tmp_path, customers):
    path = _file(tmp_path, b"email\nann@example.com\nANN@example.com\nzed@x.org\nzed@x.org\n")

    _, report = segment_import_file(path=path, file_name="e.csv", name="Dupes")

    assert (report.rows, report.matched, report.duplicates, report.unknown) == (4, 1, 2, 1)


def test_an_email_shared_by_two_customers_brings_both(tmp_path):
    a = CustomerFactory(email="family@example.com")
    b = CustomerFactory(email="Family@example.com")

    segment, report = segment_import_file(
        path=_file(tmp_path, b"email\nfamily@example.com\n"), file_name="f.csv", name="Family"
    )

    assert (report.matched, report.members) == (1, 2)
    assert _members(segment) == {a.pk, b.pk}


def test_erased_customers_count_as_unknown(tmp_path, customers):
    CustomerFactory(external_id="gone", erased_at="2026-01-01T00:00:00Z")

    segment, report = segment_import_file(
        path=_file(tmp_path, b"external_id\ngone\nc3\n"), file_name="x.csv", name="E"
    )

    assert _members(segment) == {customers[2].pk}
    assert report.unknown_rows == [
        {"row": 2, "value": "gone", "reason": "No customer has this value."}
    ]


def test_an_alias_of_a_customer_matches_it(tmp_path, customers):
    CustomerAlias.objects.create(alias="cookie-9", customer=customers[2])

    segment, report = segment_import_file(
        path=_file(tmp_path, b"customer_id\ncookie-9\n"), file_name="x.csv", name="A"
    )

    assert (report.matched, _members(segment)) == (1, {customers[2].pk})


def test_ids_win_when_a_file_has_both_columns(tmp_path, customers):
    path = _file(tmp_path, b"email,customer_id\nbob@example.com,c1\n")

    segment, report = segment_import_file(path=path, file_name="x.csv", name="Both")

    assert (report.column, _members(segment)) == ("external_id", {customers[0].pk})


def test_malformed_rows_are_reported_with_their_number(tmp_path, customers):
    path = _file(tmp_path, b"customer_id,note\nc1,a\nc2\nc3,c\n")

    _, report = segment_import_file(path=path, file_name="x.csv", name="M")

    assert (report.rows, report.matched, report.unknown) == (3, 2, 1)
    assert report.unknown_rows == [
        {"row": 3, "value": "", "reason": "Has 1 value; the header has 2 columns."}
    ]


def test_only_the_first_unknown_rows_are_kept_in_the_report(tmp_path, monkeypatch, customers):
    monkeypatch.setattr(imports, "UNKNOWN_ROWS_KEPT", 2)
    monkeypatch.setattr(imports, "SEGMENT_IMPORT_CHUNK", 2)  # and several chunks
    path = _file(tmp_path, b"customer_id\nx1\nc1\nx2\nx3\nc2\nx1\n")

    segment, report = segment_import_file(path=path, file_name="x.csv", name="Many")

    assert (report.rows, report.matched, report.duplicates, report.unknown) == (6, 2, 1, 3)
    assert [r["row"] for r in report.unknown_rows] == [2, 4]
    assert segment.definition["report"]["unknown_rows_truncated"] is True


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty."),
        (b"\n\n", "The file is empty."),
        (b"phone,name\n123,x\n", "The header must name a customer_id (or external_id) or an "),
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "The file must be UTF-8 encoded CSV."),
        (b"customer_id\n", "The file has no rows after the header."),
        (b"customer_id\n\n\n", "The file has no rows after the header."),
    ],
)
def test_a_file_that_cannot_be_imported_creates_nothing(tmp_path, data, message):
    with pytest.raises(SegmentImportError) as caught:
        segment_import_file(path=_file(tmp_path, data), file_name="bad.csv", name="Bad")

    assert caught.value.message.startswith(message)
    _nothing_created()


def test_header_check_names_the_column_kind():
    upload = SimpleUploadedFile("x.csv", b"\xef\xbb\xbfE-Mail\na@b.c\n")

    assert segment_import_header_check(upload) == "email"
    assert upload.read() == b"\xef\xbb\xbfE-Mail\na@b.c\n"  # rewound


def test_name_taken_creates_nothing(tmp_path, customers):
    SegmentFactory(name="Taken")
    upload = SimpleUploadedFile("x.csv", b"customer_id\nc1\n")

    with pytest.raises(SegmentNameTakenError):
        segment_import_start(upload=upload, name="Taken")

    assert Segment.objects.count() == 1
    assert SegmentMembership.objects.count() == 0
    assert Job.objects.count() == 0


def test_replace_members_keeps_the_name_and_records_the_change(tmp_path, customers):
    segment, _ = segment_import_file(
        path=_file(tmp_path, b"customer_id\nc1\nc2\n"), file_name="one.csv", name="Keep me"
    )

    replaced, report = segment_import_file(
        path=_file(tmp_path, b"customer_id\nc2\nc3\nnew\n", "two.csv"),
        file_name="two.csv",
        segment=segment,
    )

    assert replaced.pk == segment.pk
    assert replaced.name == "Keep me"
    assert _members(replaced) == {customers[1].pk, customers[2].pk}
    assert replaced.definition["file_name"] == "two.csv"
    assert (report.matched, report.unknown) == (2, 1)
    assert list(
        SegmentSnapshot.objects.filter(segment=segment)
        .order_by("taken_at")
        .values_list("size", "entered", "left")
    ) == [(2, 2, 0), (2, 1, 1)]


def test_replace_is_refused_for_a_rule_segment(tmp_path, customers):
    segment = SegmentFactory(kind=SegmentKind.RULES)

    with pytest.raises(SegmentKindError):
        segment_import_start(
            upload=SimpleUploadedFile("x.csv", b"customer_id\nc1\n"), segment=segment
        )

    assert SegmentMembership.objects.count() == 0


def test_big_file_runs_in_the_task_with_a_job(
    customers, marketer, django_capture_on_commit_callbacks
):
    upload = SimpleUploadedFile("big.csv", b"customer_id\nc1\nc2\nnope\nc1\n")

    with django_capture_on_commit_callbacks() as callbacks:
        outcome = segment_import_start(upload=upload, name="Big", user=marketer, sync_max_rows=2)

    assert outcome.segment is None
    assert outcome.job is not None
    assert outcome.job.status == JobStatus.PENDING
    assert Segment.objects.count() == 0
    assert len(callbacks) == 1
    kwargs = {
        "job_id": outcome.job.pk,
        "stored": _stored_name(),
        "file_name": "big.csv",
        "name": "Big",
        "description": "",
        "segment_id": None,
        "user_id": marketer.pk,
    }

    result = segment_import_task(**kwargs)

    segment = Segment.objects.get(name="Big")
    assert result == {"job": outcome.job.pk, "status": "done", "segment": segment.pk}
    job = Job.objects.get()
    assert (job.status, job.done, job.total) == ("done", 4, 4)
    assert job.message == "2 matched, 1 duplicates, 1 unknown"
    assert job.result["report"]["unknown_rows"] == [
        {"row": 4, "value": "nope", "reason": "No customer has this value."}
    ]
    assert segment.created_by == marketer
    assert _members(segment) == {customers[0].pk, customers[1].pk}

    # Redelivered: a no-op (the stored file is gone, the job is done).
    assert segment_import_task(**kwargs)["status"] == "done"
    assert Segment.objects.count() == 1
    assert SegmentSnapshot.objects.count() == 1


def _stored_name() -> str:
    """The upload waiting for the task under MEDIA_ROOT."""
    files = list((Path(settings.MEDIA_ROOT) / imports.UPLOAD_DIR).glob("*.csv"))
    assert len(files) == 1
    return f"{imports.UPLOAD_DIR}/{files[0].name}"
