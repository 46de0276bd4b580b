"""The segment detail page: each kind, members paging, refresh, delete, read-only analysts."""

import json
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from profiles.models import Segment, SegmentKind, SegmentSnapshot
from profiles.segments.services import (
    segment_create,
    segment_create_static,
    segment_members_set,
    segment_refresh,
)
from tests.profiles.factories import CustomerFactory

pytestmark = pytest.mark.django_db

GERMANS = {
    "op": "and",
    "conditions": [{"kind": "profile", "field": "country", "op": "eq", "value": "DE"}],
}


def _url(name, segment, **query):
    url = reverse(f"profiles:{name}", args=[segment.pk])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def _rule_segment(name="Germans", rules=GERMANS) -> Segment:
    return segment_create(name=name, rules=rules, refresh=False)


def _figure(html: str) -> list[dict]:
    match = re.search(r"id=\"segment-history-chart\" class=\"chart\" data-figure='([^']*)'", html)
    assert match, "no chart"
    return json.loads(match.group(1).replace("&quot;", '"'))


def test_rule_segment_page_shows_rule_count_history_and_members(marketer_client):
    ann = CustomerFactory(external_id="c-ann", first_name="Ann", last_name="Lee", country="DE")
    CustomerFactory(external_id="c-bob", country="FR")
    segment = _rule_segment()
    segment_refresh(segment=segment)
    three_minutes_ago = timezone.now() - timedelta(minutes=3, seconds=10)
    Segment.objects.filter(pk=segment.pk).update(counted_at=three_minutes_ago)

    response = marketer_client.get(_url("segment-detail", segment))

    html = response.content.decode()
    assert response.status_code == 200
    assert (
        re.search(r'<p id="segment-rule">([^<]*)</p>', html).group(1)
        == (response.context["rules_text"])
    )
    assert response.context["rules_text"] == "country is DE"
    assert '<b id="segment-count">1</b> member<' in html
    assert (
        f'<b id="segment-counted-at" title="{three_minutes_ago:%Y-%m-%d %H:%M:%S}">'
        "3\xa0minutes ago</b>"
    ) in html
    [trace] = _figure(html)
    assert trace["y"] == [1]
    assert trace["customdata"] == [[1, 0]]
    assert "entered" in trace["hovertemplate"]
    members = response.context["page_obj"]
    assert [c.pk for c in members] == [ann.pk]
    assert f'href="/customers/{ann.pk}/">c-ann</a>' in html
    assert "Refresh now" in html
    assert f'href="/segments/{segment.pk}/edit/"' in html


def test_rule_text_names_the_segments_it_refers_to(marketer_client):
    listed = segment_create_static(name="VIPs", kind=SegmentKind.IMPORTED, customer_ids=[])
    segment = _rule_segment(
        name="VIP Germans",
        rules={
            "op": "and",
            "conditions": [
                {"kind": "segment", "segment": listed.pk, "op": "in"},
                {"kind": "profile", "field": "country", "op": "eq", "value": "DE"},
            ],
        },
    )

    response = marketer_client.get(_url("segment-detail", segment))

    assert "VIPs" in response.context["rules_text"]
    assert f"segment {listed.pk}" not in response.context["rules_text"]


def test_imported_segment_page_shows_how_it_was_made_without_refresh_or_edit(marketer_client):
    ann = CustomerFactory()
    segment = segment_create_static(
        name="Newsletter",
        kind=SegmentKind.IMPORTED,
        customer_ids=[ann.pk],
        definition={
            "source": "import",
            "file_name": "news.csv",
            "rows": 3,
            "matched": 1,
            "unknown": 2,
            "report": {"rows": 3},
            "job": 7,
        },
    )

    response = marketer_client.get(_url("segment-detail", segment))

    html = response.content.decode()
    assert response.status_code == 200
    assert response.context["definition_rows"] == [
        ("Source", "Imported file"),
        ("File", "news.csv"),
        ("Rows read", 3),
        ("Matched", 1),
        ("Unknown", 2),
    ]
    assert "<th>File</th><td>news.csv</td>" in html
    assert "Refresh now" not in html
    assert "/edit/" not in html
    assert "Replace members" in html
    assert "Delete" in html


