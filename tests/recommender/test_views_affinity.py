"""The affinity segment page, its progress fragment, the segments list button and the API."""

import pytest
from django.urls import reverse

from marketing.models import Job
from profiles.models import Segment
from recommender.models import Item
from recommender.segment_affinity import AffinityRequest, affinity_segment_build

URL = "/recommender/affinity-segments/"
API = "/api/v1/segments/affinity"


def test_url_name():
    assert reverse("recommender:affinity-segment-create") == URL


def test_page_shows_the_form_to_marketers(marketer_client, hybrid):
    response = marketer_client.get(URL)
    assert response.status_code == 200
    body = response.content.decode()
    assert "<h1>Find customers by affinity</h1>" in body
    assert 'name="expression"' in body
    assert body.count("<option value=") == Item.objects.filter(is_active=True).count()


def test_analysts_read_the_page_but_cannot_post(analyst_client, hybrid):
    body = analyst_client.get(URL).content.decode()
    assert 'name="expression"' not in body
    assert "Your role can only read" in body
    response = analyst_client.post(
        URL, {"name": "x", "target": "expression", "expression": "price > 0", "size": "top_n",
              "top_n": "5"},
    )  # fmt: skip
    assert response.status_code == 403
    assert Job.objects.count() == 0


def test_post_starts_the_job_and_polls(marketer_client, hybrid, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = marketer_client.post(
            URL,
            {"name": "Books fans", "target": "expression", "expression": 'category = "books"',
             "size": "top_n", "top_n": "25"},
            HTTP_HX_REQUEST="true",
        )  # fmt: skip
    assert response.status_code == 200
    job = Job.objects.get()
    assert len(callbacks) == 1
    body = response.content.decode()
    assert f'hx-get="/recommender/affinity-segments/jobs/{job.pk}/"' in body
    assert "<h1>" not in body  # the fragment only
    segment = affinity_segment_build(
        job_id=job.pk,
        request=AffinityRequest(name="Books fans", expression='category = "books"', top_n=25),
    )
    done = marketer_client.get(f"/recommender/affinity-segments/jobs/{job.pk}/")
    assert done.status_code == 200
    text = done.content.decode()
    assert f'href="/segments/{segment.pk}/" id="affinity-segment-link"' in text
    assert "hx-trigger" not in text.split("affinity-job")[1].split(">")[0]


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"target": "expression", "expression": 'categry = "books"', "size": "top_n",
          "top_n": "5"}, "Unknown field &#x27;categry&#x27;"),
        ({"target": "expression", "expression": 'category = "books" and', "size": "top_n",
          "top_n": "5"}, "Expected a field name, found the end (at position 23)"),
        ({"target": "item", "item_id": "nope", "size": "top_n", "top_n": "5"},
         "No active catalog item has the id &#x27;nope&#x27;."),
        ({"target": "expression", "expression": "", "size": "top_percent"},
         "Enter a percentage."),
    ],
)  # fmt: skip
def test_bad_input_is_shown_under_the_field(marketer_client, hybrid, data, error):
    response = marketer_client.post(URL, {"name": "Bad", **data}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert error in response.content.decode()
    assert Job.objects.count() == 0
    assert not Segment.objects.filter(name="Bad").exists()


def test_job_fragment_of_another_kind_is_404(marketer_client, db):
    job = Job.objects.create(kind="import")
    assert marketer_client.get(f"/recommender/affinity-segments/jobs/{job.pk}/").status_code == 404


def test_segment_list_links_here_for_editors_only(client, marketer, analyst):
    client.force_login(marketer)
    assert f'href="{URL}"' in client.get("/segments/").content.decode()
    client.force_login(analyst)
    assert f'href="{URL}"' not in client.get("/segments/").content.decode()


def test_api_starts_a_build(marketer_client, hybrid, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = marketer_client.post(
            API,
            {"name": "API fans", "expression": 'brand in ("Acme", "Globex")', "top_percent": 5},
            content_type="application/json",
        )
    assert response.status_code == 202
    job = Job.objects.get()
    assert response.json() == {"job_id": job.pk, "status": "pending"}
    assert len(callbacks) == 1


@pytest.mark.parametrize(
    ("data", "fields"),
    [
        ({"name": "x", "expression": "price <", "top_n": 5},
         {"expression": ["Expected a value, found the end (at position 8)"]}),
        ({"name": "x", "expression": "price > 0", "item_id": "i000001", "top_n": 5},
         {"expression": ["Give either item_id or expression, not both."]}),
        ({"name": "x", "expression": "price > 0"},
         {"top_n": ["Give either top_n or top_percent, not both."]}),
        ({"name": "x", "item_id": "nope", "top_n": 0},
         {"top_n": ["Ensure this value is greater than or equal to 1."]}),
    ],
)  # fmt: skip
def test_api_bad_input_is_400_with_fields(marketer_client, hybrid, data, fields):
    response = marketer_client.post(API, data, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {
        "code": "invalid",
        "message": "Invalid input.",
        "extra": {"fields": fields},
    }
    assert Job.objects.count() == 0


def test_api_refuses_analysts_and_anonymous(analyst_client, client, hybrid):
    data = {"name": "x", "expression": "price > 0", "top_n": 5}
    assert analyst_client.post(API, data, content_type="application/json").status_code == 403
    analyst_client.logout()
    assert client.post(API, data, content_type="application/json").status_code == 403
    assert Job.objects.count() == 0


def test_api_taken_name_is_409(marketer_client, hybrid):
    Segment.objects.create(name="Taken", kind="imported")
    response = marketer_client.post(
        API,
        {"name": "Taken", "expression": "price > 0", "top_n": 5},
        content_type="application/json",
    )
    assert response.status_code == 409
    assert response.json()["code"] == "segment_name_taken"
    assert Job.objects.count() == 0
