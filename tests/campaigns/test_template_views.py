import pytest
from django.urls import reverse

from campaigns.models import MessageTemplate
from tests.campaigns.factories import CampaignFactory, MessageTemplateFactory
from tests.profiles.factories import CustomerFactory

HTMX = {"HX-Request": "true"}
PREVIEW = reverse("campaigns:template-preview")


def _email_fields(**overrides):
    return {
        "name": "Welcome",
        "channel": "email",
        "subject": "Hi {{ customer.first_name }}",
        "html_body": "<p>Hello {{ customer.first_name }} & {{ customer.last_name }}</p>",
        "body": "",
        "url": "",
        "icon": "",
        **overrides,
    }


@pytest.mark.parametrize("client_fixture", ["marketer_client", "analyst_client"])
def test_template_list(db, request, client_fixture, django_assert_num_queries):
    client = request.getfixturevalue(client_fixture)
    spring = MessageTemplateFactory(name="Spring", subject="Spring sale")
    MessageTemplateFactory(name="Reminder", channel="sms", subject="")
    CampaignFactory(template=spring)
    CampaignFactory(template=spring)
    with django_assert_num_queries(5):  # session, user, groups, count, page
        response = client.get(reverse("campaigns:template-list"))
    content = response.content.decode()
    assert response.status_code == 200
    assert [(t.name, t.campaign_count) for t in response.context["page_obj"]] == [
        ("Reminder", 0),
        ("Spring", 2),
    ]
    assert f'href="/campaigns/templates/{spring.pk}/"' in content
    assert ("New template" in content) is (client_fixture == "marketer_client")
    sms = client.get(reverse("campaigns:template-list"), {"channel": "sms"}, headers=HTMX)
    assert [t.name for t in sms.context["page_obj"]] == ["Reminder"]
    assert sms.content.decode().lstrip().startswith('<div id="template-table"')


def test_campaign_list_links_to_templates(analyst_client):
    content = analyst_client.get(reverse("campaigns:campaign-list")).content.decode()
    assert 'href="/campaigns/templates/"' in content


