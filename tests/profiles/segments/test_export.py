"""Exporting a segment as a CSV of reachable, consenting endpoints (Pinpoint's columns)."""

import csv
import io
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from profiles.consent import consent_set
from profiles.models import Customer, Segment, SegmentKind
from profiles.privacy import customer_erase
from profiles.segments.errors import SegmentExportChannelError
from profiles.segments.export import (
    EXPORT_COLUMNS,
    segment_export_counts,
    segment_export_csv,
    segment_export_filename,
    segment_export_rows,
)
from profiles.segments.services import segment_create, segment_create_static
from tests.profiles.factories import ChannelEndpointFactory, CustomerFactory

pytestmark = pytest.mark.django_db


def _grant(customer, *purposes, granted=True):
    for purpose in purposes:
        consent_set(customer=customer, purpose=purpose, granted=granted, source="import")


@pytest.fixture
def people():
    """ann: everything granted, an email, a phone and a push token, plus an opted-out email;
    bob: email consent refused, SMS granted; cem: an email but no consent at all;
    dan: everything granted, then erased; eve: granted, not in the segment."""
    ann = CustomerFactory(external_id="c-ann", first_name="Ann", country="DE")
    bob = CustomerFactory(external_id="c-bob", first_name="Bob", country="FR")
    cem = CustomerFactory(external_id="c-cem", first_name="Cem", country="TR")
    dan = CustomerFactory(external_id="c-dan", first_name="Dan", country="AT")
    eve = CustomerFactory(external_id="c-eve", first_name="Eve", country="DE")
    _grant(ann, "marketing_email", "sms", "push")
    _grant(bob, "sms")
    _grant(bob, "marketing_email", granted=False)
    _grant(dan, "marketing_email", "sms", "push")
    _grant(eve, "marketing_email")
    endpoints = {
        "ann-email": ChannelEndpointFactory(customer=ann, channel="email", address="ann@ex.com"),
        "ann-old": ChannelEndpointFactory(
            customer=ann, channel="email", address="old@ex.com", opted_out=True
        ),
        "ann-sms": ChannelEndpointFactory(customer=ann, channel="sms", address="+4911"),
        "ann-push": ChannelEndpointFactory(customer=ann, channel="push", address="tok-ann"),
        "bob-email": ChannelEndpointFactory(customer=bob, channel="email", address="bob@ex.com"),
        "bob-sms": ChannelEndpointFactory(customer=bob, channel="sms", address="+3322"),
        "cem-email": ChannelEndpointFactory(customer=cem, channel="email", address="cem@ex.com"),
        "dan-email": ChannelEndpointFactory(customer=dan, channel="email", address="dan@ex.com"),
        "dan-sms": ChannelEndpointFactory(customer=dan, channel="sms", address="+4333"),
        "eve-email": ChannelEndpointFactory(customer=eve, channel="email", address="eve@ex.com"),
    }
    return {"ann": ann, "bob": bob, "cem": cem, "dan": dan, "eve": eve, "endpoints": endpoints}


def _imported(people) -> Segment:
    segment = segment_create_static(
        name="Newsletter",
        kind=SegmentKind.IMPORTED,
        customer_ids=[people[n].pk for n in ("ann", "bob", "cem", "dan")],
    )
    customer_erase(customer=people["dan"], source="admin", actor="test")
    return segment


def _expected(people, *keys, segment_name):
    rows = []
    for key in keys:
        e = people["endpoints"][key]
        c = e.customer
        rows.append(
            (
                e.channel.upper(),
                e.address,
                e.pk,
                c.external_id,
                c.first_name,
                c.country,
                segment_name,
            )
        )
    return rows


def test_all_channels_list_only_reachable_consenting_endpoints_of_members(people):
    segment = _imported(people)

    rows = list(segment_export_rows(segment=segment, channel="all"))

    # cem (no consent), bob's email (refused), ann's opted-out email, dan (erased) and eve
    # (not a member) are left out.
    assert rows == _expected(
        people, "ann-email", "ann-sms", "bob-sms", "ann-push", segment_name="Newsletter"
    )


@pytest.mark.parametrize(
    ("channel", "keys"),
    [
        ("email", ["ann-email"]),
        ("sms", ["ann-sms", "bob-sms"]),
        ("push", ["ann-push"]),
    ],
)
def test_one_channel(people, channel, keys):
    segment = _imported(people)

    rows = list(segment_export_rows(segment=segment, channel=channel))

    assert rows == _expected(people, *keys, segment_name="Newsletter")


def test_counts_per_channel_match_the_rows(people, django_assert_num_queries):
    segment = _imported(people)

    with django_assert_num_queries(1):
        counts = segment_export_counts(segment=segment)

    assert counts == {"email": 1, "sms": 2, "push": 1}


