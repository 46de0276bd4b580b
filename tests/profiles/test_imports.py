import io
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from marketing.common.csv_import import report_rows
from marketing.imports_models import ImportFile, ImportStatus
from marketing.imports_services import import_file_create, import_file_run
from marketing.models import Job, JobStatus
from profiles.imports.interactions import event_type_map
from profiles.models import ChannelEndpoint, Customer, CustomerAlias, Event, FeatureBacklog

# ../shared/data beside the checkout, as on the developer machines and CI.
SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "data" / "bingewatch" / "data"


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _run(kind: str, path: Path) -> ImportFile:
    import_file = import_file_create(kind=kind, source_path=path, schedule=False)
    return import_file_run(import_file_id=import_file.pk)


def _report(import_file: ImportFile) -> list[tuple[str, str, str]]:
    return [(r["row"], r["column"], r["reason"]) for r in report_rows(import_file.report.path)]


INTERACTIONS = """USER_ID,ITEM_ID,EVENT_VALUE,EVENT_TYPE,TIMESTAMP
u1,i1,4,Watch,1700000000
u2,i2,,Purchase,2024-01-02T03:04:05Z
u1,i3,5,Rating,1700000100
u3,i1,1,Watch,yesterday
,i1,1,Watch,1700000000
u4,i2,abc,Watch,1700000000
u1,i1,4,Watch,1700000000
u5,i9,1,Add to cart,1700000200
u6,i1,1,Watch,99999999999
"""


def test_interactions_keep_good_rows_and_report_bad_ones(db, tmp_path):
    known = Customer.objects.create(external_id="u1", email="u1@example.com")

    result = _run("interactions", _write(tmp_path, "interactions.csv", INTERACTIONS))

    assert result.status == ImportStatus.DONE
    assert (result.rows, result.imported, result.unchanged, result.rejected) == (9, 4, 1, 4)
    assert result.details == {"events": 4, "duplicates": 1, "customers_created": 2}
    assert _report(result) == [
        (
            "5",
            "TIMESTAMP",
            "Must be Unix epoch seconds (e.g. 1700000000) or an ISO 8601 date-time.",
        ),
        ("6", "USER_ID", "Required."),
        ("7", "EVENT_VALUE", "Must be a number."),
        ("10", "TIMESTAMP", "Must not be more than a day in the future."),
    ]
    events = {
        (e.customer.external_id, e.item_external_id): e
        for e in Event.objects.select_related("customer")
    }
    assert sorted(events) == [("u1", "i1"), ("u1", "i3"), ("u2", "i2"), ("u5", "i9")]
    watch = events[("u1", "i1")]
    assert (watch.customer_id, watch.type, watch.value, watch.channel) == (
        known.pk,
        "view",
        Decimal("4.00"),
        "",
    )
    assert watch.occurred_at == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    purchase = events[("u2", "i2")]
    assert (purchase.type, purchase.value) == ("purchase", None)
    assert purchase.occurred_at == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    rating = events[("u1", "i3")]
    assert (rating.type, rating.properties) == ("custom", {"event_type": "Rating"})
    assert events[("u5", "i9")].type == "add_to_cart"
    assert FeatureBacklog.objects.count() == 4
    assert sorted(Customer.objects.values_list("external_id", "is_anonymous")) == [
        ("u1", False),
        ("u2", True),
        ("u5", True),
    ]
    job = Job.objects.get(pk=result.job_id)
    assert (job.status, job.done, job.total) == (JobStatus.DONE, 9, 9)
    assert job.message == "4 imported, 1 unchanged, 4 rejected"


def test_reimporting_interactions_stores_nothing(db, tmp_path):
    path = _write(tmp_path, "interactions.csv", INTERACTIONS)
    _run("interactions", path)
    events = sorted(Event.objects.values_list("pk", "event_id"))

    again = _run("interactions", path)

    assert (again.rows, again.imported, again.unchanged, again.rejected) == (9, 0, 5, 4)
    assert sorted(Event.objects.values_list("pk", "event_id")) == events
    assert Customer.objects.count() == 3
    assert FeatureBacklog.objects.count() == 4


