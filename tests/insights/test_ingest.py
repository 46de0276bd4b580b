import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from insights.models import Mention, Post, SentimentModel
from insights.services import (
    brand_rescan,
    posts_ingest,
    sentiment_model_activate,
    sentiment_model_train,
    sentiment_scorer_get,
)
from marketing.common.csv_import import report_rows
from marketing.imports_models import ImportStatus
from marketing.imports_services import import_file_create, import_file_run
from tests.insights.factories import BrandFactory
from tests.profiles.factories import CustomerFactory

pytestmark = pytest.mark.django_db

WHEN = "2026-11-01T10:00:00Z"


def _row(n, text="Acme delivery was terribly slow", **extra):
    return {"source": "x", "post_id": str(n), "text": text, "created_time": WHEN, **extra}


def test_ingest_stores_scores_and_finds_mentions():
    acme = BrandFactory(name="Acme", hashtags=["acmelove"])
    result = posts_ingest(
        [
            _row(1, author="@bob", likes=3, shares="2", comments=1, language="EN"),
            _row(2, text="love it #AcmeLove", url="https://x.com/p/2", metrics={"views": 90}),
            _row(3, text="nothing to see"),
        ]
    )
    assert (result.created, result.updated, result.rejected, result.mentions) == (3, 0, 0, 2)
    first = Post.objects.get(external_id="1")
    assert (first.likes, first.shares, first.comments, first.language) == (3, 2, 1, "en")
    assert first.posted_at == dt.datetime(2026, 11, 1, 10, tzinfo=dt.UTC)
    assert (first.sentiment_label, first.sentiment_model) == ("negative", "vader")
    assert first.sentiment < -0.05
    assert first.aspects == ["delivery"]
    second = Post.objects.get(external_id="2")
    assert second.sentiment_label == "positive"
    assert second.metrics == {"views": 90}
    assert second.url == "https://x.com/p/2"
    mentions = list(
        Mention.objects.order_by("post__external_id").values_list(
            "post__external_id",
            "brand",
            "start",
            "end",
            "matched_text",
            "match_type",
            "sentiment_label",
            "posted_at",
        )
    )
    assert mentions == [
        ("1", acme.pk, 0, 4, "Acme", "name", "negative", first.posted_at),
        ("2", acme.pk, 8, 17, "#AcmeLove", "hashtag", "positive", second.posted_at),
    ]
    assert Post.objects.get(external_id="3").mentions.count() == 0


def test_a_repeat_updates_metrics_and_never_duplicates():
    BrandFactory(name="Acme")
    posts_ingest([_row(1, likes=1)])
    post = Post.objects.get()
    result = posts_ingest([_row(1, likes=9, text="changed text", metrics={"views": 5})])
    assert (result.created, result.updated, result.mentions) == (0, 1, 0)
    again = Post.objects.get()
    assert again.pk == post.pk
    assert (again.likes, again.text, again.metrics) == (9, post.text, {"views": 5})
    assert Mention.objects.count() == 1


def test_the_same_post_twice_in_one_batch_is_stored_once():
    result = posts_ingest([_row(1, likes=1), _row(1, likes=4)])
    assert result.created == 1
    assert Post.objects.get().likes == 4


def test_several_chunks_in_one_transaction_each_store_their_posts_and_mentions():
    """More than one chunk of 1,000 in one call, inside the test's transaction (as a caller's
    own atomic block would be): each chunk is staged and copied, none is lost or doubled,
    and the JSON columns read back as written."""
    from django.db import transaction

    acme = BrandFactory(name="Acme")
    rows = [
        _row(n, text=f"Acme {n} is great value", metrics={"views": n} if n % 2 else {})
        for n in range(2500)
    ]
    with transaction.atomic():
        result = posts_ingest(rows)
        again = posts_ingest([_row(7, likes=3), _row(9000)])
    assert (result.created, result.updated, result.mentions) == (2500, 0, 2500)
    assert (again.created, again.updated) == (1, 1)
    assert Post.objects.count() == 2501
    assert Mention.objects.filter(brand=acme).count() == 2501
    post = Post.objects.get(external_id="7")
    assert (post.likes, post.metrics, post.aspects) == (3, {"views": 7}, ["price"])
    assert Post.objects.get(external_id="8").metrics == {}
    assert post.sentiment_label == "positive"


