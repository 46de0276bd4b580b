import pytest
from django.urls import reverse

from marketing.common.context_processors import NAVIGATION
from marketing.models import Job

NAV_URL_NAMES = [name for _, name in NAVIGATION]


@pytest.mark.parametrize("url_name", NAV_URL_NAMES)
def test_anonymous_user_is_redirected_to_login_from_every_nav_page(client, db, url_name):
    url = reverse(url_name)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


@pytest.mark.parametrize("url_name", NAV_URL_NAMES)
@pytest.mark.parametrize("client_fixture", ["marketer_client", "analyst_client"])
def test_every_nav_page_renders_for_marketer_and_analyst(request, client_fixture, url_name):
    client = request.getfixturevalue(client_fixture)
    response = client.get(reverse(url_name))
    assert response.status_code == 200
    assert b'<nav class="mainnav"' in response.content
    assert b'aria-current="page"' in response.content


def test_login_form_logs_in_and_redirects_to_dashboard(client, marketer):
    page = client.get(reverse("login"))
    assert page.status_code == 200
    assert b'name="username"' in page.content
    response = client.post(
        reverse("login"), {"username": "mara", "password": "pw-12345-secret"}, follow=True
    )
    assert response.redirect_chain == [(reverse("dashboard"), 302)]
    assert response.status_code == 200
    assert response.wsgi_request.user == marketer
    assert b"<h1>Dashboard</h1>" in response.content


def test_login_form_rejects_wrong_password(client, marketer):
    response = client.post(reverse("login"), {"username": "mara", "password": "wrong"})
    assert response.status_code == 200
    assert b'class="error"' in response.content
    assert "_auth_user_id" not in client.session


def test_login_then_next_returns_to_requested_page(client, marketer):
    url = reverse("recommender:item-list")
    response = client.post(
        f"{reverse('login')}?next={url}",
        {"username": "mara", "password": "pw-12345-secret", "next": url},
    )
    assert response.status_code == 302
    assert response["Location"] == url


def test_dashboard_lists_recent_jobs(marketer_client):
    job = Job.objects.create(kind="catalog_import", status="running", done=5, total=20)
    response = marketer_client.get(reverse("dashboard"))
    assert f'id="job-{job.pk}"'.encode() in response.content
    assert b"catalog_import" in response.content


def test_job_progress_fragment_polls_while_running(marketer_client):
    job = Job.objects.create(kind="catalog_import", status="running", done=5, total=20)
    response = marketer_client.get(
        reverse("job-detail", args=[job.pk]), headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    content = response.content.decode()
    assert '<progress max="100" value="25"' in content
    assert 'hx-trigger="every 1s"' in content
    assert f'hx-get="{reverse("job-detail", args=[job.pk])}"' in content
    assert "5/20" in content
    assert "<nav" not in content


def test_job_progress_fragment_stops_polling_when_done(analyst_client):
    job = Job.objects.create(kind="train", status="done", done=20, total=20)
    response = analyst_client.get(reverse("job-detail", args=[job.pk]))
    assert response.status_code == 200
    assert b'value="100"' in response.content
    assert b"hx-trigger" not in response.content


def test_job_progress_fragment_shows_error(analyst_client):
    job = Job.objects.create(kind="train", status="failed", error="boom: disk full")
    response = analyst_client.get(reverse("job-detail", args=[job.pk]))
    assert b'<pre class="error">boom: disk full</pre>' in response.content
    assert b"hx-trigger" not in response.content


def test_job_progress_fragment_404_for_unknown_job(marketer_client):
    assert marketer_client.get(reverse("job-detail", args=[999999])).status_code == 404


def test_read_only_marker_shown_only_for_analyst(marketer_client, analyst, client):
    assert b"read-only" not in marketer_client.get(reverse("dashboard")).content
    client.force_login(analyst)
    assert "ana · read-only" in client.get(reverse("dashboard")).content.decode()


def test_finished_job_fragment_tells_the_page_to_refresh(marketer_client):
    from marketing.models import Job

    running = Job.objects.create(kind="import", status="running", total=10, done=3)
    done = Job.objects.create(kind="import", status="done", total=10, done=10)
    assert "HX-Trigger" not in marketer_client.get(f"/jobs/{running.pk}/")
    assert marketer_client.get(f"/jobs/{done.pk}/")["HX-Trigger"] == "job-finished"