def test_withdrawn_consent_removes_the_endpoints(people):
    segment = _imported(people)
    _grant(people["ann"], "sms", granted=False)

    rows = list(segment_export_rows(segment=segment, channel="sms"))

    assert rows == _expected(people, "bob-sms", segment_name="Newsletter")


def test_rule_segment_exports_its_members_as_evaluated_now(people):
    segment = segment_create(
        name="Germans",
        rules={
            "op": "and",
            "conditions": [{"kind": "profile", "field": "country", "op": "eq", "value": "DE"}],
        },
        refresh=False,
    )
    assert segment.member_count == 0  # never refreshed: nothing materialized

    rows = list(segment_export_rows(segment=segment, channel="email"))

    assert rows == _expected(people, "ann-email", "eve-email", segment_name="Germans")
    assert segment_export_counts(segment=segment) == {"email": 2, "sms": 1, "push": 1}


def test_stored_members_are_exported_for_model_segments(people):
    segment = segment_create_static(
        name="Cluster 1",
        kind=SegmentKind.MODEL,
        customer_ids=[people["eve"].pk],
        scores={people["eve"].pk: 0.5},
    )

    rows = list(segment_export_rows(segment=segment, channel="all"))

    assert rows == _expected(people, "eve-email", segment_name="Cluster 1")


def test_csv_has_the_pinpoint_header_and_quotes_values(people):
    people["ann"].first_name = 'Ann, "the first"'
    people["ann"].save()
    segment = _imported(people)

    text = "".join(segment_export_csv(segment=segment, channel="push"))

    assert list(csv.reader(io.StringIO(text))) == [
        list(EXPORT_COLUMNS),
        [
            "PUSH",
            "tok-ann",
            str(people["endpoints"]["ann-push"].pk),
            "c-ann",
            'Ann, "the first"',
            "DE",
            "Newsletter",
        ],
    ]


def test_unknown_channel_is_refused_before_any_row():
    segment = Segment.objects.create(name="Empty", kind=SegmentKind.IMPORTED)

    with pytest.raises(SegmentExportChannelError, match="Unknown channel 'fax'"):
        next(segment_export_csv(segment=segment, channel="fax"))


# The download view.


def _download(client, segment, channel):
    url = reverse("profiles:segment-export", args=[segment.pk])
    return client.get(url, {"channel": channel} if channel is not None else {})


def test_download_streams_the_csv_with_a_file_name(marketer_client, people):
    segment = _imported(people)

    response = _download(marketer_client, segment, "sms")

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        f'attachment; filename="segment-{segment.pk}-newsletter-sms.csv"'
    )
    body = b"".join(response.streaming_content).decode()
    assert [row[:2] for row in csv.reader(io.StringIO(body))] == [
        ["ChannelType", "Address"],
        ["SMS", "+4911"],
        ["SMS", "+3322"],
    ]


def test_download_defaults_to_all_channels_and_analysts_may_download(analyst_client, people):
    segment = _imported(people)

    response = _download(analyst_client, segment, None)

    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode()
    assert [row[0] for row in csv.reader(io.StringIO(body))][1:] == ["EMAIL", "SMS", "SMS", "PUSH"]


def test_download_of_an_unknown_channel_is_a_400_with_the_reason(marketer_client, people):
    segment = _imported(people)

    response = _download(marketer_client, segment, "fax")

    assert response.status_code == 400
    assert response.content.decode() == (
        "Unknown channel 'fax'; choose one of email, sms, push or all."
    )


def test_download_of_a_missing_segment_is_a_404(marketer_client):
    response = marketer_client.get(reverse("profiles:segment-export", args=[999999]))

    assert response.status_code == 404


def test_export_panel_shows_counts_per_channel(marketer_client, people):
    segment = _imported(people)

    response = marketer_client.get(reverse("profiles:segment-export-panel", args=[segment.pk]))

    assert response.status_code == 200
    html = response.content.decode()
    assert re.findall(r'<option value="(\w+)">([^<]*)</option>', html) == [
        ("all", "All channels (4)"),
        ("email", "Email (1)"),
        ("sms", "SMS (2)"),
        ("push", "Push (1)"),
    ]
    assert "<html" not in html


def test_a_customer_marked_erased_is_left_out_even_with_data_left(people):
    """Erasure deletes endpoints and consents; the export also checks `erased_at` itself."""
    segment = _imported(people)
    Customer.objects.filter(pk=people["bob"].pk).update(erased_at=timezone.now())

    rows = list(segment_export_rows(segment=segment, channel="sms"))

    assert rows == _expected(people, "ann-sms", segment_name="Newsletter")
    assert segment_export_counts(segment=segment) == {"email": 1, "sms": 1, "push": 1}


def test_file_name_keeps_only_ascii_letters_and_digits():
    segment = Segment(pk=7, name="Käufer / München 2026!")

    assert segment_export_filename(segment=segment, channel="all") == (
        "segment-7-k-ufer-m-nchen-2026-all.csv"
    )
