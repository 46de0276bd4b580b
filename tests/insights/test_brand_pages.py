import pytest
from django.urls import reverse

from insights.models import Brand, Mention
from insights.services import posts_ingest
from insights.services_health import brand_rescan_run
from marketing.models import Job, JobStatus
from tests.insights.factories import BrandFactory

HTMX = {"HX-Request": "true"}


def _form(**overrides) -> dict:
    data = {
        "name": "Acme",
        "kind": "brand",
        "parent": "",
        "aliases": "Acme Co, acmeco",
        "hashtags": "#acme, acmeshoes",
        "handles": "@acme_official",
        "is_own": "on",
        "is_active": "on",
        "alert_emails": "Brand@Example.com\nops@example.com",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


@pytest.mark.parametrize("client_fixture", ["marketer_client", "analyst_client"])
def test_brand_list_shows_brands_and_edit_links_for_editors(request, client_fixture):
    client = request.getfixturevalue(client_fixture)
    BrandFactory(name="Acme", hashtags=["acme"], handles=["acme_official"])
    BrandFactory(name="Globex", is_own=False)
    response = client.get(reverse("insights:brand-list"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "#acme" in page
    assert "@acme_official" in page
    assert "competitor" in page
    assert ("/insights/brands/new/" in page) is (client_fixture == "marketer_client")


def test_create_brand_normalizes_terms_and_rescans(
    marketer_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = marketer_client.post(reverse("insights:brand-create"), _form(), headers=HTMX)
    assert response.status_code == 200
    brand = Brand.objects.get(name="Acme")
    assert brand.aliases == ["Acme Co", "acmeco"]
    assert brand.hashtags == ["acme", "acmeshoes"]
    assert brand.handles == ["acme_official"]
    assert brand.alert_emails == ["brand@example.com", "ops@example.com"]
    assert brand.is_own is True
    job = Job.objects.get(kind="brand_rescan")
    assert response["HX-Redirect"] == f"{reverse('insights:brand-list')}?job={job.pk}"
    assert len(callbacks) == 1


def test_editing_the_aliases_rescans_stored_posts(
    marketer_client, django_capture_on_commit_callbacks
):
    brand = BrandFactory(name="Acme")
    posts_ingest(
        [
            {
                "source": "bluesky",
                "post_id": "1",
                "text": "My Roadrunner boots fell apart",
                "posted_at": "2026-11-01T10:00:00Z",
            }
        ]
    )
    assert not Mention.objects.filter(brand=brand).exists()
    with django_capture_on_commit_callbacks() as callbacks:
        response = marketer_client.post(
            reverse("insights:brand-edit", args=[brand.pk]),
            _form(aliases="Roadrunner", alert_emails=""),
        )
    assert response.status_code == 302
    assert len(callbacks) == 1
    job = Job.objects.get(kind="brand_rescan")
    brand_rescan_run(job_id=job.pk, brand_id=brand.pk)  # what the scheduled task runs
    mention = Mention.objects.get(brand=brand)
    assert mention.matched_text == "Roadrunner"
    job.refresh_from_db()
    assert job.status == JobStatus.DONE
    assert job.result == {"brand": brand.pk, "mentions": 1}
    page = marketer_client.get(response["Location"]).content.decode()
    assert f'id="job-{job.pk}"' in page


def test_turning_listening_back_on_finds_the_missed_mentions_and_off_removes_them(
    marketer_client, django_capture_on_commit_callbacks
):
    brand = BrandFactory(name="Acme", is_active=False)
    posts_ingest(
        [
            {
                "source": "bluesky",
                "post_id": "1",
                "text": "Acme boots fell apart",
                "posted_at": "2026-11-01T10:00:00Z",
            }
        ]
    )
    assert not Mention.objects.filter(brand=brand).exists()
    edit = reverse("insights:brand-edit", args=[brand.pk])
    with django_capture_on_commit_callbacks() as callbacks:
        marketer_client.post(edit, _form(aliases="", hashtags="", handles="", alert_emails=""))
    assert len(callbacks) == 1
    job = Job.objects.get(kind="brand_rescan")
    brand_rescan_run(job_id=job.pk, brand_id=brand.pk)
    assert list(Mention.objects.filter(brand=brand).values_list("matched_text", flat=True)) == [
        "Acme"
    ]
    with django_capture_on_commit_callbacks() as callbacks:
        marketer_client.post(
            edit, _form(aliases="", hashtags="", handles="", alert_emails="", is_active=None)
        )
    assert len(callbacks) == 1
    job = Job.objects.filter(kind="brand_rescan").latest("pk")
    brand_rescan_run(job_id=job.pk, brand_id=brand.pk)
    assert not Mention.objects.filter(brand=brand).exists()
    job.refresh_from_db()
    assert job.result == {"brand": brand.pk, "mentions": 0}


def test_editing_only_the_alert_emails_does_not_rescan(
    marketer_client, django_capture_on_commit_callbacks
):
    brand = BrandFactory(
        name="Acme",
        aliases=["Acme Co", "acmeco"],
        hashtags=["acme", "acmeshoes"],
        handles=["acme_official"],
    )
    with django_capture_on_commit_callbacks() as callbacks:
        response = marketer_client.post(
            reverse("insights:brand-edit", args=[brand.pk]),
            _form(alert_emails="new@example.com"),
            headers=HTMX,
        )
    assert response["HX-Redirect"] == reverse("insights:brand-list")
    assert callbacks == []
    assert not Job.objects.exists()
    brand.refresh_from_db()
    assert brand.alert_emails == ["new@example.com"]


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"name": ""}, "name", "This field is required."),
        ({"alert_emails": "ops@example.com, not-an-email"}, "alert_emails", "not-an-email"),
        ({"kind": "planet"}, "kind", "Select a valid choice."),
    ],
)
def test_invalid_brand_form_shows_errors_and_saves_nothing(
    marketer_client, overrides, field, message
):
    response = marketer_client.post(
        reverse("insights:brand-create"), _form(**overrides), headers=HTMX
    )
    assert response.status_code == 200
    assert message in str(response.context["form"].errors[field])
    assert f'id="{field}-error"' in response.content.decode()
    assert not Brand.objects.exists()
    assert not Job.objects.exists()


