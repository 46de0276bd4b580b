import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from marketing.imports_models import ImportFile, ImportStatus
from marketing.models import Job
from profiles.import_tasks import import_run_task
from profiles.models import Customer, Event

INTERACTIONS = (
    b"USER_ID,ITEM_ID,EVENT_VALUE,EVENT_TYPE,TIMESTAMP\n"
    b"u1,i1,4,Watch,1700000000\n"
    b"u2,i2,1,Watch,not-a-time\n"
    b"u3,i3,,Purchase,1700000300\n"
)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def _upload(client, data: bytes = INTERACTIONS, kind: str = "interactions", **headers):
    return client.post(
        reverse("profiles:import-list"),
        {"kind": kind, "file": SimpleUploadedFile("interactions.csv", data, "text/csv")},
        **headers,
    )


def test_customers_page_links_to_imports(analyst_client):
    html = analyst_client.get(reverse("profiles:customer-list")).content.decode()

    assert reverse("profiles:import-list") in html


def test_marketer_sees_the_upload_form(marketer_client):
    response = marketer_client.get(reverse("profiles:import-list"))

    assert response.status_code == 200
    assert "Upload a CSV file" in response.content.decode()


def test_analyst_sees_no_form_and_cannot_upload(analyst_client, django_capture_on_commit_callbacks):
    html = analyst_client.get(reverse("profiles:import-list")).content.decode()
    assert "Upload a CSV file" not in html

    with django_capture_on_commit_callbacks() as callbacks:
        response = _upload(analyst_client)

    assert response.status_code == 403
    assert ImportFile.objects.count() == 0
    assert callbacks == []


def test_upload_runs_in_the_task_and_the_progress_bar_shows_done(
    marketer_client, marketer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = _upload(marketer_client, HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    html = response.content.decode()
    import_file = ImportFile.objects.get()
    assert f"Import #{import_file.pk} of interactions.csv started" in html
    assert reverse("job-detail", args=[import_file.job_id]) in html  # the polling fragment
    assert "<html" not in html  # the fragment only
    assert len(callbacks) == 1
    assert (import_file.kind, import_file.status, import_file.created_by) == (
        "interactions",
        ImportStatus.PENDING,
        marketer,
    )
    assert import_file.size == len(INTERACTIONS)
    assert import_file.file.read() == INTERACTIONS

    result = import_run_task(import_file.pk)

    assert result == {
        "import": import_file.pk,
        "status": "done",
        "rows": 3,
        "imported": 2,
        "unchanged": 0,
        "rejected": 1,
    }
    fragment = marketer_client.get(reverse("job-detail", args=[import_file.job_id]))
    assert "Done · 3/3" in fragment.content.decode()
    assert "2 imported, 0 unchanged, 1 rejected" in fragment.content.decode()
    assert "hx-trigger" not in fragment.content.decode()  # polling stops

    # Redelivered: the task is a no-op.
    assert import_run_task(import_file.pk)["imported"] == 2
    assert Event.objects.count() == 2
    assert Customer.objects.count() == 2


def test_uploading_the_same_file_twice_changes_nothing(marketer_client):
    with_first = _upload(marketer_client)
    assert with_first.status_code == 302
    first = ImportFile.objects.get()
    import_run_task(first.pk)
    events = sorted(Event.objects.values_list("pk", flat=True))

    _upload(marketer_client)
    second = ImportFile.objects.exclude(pk=first.pk).get()
    import_run_task(second.pk)
    second.refresh_from_db()

    assert (second.imported, second.unchanged, second.rejected) == (0, 2, 1)
    assert second.sha256 == first.sha256
    assert sorted(Event.objects.values_list("pk", flat=True)) == events


def test_upload_with_a_wrong_header_rerenders_the_form(
    marketer_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = _upload(
            marketer_client, b"USER_ID,TIMESTAMP\nu1,1700000000\n", HTTP_HX_REQUEST="true"
        )

    assert response.status_code == 200
    assert (
        "The header lacks the required column ITEM_ID; it has USER_ID, TIMESTAMP."
        in response.content.decode()
    )
    assert ImportFile.objects.count() == 0
    assert Job.objects.count() == 0
    assert callbacks == []


def test_upload_of_an_empty_file_is_refused(marketer_client):
    response = _upload(marketer_client, b"")

    assert response.status_code == 200
    assert "The submitted file is empty." in response.content.decode()
    assert ImportFile.objects.count() == 0


def test_list_shows_counts_and_report_download(marketer_client, analyst):
    _upload(marketer_client)
    import_file = ImportFile.objects.get()
    import_run_task(import_file.pk)
    analyst_client = Client()
    analyst_client.force_login(analyst)

    html = analyst_client.get(reverse("profiles:import-list")).content.decode()
    report_url = reverse("profiles:import-report", args=[import_file.pk])
    assert report_url in html
    assert "Download report" in html

    response = analyst_client.get(report_url)

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    assert response["Content-Disposition"] == (
        f'attachment; filename="import-{import_file.pk}-report.csv"'
    )
    body = b"".join(response.streaming_content).decode()
    assert body.splitlines() == [
        "row,column,reason,value",
        "3,TIMESTAMP,Must be Unix epoch seconds (e.g. 1700000000) or an ISO 8601 date-time.,"
        "not-a-time",
    ]


def test_report_needs_login_and_an_existing_report(client, marketer_client):
    _upload(marketer_client, b"USER_ID,ITEM_ID,TIMESTAMP\nu1,i1,1700000000\n")
    import_file = ImportFile.objects.get()
    import_run_task(import_file.pk)
    url = reverse("profiles:import-report", args=[import_file.pk])

    assert marketer_client.get(url).status_code == 404  # nothing was rejected
    marketer_client.logout()
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