@pytest.mark.parametrize(
    ("definition", "rows"),
    [
        (
            {"source": "cluster", "run": 4, "cluster": 1, "description": "big spenders"},
            [
                ("Source", "k-means cluster"),
                ("Cluster", "big spenders"),
                ("Clustering run", 4),
                ("Cluster number", 2),
            ],
        ),
        (
            {
                "source": "item_affinity",
                "item": "sku-9",
                "model_version": 12,
                "algorithm": "als",
                "seconds": 0.3,
            },
            [
                ("Source", "Affinity for an item"),
                ("Affinity for item", "sku-9"),
                ("Model version", 12),
                ("Algorithm", "als"),
            ],
        ),
    ],
    ids=["cluster", "affinity"],
)
def test_model_segment_page_shows_its_definition(marketer_client, definition, rows):
    segment = segment_create_static(
        name="Model", kind=SegmentKind.MODEL, customer_ids=[], definition=definition
    )

    response = marketer_client.get(_url("segment-detail", segment))

    assert response.status_code == 200
    assert response.context["definition_rows"] == rows
    assert "Refresh now" not in response.content.decode()


def test_missing_segment_is_404(marketer_client):
    response = marketer_client.get(reverse("profiles:segment-detail", args=[999999]))

    assert response.status_code == 404


def test_members_are_paged_50_at_a_time_with_pinned_queries(
    marketer_client, django_assert_num_queries
):
    customers = CustomerFactory.create_batch(120)
    segment = segment_create_static(
        name="Many", kind=SegmentKind.IMPORTED, customer_ids=[c.pk for c in customers]
    )
    by_pk = sorted((c.pk for c in customers), reverse=True)

    # session, user, role, segment, history, campaigns and rule segments using it,
    # member count, member page
    with django_assert_num_queries(9):
        response = marketer_client.get(_url("segment-detail", segment))
    assert [c.pk for c in response.context["page_obj"]] == by_pk[:50]

    with django_assert_num_queries(6):
        response = marketer_client.get(
            _url("segment-detail", segment, page=3),
            headers={"HX-Request": "true", "HX-Target": "segment-members"},
        )
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="segment-members"')
    assert "<html" not in html
    assert [c.pk for c in response.context["page_obj"]] == by_pk[100:]
    assert "Page 3 of 3" in html


def test_refresh_schedules_the_task_and_shows_refreshing(
    marketer_client, django_capture_on_commit_callbacks
):
    segment = _rule_segment()

    with django_capture_on_commit_callbacks() as callbacks:
        response = marketer_client.post(
            _url("segment-refresh", segment), headers={"HX-Request": "true"}
        )

    assert response.status_code == 200
    assert len(callbacks) == 1
    html = response.content.decode()
    assert "refreshing…" in html
    assert f'hx-get="/segments/{segment.pk}/status/?since=&amp;polls=1"' in html
    assert 'hx-trigger="every 1s"' in html


def test_status_keeps_polling_until_counted_at_changes_then_triggers_a_reload(marketer_client):
    CustomerFactory(country="DE")
    segment = _rule_segment()
    segment_members_set(segment=segment, customer_ids=[])
    segment.refresh_from_db()
    since = segment.counted_at.isoformat()

    waiting = marketer_client.get(
        reverse("profiles:segment-status", args=[segment.pk]), {"since": since, "polls": "3"}
    )
    assert "refreshing…" in waiting.content.decode()
    assert "HX-Trigger" not in waiting
    assert "polls=4" in waiting.content.decode()

    segment_refresh(segment=segment)
    done = marketer_client.get(
        reverse("profiles:segment-status", args=[segment.pk]), {"since": since, "polls": "4"}
    )
    assert done["HX-Trigger"] == "segment-refreshed"
    assert "refreshing" not in done.content.decode()
    assert "every 1s" not in done.content.decode()

    body = marketer_client.get(
        _url("segment-detail", segment), headers={"HX-Request": "true", "HX-Target": "segment-body"}
    )
    html = body.content.decode()
    assert html.lstrip().startswith('<div class="stats">')
    assert '<b id="segment-count">1</b>' in html
    assert [t["y"] for t in _figure(html)] == [[0, 1]]


def test_status_stops_polling_after_a_while(marketer_client):
    segment = _rule_segment()

    response = marketer_client.get(
        reverse("profiles:segment-status", args=[segment.pk]), {"since": "", "polls": "180"}
    )

    html = response.content.decode()
    assert "every 1s" not in html
    assert "is the worker running?" in html


def test_refresh_of_a_fixed_list_is_refused(marketer_client, django_capture_on_commit_callbacks):
    segment = segment_create_static(name="List", kind=SegmentKind.IMPORTED, customer_ids=[])

    with django_capture_on_commit_callbacks() as callbacks:
        response = marketer_client.post(_url("segment-refresh", segment))

    assert response.status_code == 400
    assert response.content.decode() == (
        "Only rule segments are refreshed; the others are fixed lists."
    )
    assert callbacks == []


