from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

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
        (b"email;name\na@b.c;x\n", "The header must name a customer_id (or external_id) or an "),
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "The file must be UTF-8 encoded CSV."),
        (b"customer_id\n", "The file has no rows after the header."),
        (b"customer_id\n\n\n", "The file has no rows after the header."),
    ],
)
def test_a_file_that_cannot_be_imported_creates_nothing(tmp_path, data, message):
    with pytest.raises(SegmentImportError) as caught:
        segment_import_file(path=_file(tmp_path, data), file_name="bad.csv", name="Bad")

    assert caught.value.message.startswith(message)
    assert caught.value.message.endswith("Separate the columns with commas.") == (b";" in data)
    _nothing_created()


def test_header_check_names_the_column_kind():
    upload = SimpleUploadedFile("x.csv", b"\xef\xbb\xbfE-Mail\na@b.c\n")

    assert segment_import_header_check(upload) == "email"
    assert upload.read() == b"\xef\xbb\xbfE-Mail\na@b.c\n"  # rewound


def test_name_taken_creates_nothing(tmp_path, customers):
    SegmentFactory(name="Taken")
    upload = SimpleUploadedFile("x.csv", b"customer_id\nc1\n")

    with pytest.raises(SegmentNameTakenError):
        segment_import_start(file=upload, name="Taken")

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
            file=SimpleUploadedFile("x.csv", b"customer_id\nc1\n"), segment=segment
        )

    assert SegmentMembership.objects.count() == 0


def test_big_file_runs_in_the_task_with_a_job(
    customers, marketer, django_capture_on_commit_callbacks
):
    upload = SimpleUploadedFile("big.csv", b"customer_id\nc1\nc2\nnope\nc1\n")

    with django_capture_on_commit_callbacks() as callbacks:
        outcome = segment_import_start(file=upload, name="Big", user=marketer, sync_max_rows=2)

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


# --- pages --------------------------------------------------------------------------------


def _post(client, url=None, data: bytes = b"customer_id\nc1\nnope\nc2\n", **fields):
    payload = {"name": "Imported VIPs", "description": "From the CRM", **fields}
    payload["file"] = SimpleUploadedFile("crm.csv", data, "text/csv")
    return client.post(url or reverse("profiles:segment-import"), payload, HTTP_HX_REQUEST="true")


def test_segment_list_offers_the_import_to_editors_only(marketer_client, client, analyst):
    SegmentFactory(name="Listed", kind=SegmentKind.IMPORTED)
    html = marketer_client.get(reverse("profiles:segment-list")).content.decode()
    assert reverse("profiles:segment-import") in html
    assert "Replace members" in html

    client.force_login(analyst)
    html = client.get(reverse("profiles:segment-list")).content.decode()
    assert reverse("profiles:segment-import") not in html
    assert "Replace members" not in html


def test_import_page_shows_the_form(marketer_client):
    response = marketer_client.get(reverse("profiles:segment-import"))

    assert response.status_code == 200
    html = response.content.decode()
    assert "Upload a list of customers" in html
    assert 'name="name"' in html
    assert 'name="file"' in html


def test_upload_creates_the_segment_and_shows_the_report(marketer_client, marketer, customers):
    response = _post(marketer_client)

    assert response.status_code == 200
    segment = Segment.objects.get()
    assert (segment.name, segment.description, segment.kind, segment.created_by) == (
        "Imported VIPs",
        "From the CRM",
        "imported",
        marketer,
    )
    assert _members(segment) == {customers[0].pk, customers[1].pk}
    html = response.content.decode()
    assert "<html" not in html  # the panel only
    assert f'href="/segments/{segment.pk}/"' in html
    assert "Imported crm.csv into" in html
    assert '<td class="num">3</td><td class="mono">nope</td>' in html
    assert "<b>2</b> matched" in html
    assert "<b>1</b> unknown" in html


def test_upload_with_a_bad_header_rerenders_the_form_and_creates_nothing(marketer_client):
    response = _post(marketer_client, data=b"phone\n123\n")

    assert response.status_code == 200
    assert "The header must name a customer_id (or external_id) or an email column; it has " in (
        response.content.decode()
    )
    _nothing_created()


def test_upload_with_a_taken_name_shows_the_error_and_creates_nothing(marketer_client, customers):
    SegmentFactory(name="Imported VIPs")

    response = _post(marketer_client)

    assert response.status_code == 200
    assert "A segment named &#x27;Imported VIPs&#x27; already exists." in response.content.decode()
    assert Segment.objects.count() == 1
    assert SegmentMembership.objects.count() == 0


def test_analyst_cannot_upload(analyst_client, customers):
    html = analyst_client.get(reverse("profiles:segment-import")).content.decode()
    assert "Upload a list of customers" not in html

    response = _post(analyst_client)

    assert response.status_code == 403
    _nothing_created()


def test_replace_members_page_keeps_the_name(marketer_client, customers):
    segment = SegmentFactory(name="Old list", kind=SegmentKind.IMPORTED)
    url = reverse("profiles:segment-import-replace", args=[segment.pk])

    response = _post(marketer_client, url, data=b"email\ncy@example.com\n", name="Ignored")

    assert response.status_code == 200
    segment.refresh_from_db()
    assert segment.name == "Old list"
    assert _members(segment) == {customers[2].pk}
    assert segment.definition["file_name"] == "crm.csv"
    assert Segment.objects.count() == 1


