import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from insights.models import Mention, Post
from marketing.imports_models import ImportFile
from tests.helpers import api_key_client
from tests.insights.factories import BrandFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/social/posts"


def _post(n, **extra):
    return {
        "source": "mastodon",
        "external_id": f"p{n}",
        "author": "@someone",
        "text": "Acme support was brilliant",
        "posted_at": "2026-11-01T10:00:00Z",
        "likes": n,
        **extra,
    }


def test_ingest_a_batch_then_a_repeat():
    BrandFactory(name="Acme")
    client = api_key_client("social:write")
    response = client.post(URL, [_post(1), _post(2)], format="json")
    assert response.status_code == 200, response.content
    assert response.json() == {"created": 2, "updated": 0, "mentions": 2, "linked": 0}
    response = client.post(f"{URL}/", _post(1, likes=50), format="json")
    assert response.json() == {"created": 0, "updated": 1, "mentions": 0, "linked": 0}
    assert Post.objects.count() == 2
    assert Post.objects.get(external_id="p1").likes == 50
    assert Mention.objects.count() == 2


def test_an_invalid_post_refuses_the_batch_with_field_errors():
    client = api_key_client("social:write")
    response = client.post(
        URL,
        [_post(1), _post(2, text="", likes=-3, colour="red"), "nope"],
        format="json",
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert body["extra"]["rows"] == {
        "1": {
            "colour": ["Unknown field."],
            "text": ["This field is required."],
            "likes": ["Must be a whole number >= 0."],
        },
        "2": {"non_field_errors": ["Each post must be an object."]},
    }
    assert Post.objects.count() == 0


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "The batch is empty."),
        ("text", "Send one post object or a list of post objects."),
        ([{}] * 1001, "At most 1000 posts per request; got 1001."),
    ],
)
def test_batch_shape(payload, message):
    response = api_key_client("social:write").post(URL, payload, format="json")
    assert response.status_code == 400
    assert response.json()["extra"]["non_field_errors"] == [message]


def test_the_scope_is_required(api_client):
    response = api_key_client("events:write").post(URL, [_post(1)], format="json")
    assert response.status_code == 403
    assert "social:write" in response.json()["message"]
    assert api_client.post(URL, [_post(1)], format="json").status_code in (401, 403)
    assert Post.objects.count() == 0


def test_the_upload_page_starts_a_posts_import(marketer_client, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    url = reverse("insights:post-import")
    assert marketer_client.get(url).status_code == 200
    body = b"post_id,text,created_time\n1,hello,2026-11-01T10:00:00Z\n"
    response = marketer_client.post(
        url,
        {"file": SimpleUploadedFile("p.csv", body, content_type="text/csv")},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    imp = ImportFile.objects.get()
    assert (imp.kind, imp.original_name) == ("posts", "p.csv")
    assert f"Import #{imp.pk} of p.csv started" in response.content.decode()


def test_the_upload_page_lists_posts_imports_behind_200_newer_imports_of_other_kinds(
    marketer_client,
):
    posts = ImportFile.objects.create(kind="posts", original_name="old-posts.csv", sha256="a")
    ImportFile.objects.bulk_create(
        ImportFile(kind="users", original_name=f"users-{i}.csv", sha256="b") for i in range(200)
    )
    response = marketer_client.get(reverse("insights:post-import"))
    assert [i.pk for i in response.context["imports"]] == [posts.pk]
    assert "old-posts.csv" in response.content.decode()


def test_the_upload_page_refuses_a_wrong_header(marketer_client):
    response = marketer_client.post(
        reverse("insights:post-import"),
        {"file": SimpleUploadedFile("p.csv", b"id,body\n1,x\n", content_type="text/csv")},
    )
    assert response.status_code == 200
    assert "lacks the required columns POST_ID, TEXT, CREATED_TIME" in response.content.decode()
    assert ImportFile.objects.count() == 0