def test_delete_removes_the_segment_and_goes_back_to_the_list(marketer_client):
    segment = segment_create_static(name="Old", kind=SegmentKind.IMPORTED, customer_ids=[])

    response = marketer_client.post(_url("segment-delete", segment), headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("profiles:segment-list")
    assert not Segment.objects.filter(pk=segment.pk).exists()


def test_delete_of_a_segment_used_by_rules_is_refused_with_the_reason(marketer_client):
    listed = segment_create_static(name="VIPs", kind=SegmentKind.IMPORTED, customer_ids=[])
    _rule_segment(
        name="VIP Germans",
        rules={"op": "and", "conditions": [{"kind": "segment", "segment": listed.pk, "op": "in"}]},
    )

    response = marketer_client.post(_url("segment-delete", listed), headers={"HX-Request": "true"})

    assert response.status_code == 200
    html = response.content.decode()
    assert html.strip() == (
        '<div id="segment-message"><p class="bad" role="alert">'
        "Segment &#x27;VIPs&#x27; is used by the rules of VIP Germans.</p></div>"
    )
    assert Segment.objects.filter(pk=listed.pk).exists()


def test_delete_refused_without_htmx_renders_the_page_with_409(marketer_client):
    listed = segment_create_static(name="VIPs", kind=SegmentKind.IMPORTED, customer_ids=[])
    _rule_segment(
        name="VIP Germans",
        rules={"op": "and", "conditions": [{"kind": "segment", "segment": listed.pk, "op": "in"}]},
    )

    response = marketer_client.post(_url("segment-delete", listed))

    assert response.status_code == 409
    assert "is used by the rules of VIP Germans" in response.content.decode()
    assert Segment.objects.filter(pk=listed.pk).exists()


def test_analyst_reads_without_buttons_and_cannot_post(
    analyst_client, django_capture_on_commit_callbacks
):
    segment = _rule_segment()
    snapshots = SegmentSnapshot.objects.count()

    page = analyst_client.get(_url("segment-detail", segment)).content.decode()
    assert "Refresh now" not in page
    assert "Delete" not in page
    assert "/edit/" not in page
    assert 'id="segment-export"' in page  # exporting is reading

    with django_capture_on_commit_callbacks() as callbacks:
        refresh = analyst_client.post(_url("segment-refresh", segment))
        delete = analyst_client.post(_url("segment-delete", segment))

    assert refresh.status_code == 403
    assert delete.status_code == 403
    assert callbacks == []
    assert Segment.objects.filter(pk=segment.pk).exists()
    assert SegmentSnapshot.objects.count() == snapshots


def test_list_links_each_segment_to_its_page(marketer_client):
    segment = _rule_segment()
    Segment.objects.filter(pk=segment.pk).update(
        member_count=1234, counted_at=timezone.now() - timedelta(minutes=3)
    )

    html = marketer_client.get(reverse("profiles:segment-list")).content.decode()

    assert f'<a href="/segments/{segment.pk}/"><b>Germans</b></a>' in html
    assert "1,234" in html
    assert "3\xa0minutes ago" in html


def test_admin_refresh_now_schedules_only_rule_segments(
    admin_client, django_capture_on_commit_callbacks
):
    rules = _rule_segment()
    listed = segment_create_static(name="List", kind=SegmentKind.IMPORTED, customer_ids=[])

    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_client.post(
            reverse("admin:profiles_segment_changelist"),
            {"action": "refresh_now", "_selected_action": [rules.pk, listed.pk]},
            follow=True,
        )

    assert response.status_code == 200
    assert len(callbacks) == 1
    assert [str(m) for m in response.context["messages"]] == [
        "Scheduled a refresh of 1 rule segment(s). Skipped 1 fixed list(s); "
        "only rule segments are refreshed."
    ]


def test_refresh_without_htmx_goes_back_to_the_page(
    marketer_client, django_capture_on_commit_callbacks
):
    segment = _rule_segment()

    with django_capture_on_commit_callbacks() as callbacks:
        response = marketer_client.post(_url("segment-refresh", segment))

    assert response.status_code == 302
    assert response["Location"] == f"/segments/{segment.pk}/"
    assert len(callbacks) == 1


def test_a_rule_segment_never_counted_says_so_and_polls_until_the_worker_counted_it(
    marketer_client,
):
    CustomerFactory(country="DE")
    segment = _rule_segment()

    html = marketer_client.get(_url("segment-detail", segment)).content.decode()

    assert '<b id="segment-count">—</b> not counted yet' in html
    assert "refreshing…" in html
    assert f"{_url('segment-status', segment)}?since=&amp;polls=1" in html

    segment_refresh(segment=segment)
    html = marketer_client.get(_url("segment-detail", segment)).content.decode()
    assert '<b id="segment-count">1</b> member<' in html
    assert "refreshing…" not in html


def test_page_lists_the_campaigns_and_rule_segments_that_use_the_segment(marketer_client):
    from tests.campaigns.factories import CampaignFactory

    listed = segment_create_static(name="VIPs", kind=SegmentKind.IMPORTED, customer_ids=[])
    user = _rule_segment(
        name="VIP Germans",
        rules={"op": "and", "conditions": [{"kind": "segment", "segment": listed.pk, "op": "in"}]},
    )
    CampaignFactory(name="Spring sale", segment=listed, channel="sms", status="scheduled")

    response = marketer_client.get(_url("segment-detail", listed))

    html = response.content.decode()
    used_by = response.context["used_by"]
    assert [c.name for c in used_by["campaigns"]] == ["Spring sale"]
    assert used_by["segments"] == [user]
    assert f'<a href="{reverse("campaigns:campaign-list")}?q=Spring%20sale">Spring sale</a>' in html
    assert f'<a href="{_url("segment-detail", user)}">VIP Germans</a>' in html
    unused = marketer_client.get(_url("segment-detail", user)).content.decode()
    assert "No campaign targets this segment and no other segment refers to it." in unused


@pytest.mark.parametrize(
    ("source", "label", "order"),
    [
        ("attribute_affinity", "Affinity score", [1, 2, 0]),
        ("cluster", "Distance to centre", [0, 2, 1]),
    ],
)
def test_model_segment_members_show_their_score_best_first(marketer_client, source, label, order):
    customers = CustomerFactory.create_batch(3)
    scores = {customers[0].pk: 0.25, customers[1].pk: 2.5, customers[2].pk: 1.0}
    segment = segment_create_static(
        name="Scored",
        kind=SegmentKind.MODEL,
        customer_ids=list(scores),
        scores=scores,
        definition={"source": source},
    )

    response = marketer_client.get(_url("segment-detail", segment))

    html = response.content.decode()
    assert [c.pk for c in response.context["page_obj"]] == [customers[i].pk for i in order]
    assert f'<th class="num">{label}</th>' in html
    assert re.findall(r'<td class="num">([0-9.]+)</td>', html) == [
        f"{scores[customers[i].pk]:.3f}" for i in order
    ]


def test_rule_and_imported_segment_members_have_no_score_column(marketer_client):
    customer = CustomerFactory()
    listed = segment_create_static(
        name="Listed", kind=SegmentKind.IMPORTED, customer_ids=[customer.pk]
    )

    response = marketer_client.get(_url("segment-detail", listed))

    assert response.context["score_label"] == ""
    assert "<th>Country</th></tr>" in response.content.decode()


def test_campaign_list_links_each_campaign_to_its_segment(marketer_client):
    from tests.campaigns.factories import CampaignFactory

    campaign = CampaignFactory(name="Spring sale")

    html = marketer_client.get(reverse("campaigns:campaign-list")).content.decode()

    link = f'<a href="{_url("segment-detail", campaign.segment)}">{campaign.segment.name}</a>'
    assert link in html


def test_definition_says_yes_or_no_for_flags(marketer_client):
    segment = segment_create_static(
        name="Flags",
        kind=SegmentKind.MODEL,
        customer_ids=[],
        definition={"source": "item_affinity", "fallback_from_served_model": False},
    )

    response = marketer_client.get(_url("segment-detail", segment))

    assert response.context["definition_rows"] == [
        ("Source", "Affinity for an item"),
        ("Fallback from served model", "no"),
    ]


def test_history_chart_of_a_single_count_spans_a_day_around_it(marketer_client):
    CustomerFactory(country="DE")
    segment = _rule_segment()
    segment_refresh(segment=segment)
    taken = SegmentSnapshot.objects.get(segment=segment).taken_at

    response = marketer_client.get(_url("segment-detail", segment))

    layout = json.loads(response.context["chart_layout"])
    assert layout["xaxis"] == {
        "type": "date",
        "range": [
            (taken - timedelta(hours=12)).isoformat(),
            (taken + timedelta(hours=12)).isoformat(),
        ],
    }
    assert _figure(response.content.decode())[0]["mode"] == "lines+markers"

    segment_refresh(segment=segment)
    layout = json.loads(
        marketer_client.get(_url("segment-detail", segment)).context["chart_layout"]
    )
    assert "xaxis" not in layout
    assert layout["yaxis"] == {"title": {"text": "members"}, "rangemode": "tozero"}