def test_invalid_rows_are_reported_by_row_and_field_and_skipped():
    result = posts_ingest(
        [
            _row(1),
            {"source": "x", "post_id": "2", "text": "", "created_time": "yesterday"},
            _row(3, likes=-1, author_email="nope", url="ftp://x"),
        ]
    )
    assert (result.created, result.rejected) == (1, 2)
    assert result.errors_by_row() == {
        "1": {
            "text": ["This field is required."],
            "created_time": [
                "Must be an ISO 8601 date-time (e.g. 2026-05-01T12:30:00Z) or Unix seconds."
            ],
        },
        "2": {
            "author_email": ["Enter a valid email address."],
            "url": ["Enter a valid http(s) URL."],
            "likes": ["Must be a whole number >= 0."],
        },
    }
    assert list(Post.objects.values_list("external_id", flat=True)) == ["1"]


def test_all_or_nothing_stores_nothing_when_a_row_is_invalid():
    result = posts_ingest([_row(1), {"source": "x"}], all_or_nothing=True)
    assert result.rejected == 1
    assert Post.objects.count() == 0


def test_posts_link_known_customers_by_handle_or_email():
    jane = CustomerFactory(attributes={"social_handles": ["@Jane_D", "janed"]})
    bob = CustomerFactory(email="bob@example.org")
    solo = CustomerFactory(attributes={"social_handles": "@Solo"})  # one string, not a list
    CustomerFactory(attributes={"social_handles": ["@gone"]}, erased_at=dt.datetime.now(dt.UTC))
    result = posts_ingest(
        [
            _row(1, author="jane_d"),
            _row(2, author="@JaneD"),
            _row(3, author="someone", author_email="BOB@example.org"),
            _row(4, author="@gone"),
            _row(5, author="stranger"),
            _row(6, author="SOLO"),
        ]
    )
    assert result.linked == 4
    assert dict(Post.objects.values_list("external_id", "customer")) == {
        "1": jane.pk,
        "2": jane.pk,
        "3": bob.pk,
        "4": None,
        "5": None,
        "6": solo.pk,
    }


def test_posts_link_customers_whose_stored_email_has_capitals():
    jane = CustomerFactory(email="Jane.Doe@Example.com")
    result = posts_ingest(
        [_row(1, author_email="jane.doe@example.com"), _row(2, author_email="JANE.DOE@example.COM")]
    )
    assert result.linked == 2
    assert dict(Post.objects.values_list("external_id", "customer")) == {"1": jane.pk, "2": jane.pk}


def test_brand_rescan_finds_mentions_of_new_aliases():
    brand = BrandFactory(name="Globex")
    posts_ingest([_row(1, text="GlobalX Mart is cheap"), _row(2, text="globex is fine")])
    assert Mention.objects.filter(brand=brand).count() == 1
    brand.aliases = ["GlobalX Mart"]
    brand.save()
    assert brand_rescan(brand) == 2
    assert sorted(Mention.objects.filter(brand=brand).values_list("matched_text", flat=True)) == [
        "GlobalX Mart",
        "globex",
    ]
    brand.is_active = False
    brand.save()
    assert brand_rescan(brand.pk) == 0
    assert Mention.objects.filter(brand=brand).count() == 0


def _labelled():
    good = ["love it", "great shop", "so happy with it", "excellent, thanks", "wonderful"]
    bad = ["hate it", "awful shop", "so angry with it", "terrible, no thanks", "horrible"]
    calm = ["it is blue", "the shop opens at 9", "order 12 shipped", "a box", "in stock now"]
    rows = []
    for i in range(6):
        rows += [(f"{t} {i}", "positive") for t in good]
        rows += [(f"{t} {i}", "negative") for t in bad]
        rows += [(f"{t} {i}", "neutral") for t in calm]
    return rows