def test_replace_members_is_only_for_imported_segments(marketer_client):
    segment = SegmentFactory(kind=SegmentKind.RULES)

    response = marketer_client.get(reverse("profiles:segment-import-replace", args=[segment.pk]))

    assert response.status_code == 404


def test_big_upload_shows_a_progress_bar_then_the_report(
    marketer_client, customers, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(imports, "SYNC_MAX_ROWS", 1)
    with django_capture_on_commit_callbacks() as callbacks:
        response = _post(marketer_client)

    job = Job.objects.get()
    assert len(callbacks) == 1
    assert Segment.objects.count() == 0
    html = response.content.decode()
    job_url = reverse("profiles:segment-import-job", args=[job.pk])
    assert f'hx-get="{job_url}"' in html
    assert "Importing the list" in html

    segment_import_task(
        job_id=job.pk,
        stored=_stored_name(),
        file_name="crm.csv",
        name="Imported VIPs",
        user_id=None,
    )

    html = marketer_client.get(job_url).content.decode()
    segment = Segment.objects.get()
    assert "hx-trigger" not in html  # polling stops
    assert f'href="/segments/{segment.pk}/"' in html
    assert '<td class="num">3</td><td class="mono">nope</td>' in html


# --- API ----------------------------------------------------------------------------------

API_URL = "/api/v1/segments/import"


def _api_post(api_client, data: bytes = b"customer_id\nc1\nnope\nc2\nc1\n", url=API_URL, **fields):
    payload = {"name": "API list", "description": "nightly", **fields}
    payload["file"] = SimpleUploadedFile("nightly.csv", data, "text/csv")
    return api_client.post(url, payload, format="multipart")


def test_api_creates_the_segment_and_answers_the_report(api_client, marketer, customers):
    api_client.force_login(marketer)

    response = _api_post(api_client)

    assert response.status_code == 201
    segment = Segment.objects.get()
    assert response.json() == {
        "segment_id": segment.pk,
        "segment_name": "API list",
        "file_name": "nightly.csv",
        "column": "external_id",
        "rows": 4,
        "matched": 2,
        "duplicates": 1,
        "unknown": 1,
        "members": 2,
        "blank": 0,
        "unknown_rows": [{"row": 3, "value": "nope", "reason": "No customer has this value."}],
        "unknown_rows_truncated": False,
    }
    assert (segment.description, segment.kind, segment.created_by) == (
        "nightly",
        "imported",
        marketer,
    )
    assert _members(segment) == {customers[0].pk, customers[1].pk}


@pytest.mark.parametrize(
    ("fields", "data", "errors"),
    [
        (
            {},
            b"phone\n1\n",
            {
                "file": [
                    "The header must name a customer_id (or external_id) or an email column; "
                    "it has phone. Nothing was imported."
                ]
            },
        ),
        ({}, b"", {"file": ["The submitted file is empty."]}),
        (
            {},
            b"email\n\n",
            {"file": ["The file has no rows after the header. Nothing was imported."]},
        ),
        ({"name": ""}, b"email\na@b.c\n", {"name": ["This field may not be blank."]}),
    ],
)
def test_api_refuses_bad_input_with_field_errors(api_client, marketer, fields, data, errors):
    api_client.force_login(marketer)

    response = _api_post(api_client, data, **fields)

    assert response.status_code == 400
    assert response.json() == {
        "code": "invalid",
        "message": "Invalid input.",
        "extra": {"fields": errors},
    }
    _nothing_created()


def test_api_answers_409_for_a_taken_name(api_client, marketer, customers):
    SegmentFactory(name="API list")
    api_client.force_login(marketer)

    response = _api_post(api_client)

    assert response.status_code == 409
    assert response.json()["code"] == "segment_name_taken"
    assert Segment.objects.count() == 1
    assert SegmentMembership.objects.count() == 0


def test_api_refuses_analysts_anonymous_callers_and_storefront_keys(
    api_client, analyst, storefront_key, customers
):
    assert _api_post(api_client).status_code == 403
    api_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {storefront_key[1]}")
    assert _api_post(api_client).status_code == 403
    api_client.credentials()
    api_client.force_login(analyst)
    assert _api_post(api_client).status_code == 403
    _nothing_created()


def test_api_replaces_members_of_an_imported_segment(api_client, marketer, customers):
    segment = SegmentFactory(name="Nightly", kind=SegmentKind.IMPORTED)
    api_client.force_login(marketer)

    response = _api_post(
        api_client, b"email\nCY@example.com\n", url=f"/api/v1/segments/{segment.pk}/import"
    )

    assert response.status_code == 200
    assert (response.json()["segment_name"], response.json()["members"]) == ("Nightly", 1)
    assert _members(segment) == {customers[2].pk}
    rules = SegmentFactory(kind=SegmentKind.RULES)
    assert _api_post(api_client, url=f"/api/v1/segments/{rules.pk}/import").status_code == 404


def test_api_queues_a_big_file(api_client, marketer, customers, monkeypatch):
    monkeypatch.setattr(imports, "SYNC_MAX_ROWS", 1)
    api_client.force_login(marketer)

    response = _api_post(api_client)

    assert response.status_code == 202
    assert response.json() == {"job_id": Job.objects.get().pk, "status": "pending"}
    assert Segment.objects.count() == 0