def test_duplicate_name_and_parent_rules(marketer_client):
    acme = BrandFactory(name="Acme")
    response = marketer_client.post(reverse("insights:brand-create"), _form())
    assert "already exists" in str(response.context["form"].errors["name"])
    response = marketer_client.post(
        reverse("insights:brand-create"), _form(name="Runner", parent=str(acme.pk))
    )
    assert response.context["form"].errors["parent"] == ["Only a product belongs to a brand."]
    response = marketer_client.post(
        reverse("insights:brand-create"), _form(name="Runner", kind="product", parent=str(acme.pk))
    )
    assert response.status_code == 302
    assert Brand.objects.get(name="Runner").parent == acme


def test_analysts_cannot_create_or_edit_brands(analyst_client):
    brand = BrandFactory(name="Acme")
    assert analyst_client.get(reverse("insights:brand-create")).status_code == 403
    assert analyst_client.post(reverse("insights:brand-create"), _form(name="X")).status_code == 403
    edit = reverse("insights:brand-edit", args=[brand.pk])
    assert analyst_client.get(edit).status_code == 403
    assert analyst_client.post(edit, _form(name="Renamed")).status_code == 403
    assert list(Brand.objects.values_list("name", flat=True)) == ["Acme"]
    assert not Job.objects.exists()


def test_edit_page_shows_the_lists_as_text(marketer_client):
    brand = BrandFactory(
        name="Acme", aliases=["Acme Co"], hashtags=["acme"], alert_emails=["a@x.io"]
    )
    page = marketer_client.get(reverse("insights:brand-edit", args=[brand.pk])).content.decode()
    assert "Acme Co</textarea>" in page
    assert "a@x.io</textarea>" in page
    assert marketer_client.get(reverse("insights:brand-edit", args=[999999])).status_code == 404