def test_training_stores_the_model_and_activates_it_only_when_it_beats_the_current():
    result = sentiment_model_train(_labelled(), name="first")
    model = SentimentModel.objects.get(name="first")
    assert result.baseline_name == "vader"
    assert model.kind == "sklearn"
    assert model.artifact
    assert model.metrics["test_rows"] == 18
    assert model.metrics["baseline"]["name"] == "vader"
    assert model.is_active == (result.candidate["macro_f1"] > result.baseline["macro_f1"])
    if model.is_active:
        assert sentiment_scorer_get().name == "first"
        posts_ingest([_row(1, text="hate it 3")])
        assert Post.objects.get().sentiment_model == "first"
        # The same data again scores the same: not better, so not activated.
        second = sentiment_model_train(_labelled(), name="second")
        assert not second.activated
        assert SentimentModel.objects.get(is_active=True).name == "first"
    sentiment_model_activate(None)
    assert sentiment_scorer_get().name == "vader"


def test_training_refuses_too_little_data():
    from insights.services import SentimentTrainingError

    with pytest.raises(SentimentTrainingError):
        sentiment_model_train([("good", "positive")] * 5)
    assert SentimentModel.objects.count() == 0


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_training_refuses_a_class_with_one_example(seed):
    from insights.services import SentimentTrainingError

    rows = [(f"love it {i}", "positive") for i in range(19)] + [("hate it", "negative")]
    with pytest.raises(
        SentimentTrainingError, match="at least 2 labelled posts of each class"
    ) as e:
        sentiment_model_train(rows, seed=seed)
    assert e.value.extra["counts"] == {"negative": 1, "positive": 19}
    assert SentimentModel.objects.count() == 0


def test_training_turns_a_model_that_cannot_be_fitted_into_an_error():
    from insights.services import SentimentTrainingError

    rows = [(".", "positive")] * 10 + [("...", "negative")] * 10  # no word to learn from
    with pytest.raises(SentimentTrainingError, match="empty vocabulary"):
        sentiment_model_train(rows)
    assert SentimentModel.objects.count() == 0


CSV = (
    "source,post_id,author,text,language,created_time,likes,shares,comments,url,views\n"
    "x,1,@a,Acme is great,en,2026-11-01T10:00:00Z,1,2,3,https://x.com/1,40\n"
    "x,2,@b,,en,2026-11-01T10:00:00Z,1,2,3,,\n"
    "x,3,@c,Acmee broke,en,not a date,1,2,3,,\n"
    'x,4,@d,"Acme, again",en,1762000000,0,0,0,,\n'
)


def test_csv_import_with_a_row_numbered_report(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    BrandFactory(name="Acme")
    upload = SimpleUploadedFile("posts.csv", CSV.encode(), content_type="text/csv")
    import_file = import_file_create(kind="posts", upload=upload, schedule=False)
    import_file = import_file_run(import_file_id=import_file.pk)
    assert import_file.status == ImportStatus.DONE
    assert (import_file.imported, import_file.unchanged, import_file.rejected) == (2, 0, 2)
    assert import_file.details["mentions"] == 2
    assert import_file.job.status == "done"
    assert [(r["row"], r["column"]) for r in report_rows(import_file.report.path)] == [
        ("3", "text"),
        ("4", "posted_at"),
    ]
    assert Post.objects.get(external_id="1").metrics == {"views": 40}
    # The same file again: nothing new, metrics updated.
    upload = SimpleUploadedFile("posts.csv", CSV.encode(), content_type="text/csv")
    again = import_file_run(
        import_file_id=import_file_create(kind="posts", upload=upload, schedule=False).pk
    )
    assert (again.imported, again.unchanged, again.rejected) == (0, 2, 2)
    assert Post.objects.count() == 2


def test_jsonl_import(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    body = (
        b'{"source": "m", "id": 7, "text": "hello", "timestamp": 1762000000}\n'
        b"not json\n"
        b'{"source": "m", "id": 8, "text": "bye", "posted_at": "2026-11-01T10:00:00"}\n'
    )
    upload = SimpleUploadedFile("posts.jsonl", body)
    import_file = import_file_run(
        import_file_id=import_file_create(kind="posts", upload=upload, schedule=False).pk
    )
    assert (import_file.imported, import_file.rejected) == (2, 1)
    assert [r["row"] for r in report_rows(import_file.report.path)] == ["2"]
    assert sorted(Post.objects.values_list("external_id", flat=True)) == ["7", "8"]