def test_interactions_header_with_bom_lowercase_and_extra_columns(db, tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(
        "\ufeffuser_id, Item_Id ,timestamp,Session-Id\nu1,i1,1700000000,s-9\n".encode()
    )

    result = _run("interactions", path)

    assert (result.rows, result.imported, result.rejected) == (1, 1, 0)
    assert not result.report
    event = Event.objects.get()
    assert (event.type, event.properties) == ("view", {"session_id": "s-9"})


def test_unreadable_rows_are_reported_and_the_rest_kept(db, tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_bytes(
        b"USER_ID,ITEM_ID,TIMESTAMP\n"
        b"u1,i1,1700000000\n"
        b"u2,i2\n"
        b"\n"
        b"Jos\xe9,i3,1700000000\n"
        b'"u4,i4,1700000000\n'
    )

    result = _run("interactions", path)

    assert (result.rows, result.imported, result.rejected) == (4, 1, 3)
    assert _report(result) == [
        ("3", "", "Has 2 values; the header has 3 columns."),
        ("5", "", "Not valid UTF-8 text."),
        ("6", "", "Has 1 value; the header has 3 columns."),  # an unclosed quote
    ]
    assert list(Event.objects.values_list("customer__external_id", flat=True)) == ["u1"]


def test_interactions_of_an_alias_land_on_its_customer(db, tmp_path):
    customer = Customer.objects.create(external_id="known-7")
    CustomerAlias.objects.create(alias="cookie-7", customer=customer)

    _run("interactions", _write(tmp_path, "a.csv", "USER_ID,ITEM_ID,TIMESTAMP\ncookie-7,i1,1\n"))

    assert list(Event.objects.values_list("customer_id", flat=True)) == [customer.pk]
    assert Customer.objects.count() == 1


def test_interactions_header_missing_a_column_refuses_the_file(db, tmp_path):
    path = _write(tmp_path, "bad.csv", "USER_ID,EVENT_TYPE,TIMESTAMP\nu1,Watch,1700000000\n")

    result = _run("interactions", path)

    assert result.status == ImportStatus.FAILED
    assert result.error == (
        "The header lacks the required column ITEM_ID; it has USER_ID, EVENT_TYPE, TIMESTAMP. "
        "Nothing was imported."
    )
    assert (result.rows, result.imported, result.rejected) == (0, 0, 0)
    assert not result.report
    assert Event.objects.count() == 0
    assert Customer.objects.count() == 0
    job = Job.objects.get(pk=result.job_id)
    assert (job.status, job.error) == (JobStatus.FAILED, result.error)


def test_empty_file_is_refused(db, tmp_path):
    result = _run("users", _write(tmp_path, "empty.csv", ""))

    assert (result.status, result.error) == (ImportStatus.FAILED, "The file is empty.")


def test_finished_import_runs_again_as_a_no_op(db, tmp_path):
    result = _run("interactions", _write(tmp_path, "i.csv", INTERACTIONS))
    finished_at = result.finished_at

    again = import_file_run(import_file_id=result.pk)

    assert (again.status, again.finished_at, again.imported) == (
        ImportStatus.DONE,
        finished_at,
        4,
    )
    assert Event.objects.count() == 4


@pytest.mark.parametrize(
    ("original", "expected"),
    [
        ("Watch", ("view", {})),
        ("VIEW", ("view", {})),
        ("click", ("click", {})),
        ("Add to cart", ("add_to_cart", {})),
        ("cart", ("add_to_cart", {})),
        ("Buy", ("purchase", {})),
        ("order", ("purchase", {})),
        ("offer-shown", ("offer_shown", {})),
        ("", ("view", {})),
        ("Rating", ("custom", {"event_type": "Rating"})),
        ("custom", ("custom", {"event_type": "custom"})),
        ("Like ", ("custom", {"event_type": "Like"})),
    ],
)
def test_event_type_mapping(original, expected):
    assert event_type_map(original) == expected


USERS = """USER_ID,GENDER,E_MAIL,AGE,COUNTRY,FAVOURITE_GENRES
1,Female,one@example.com,21,de,Drama|Comedy
2,Male,not-an-email,35,,
,Female,x@example.com,20,,
3,,three@example.com,,,
4,Male,four@example.com,44,Germany,
"""


def test_users_import_upserts_customers_and_reports_bad_rows(db, tmp_path):
    existing = Customer.objects.create(
        external_id="3", is_anonymous=True, first_name="Tim", gender="Male"
    )

    result = _run("users", _write(tmp_path, "users.csv", USERS))

    assert (result.rows, result.imported, result.unchanged, result.rejected) == (5, 2, 0, 3)
    assert result.details == {"customers_created": 1, "customers_updated": 1}
    assert _report(result) == [
        ("3", "E_MAIL", "Not a valid email address."),
        ("4", "USER_ID", "Required."),
        ("6", "COUNTRY", "Must be a two-letter ISO country code."),
    ]
    one = Customer.objects.get(external_id="1")
    assert (one.is_anonymous, one.gender, one.email, one.country) == (
        False,
        "Female",
        "one@example.com",
        "DE",
    )
    assert one.attributes == {"age": 21, "favourite_genres": ["Drama", "Comedy"]}
    existing.refresh_from_db()
    # Blank cells leave stored values alone.
    assert (existing.is_anonymous, existing.email, existing.gender, existing.first_name) == (
        False,
        "three@example.com",
        "Male",
        "Tim",
    )
    assert sorted(Customer.objects.values_list("external_id", flat=True)) == ["1", "3"]


def test_reimporting_users_changes_nothing(db, tmp_path):
    path = _write(tmp_path, "users.csv", USERS)
    _run("users", path)
    before = sorted(Customer.objects.values_list("external_id", "updated_at", "attributes"))

    again = _run("users", path)

    assert (again.rows, again.imported, again.unchanged, again.rejected) == (5, 0, 2, 3)
    assert sorted(Customer.objects.values_list("external_id", "updated_at", "attributes")) == (
        before
    )


def test_users_import_updates_only_what_changed(db, tmp_path):
    _run("users", _write(tmp_path, "a.csv", "USER_ID,AGE,E_MAIL\n1,21,a@example.com\n2,30,\n"))
    untouched = Customer.objects.get(external_id="2").updated_at

    result = _run("users", _write(tmp_path, "b.csv", "USER_ID,AGE\n1,22\n2,30\n"))

    assert (result.imported, result.unchanged) == (1, 1)
    one = Customer.objects.get(external_id="1")
    assert (one.email, one.attributes) == ("a@example.com", {"age": 22})
    assert Customer.objects.get(external_id="2").updated_at == untouched


def test_users_header_without_user_id_stores_nothing(db, tmp_path):
    result = _run("users", _write(tmp_path, "u.csv", "ID,E_MAIL\n1,a@example.com\n"))

    assert result.status == ImportStatus.FAILED
    assert "lacks the required column USER_ID" in result.error
    assert Customer.objects.count() == 0


ENDPOINTS = """User.UserId,ChannelType,Address,OptOut,User.UserAttributes.Gender,Attributes.Interests,Location.Country
1,EMAIL,one@example.com,NONE,Female,Drama|Comedy,DE
1,GCM,token-abc,ALL,Female,,
2,SMS,+49 170 1234567,,,,
3,VOICE,+49 170 1234567,,,,
,EMAIL,x@example.com,,,,
4,EMAIL,not-an-email,,,,
5,EMAIL,,,,,
"""  # noqa: E501


def test_endpoints_import(db, tmp_path):
    result = _run("endpoints", _write(tmp_path, "endpoints.csv", ENDPOINTS))

    assert (result.rows, result.imported, result.unchanged, result.rejected) == (7, 3, 0, 4)
    assert result.details == {
        "endpoints_created": 3,
        "endpoints_updated": 0,
        "customers_created": 2,
        "customers_updated": 0,
    }
    assert _report(result) == [
        (
            "5",
            "ChannelType",
            "Unknown channel type; known: EMAIL, SMS, APNS, APNS_SANDBOX, APNS_VOIP, "
            "APNS_VOIP_SANDBOX, GCM, BAIDU, ADM, IN_APP.",
        ),
        ("6", "User.UserId", "Required."),
        ("7", "Address", "Not a valid email address."),
        ("8", "Address", "Required."),
    ]
    endpoints = sorted(
        ChannelEndpoint.objects.values_list(
            "customer__external_id", "channel", "address", "opted_out", "attributes"
        )
    )
    assert endpoints == [
        (
            "1",
            "email",
            "one@example.com",
            False,
            {"interests": ["Drama", "Comedy"], "location_country": "DE"},
        ),
        ("1", "push", "token-abc", True, {}),
        ("2", "sms", "+49 170 1234567", False, {}),
    ]
    customers = sorted(Customer.objects.values_list("external_id", "is_anonymous", "attributes"))
    assert customers == [("1", False, {"gender": "Female"}), ("2", False, {})]


def test_reimporting_endpoints_changes_nothing(db, tmp_path):
    path = _write(tmp_path, "endpoints.csv", ENDPOINTS)
    _run("endpoints", path)
    endpoints = sorted(ChannelEndpoint.objects.values_list("pk", "updated_at", "opted_out"))
    customers = sorted(Customer.objects.values_list("pk", "updated_at"))

    again = _run("endpoints", path)

    assert (again.rows, again.imported, again.unchanged, again.rejected) == (7, 0, 3, 4)
    assert sorted(ChannelEndpoint.objects.values_list("pk", "updated_at", "opted_out")) == (
        endpoints
    )
    assert sorted(Customer.objects.values_list("pk", "updated_at")) == customers


def test_endpoint_opt_out_changes_on_a_later_import(db, tmp_path):
    header = "User.UserId,ChannelType,Address,OptOut\n"
    _run("endpoints", _write(tmp_path, "a.csv", header + "1,EMAIL,a@example.com,NONE\n"))

    result = _run("endpoints", _write(tmp_path, "b.csv", header + "1,email,a@example.com,ALL\n"))

    assert (result.imported, result.details["endpoints_updated"]) == (1, 1)
    assert ChannelEndpoint.objects.get().opted_out is True


def test_endpoints_header_missing_address_stores_nothing(db, tmp_path):
    result = _run("endpoints", _write(tmp_path, "e.csv", "User.UserId,ChannelType\n1,EMAIL\n"))

    assert result.status == ImportStatus.FAILED
    assert "lacks the required column ADDRESS" in result.error
    assert ChannelEndpoint.objects.count() == 0
    assert Customer.objects.count() == 0


def test_command_refuses_a_wrong_header(db, tmp_path):
    path = _write(tmp_path, "items.csv", "ITEM_ID,TITLE\n1,A\n")

    with pytest.raises(CommandError) as excinfo:
        call_command("import_csv", "--kind", "users", str(path))

    assert "lacks the required column USER_ID" in str(excinfo.value)
    assert Customer.objects.count() == 0


def test_command_imports_the_bingewatch_samples(db):
    if not SAMPLES.is_dir():
        pytest.skip("the bingewatch samples are not on this machine")
    personalize = SAMPLES / "personalize/train/bingewatch"
    outputs = {}
    for kind, path in [
        ("users", personalize / "users.csv"),
        ("items", personalize / "items.csv"),
        ("interactions", personalize / "interactions.csv"),
        ("endpoints", SAMPLES / "pinpoint/endpoints.csv"),
    ]:
        out = io.StringIO()
        call_command("import_csv", "--kind", kind, str(path), stdout=out)
        outputs[kind] = out.getvalue()

    assert "100 rows, 100 imported, 0 unchanged, 0 rejected" in outputs["users"]
    assert "100 rows, 100 imported, 0 unchanged, 0 rejected" in outputs["items"]
    assert "1500 rows, 1500 imported, 0 unchanged, 0 rejected" in outputs["interactions"]
    assert "100 rows, 100 imported, 0 unchanged, 0 rejected" in outputs["endpoints"]
    assert Customer.objects.filter(is_anonymous=False).count() == 100
    assert Event.objects.count() == 1500
    assert set(Event.objects.values_list("type", flat=True)) == {"view"}
    assert ChannelEndpoint.objects.filter(channel="email").count() == 100

    out = io.StringIO()
    call_command(
        "import_csv", "--kind", "interactions", str(personalize / "interactions.csv"), stdout=out
    )
    assert "1500 rows, 0 imported, 1500 unchanged, 0 rejected" in out.getvalue()
    assert Event.objects.count() == 1500