def test_create_template(marketer_client):
    response = marketer_client.post(
        reverse("campaigns:template-create"), _email_fields(), headers=HTMX
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == "/campaigns/templates/"
    template = MessageTemplate.objects.get()
    assert (template.name, template.channel, template.subject, template.body) == (
        "Welcome",
        "email",
        "Hi {{ customer.first_name }}",
        "",
    )


def test_create_with_syntax_error_shows_the_line_and_saves_nothing(marketer_client):
    response = marketer_client.post(
        reverse("campaigns:template-create"),
        _email_fields(html_body="<p>ok</p>\n<p>{{ customer.first_name </p>"),
        headers=HTMX,
    )
    content = response.content.decode()
    assert response.status_code == 200
    assert content.lstrip().startswith('<form id="template-editor"')
    assert 'id="html_body-error">Line 2: ' in content
    assert MessageTemplate.objects.count() == 0


def test_edit_template(marketer_client):
    template = MessageTemplateFactory(name="Old", channel="sms", subject="", body="Hi")
    response = marketer_client.post(
        reverse("campaigns:template-edit", args=[template.pk]),
        {"name": "New", "channel": "sms", "body": "Hi {{ customer.first_name }}"},
    )
    assert response.status_code == 302
    template.refresh_from_db()
    assert (template.name, template.body) == ("New", "Hi {{ customer.first_name }}")


def test_analyst_cannot_save(analyst_client):
    template = MessageTemplateFactory(name="Keep", channel="sms", subject="", body="Hi")
    created = analyst_client.post(reverse("campaigns:template-create"), _email_fields())
    edited = analyst_client.post(
        reverse("campaigns:template-edit", args=[template.pk]),
        {"name": "Changed", "channel": "sms", "body": "x"},
    )
    assert (created.status_code, edited.status_code) == (403, 403)
    assert analyst_client.get(reverse("campaigns:template-create")).status_code == 403
    assert list(MessageTemplate.objects.values_list("name", "body")) == [("Keep", "Hi")]
    page = analyst_client.get(reverse("campaigns:template-edit", args=[template.pk]))
    assert page.status_code == 200
    assert "Save template" not in page.content.decode()


def test_preview_renders_for_the_chosen_customer(analyst_client):
    CustomerFactory(first_name="Grace", last_name="Hopper", email="grace@example.com")
    ada = CustomerFactory(first_name="Ada", last_name="<b>", email="ada@example.com")
    response = analyst_client.post(
        PREVIEW, {**_email_fields(), "customer": "ADA@example.com"}, headers=HTMX
    )
    content = response.content.decode()
    assert content.lstrip().startswith('<div class="card" id="template-preview"')
    assert "<b>Hi Ada</b>" in content
    # the last name escaped by Jinja, then the whole HTML once more into the srcdoc attribute
    assert 'srcdoc="&lt;p&gt;Hello Ada &amp; &amp;lt;b&amp;gt;&lt;/p&gt;"' in content
    assert 'sandbox=""' in content
    assert f'name="preview_pk" value="{ada.pk}"' in content
    assert MessageTemplate.objects.count() == 0


def test_preview_shows_the_failing_variable(marketer_client):
    customer = CustomerFactory(first_name="Ada")
    response = marketer_client.post(
        PREVIEW,
        {**_email_fields(html_body="<p>{{ customer.first_name }}</p>\n{{ customer.nickname }}"),
         "customer": str(customer.pk)},
        headers=HTMX,
    )  # fmt: skip
    content = response.content.decode()
    assert 'id="preview-render-error"' in content
    assert "html, line 2: no variable &#x27;nickname&#x27;" in content


def test_preview_keeps_the_shown_customer_and_reports_unknown_ones(marketer_client):
    first, second = CustomerFactory(first_name="One"), CustomerFactory(first_name="Two")
    fields = _email_fields()
    for customer in (first, second):
        content = marketer_client.post(
            PREVIEW, {**fields, "preview_pk": str(customer.pk)}, headers=HTMX
        ).content.decode()
        assert f"<b>Hi {customer.first_name}</b>" in content
    missing = marketer_client.post(PREVIEW, {**fields, "customer": "nobody"}, headers=HTMX)
    assert "No customer matches “nobody”." in missing.content.decode()


def test_preview_sms_segments_and_push_card(marketer_client):
    CustomerFactory(first_name="Ada")
    sms = marketer_client.post(
        PREVIEW,
        {"channel": "sms", "body": "Hi {{ customer.first_name }} " + "x" * 160},
        headers=HTMX,
    ).content.decode()
    assert "167 characters (GSM-7), 2 segments" in sms
    push = marketer_client.post(
        PREVIEW,
        {"channel": "push", "subject": "T {{ customer.first_name }}", "body": "B", "url": "/x"},
        headers=HTMX,
    ).content.decode()
    assert '<b id="preview-title">T Ada</b>' in push
    assert '<div class="small muted mono" id="preview-url">/x</div>' in push


def test_preview_syntax_errors_per_field(marketer_client):
    content = marketer_client.post(
        PREVIEW, {"channel": "push", "subject": "{{ x", "body": ""}, headers=HTMX
    ).content.decode()
    assert 'id="preview-syntax-errors"' in content
    assert "<p>subject: Line 1: " in content
    assert "<p>body: Body is required for push messages.</p>" in content


def test_admin_refuses_a_template_that_does_not_compile(admin_client):
    response = admin_client.post(
        "/admin/campaigns/messagetemplate/add/",
        {
            "name": "Bad",
            "channel": "sms",
            "subject": "",
            "body": "Hi {{ customer.",
            "html_body": "",
        },
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["body"][0].startswith("Line 1: ")
    assert MessageTemplate.objects.count() == 0
