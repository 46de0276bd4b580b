from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from campaigns.models import MessageTemplate
from campaigns.personalization import context_for_customers
from campaigns.template_services import message_template_create, message_template_update
from campaigns.templating import (
    MessageLinks,
    TemplatePartsError,
    TemplateRenderError,
    html_to_text,
    parts_compile,
    render,
    sms_segments,
    template_compile,
)
from profiles.consent import consent_set
from profiles.features import features_empty
from profiles.models import CustomerFeatures
from recommender import serving
from recommender.serving_services import recommendation_lists_store
from tests.campaigns.factories import MessageTemplateFactory
from tests.profiles.factories import CustomerFactory
from tests.recommender.factories import ItemFactory, ModelVersionFactory

ITEM = {
    "id": "i1",
    "title": "Red <shoe>",
    "image_url": "https://img/1.jpg",
    "url": "https://shop/i1",
    "price": Decimal("1234.5"),
    "category": "shoes",
    "brand": "Acme",
}
CONTEXT = {
    "customer": {"first_name": "Ada", "last_name": "Byron", "attributes": {"tier": "gold"}},
    "recommendations": [ITEM],
    "campaign": {"name": "Spring"},
}


def _email(html, subject="Hi {{ customer.first_name }}", text=""):
    return parts_compile("email", {"subject": subject, "html": html, "text": text})


def test_render_email_with_recommendation_and_filters():
    compiled = _email(
        "<p>{{ customer|first_name_or('there') }}: {{ recommendations.0.title }}"
        " {{ recommendations.0.price|money }} {{ recommendations.0.price|money('USD', 0) }}"
        " {{ customer.attributes.tier }} {{ customer.nickname|default('friend') }}</p>"
        '<a href="{{ unsubscribe_url }}">Unsubscribe</a>',
        text="{{ campaign.name }} {{ recommendations.0.title }} {{ view_in_browser_url }}",
    )
    message = render(
        compiled,
        CONTEXT,
        links=MessageLinks(unsubscribe_url="https://u/x", view_in_browser_url="V"),
    )
    assert message.subject == "Hi Ada"
    assert message.html == (
        "<p>Ada: Red &lt;shoe&gt; €1,234.50 $1,235 gold friend</p>"
        '<a href="https://u/x">Unsubscribe</a>'
    )
    assert message.text == "Spring Red <shoe> V"


def test_text_part_is_derived_from_html_when_blank():
    compiled = _email(
        "<style>p{}</style><h1>Hello {{ customer.first_name }}</h1><ul><li>One</li><li>Two</li>"
        '</ul><p>See <a href="https://shop/x">our shop</a> &amp; more</p>'
    )
    assert render(compiled, CONTEXT).text == (
        "Hello Ada\n\n- One\n\n- Two\n\nSee our shop (https://shop/x) & more"
    )


@pytest.mark.parametrize(
    ("html", "fragment"),
    [
        ("<p>{{ customer.middle_name }}</p>", "middle_name"),
        ("<p>{{ recommendations.3.title }}</p>", "3"),
        ("<p>{{ coupon }}</p>", "coupon"),
    ],
)
def test_undefined_variable_is_an_error_not_a_partial_message(html, fragment):
    compiled = _email("<p>Dear {{ customer.first_name }}</p>\n" + html)
    with pytest.raises(TemplateRenderError) as caught:
        render(compiled, CONTEXT)
    assert caught.value.part == "html"
    assert caught.value.line == 2
    assert fragment in caught.value.message


def test_first_part_rendered_is_not_returned_when_a_later_part_fails():
    compiled = _email("<p>ok</p>", text="{{ customer.missing }}")
    with pytest.raises(TemplateRenderError) as caught:
        render(compiled, CONTEXT)
    assert caught.value.part == "text"
    assert "missing" in str(caught.value)


@pytest.mark.parametrize(
    "expression",
    [
        "customer.__class__",
        "customer.__class__.__mro__",
        "recommendations.pop()",
        "''.__class__.__subclasses__()",
    ],
)
def test_sandbox_refuses_python_internals(expression):
    compiled = _email("<p>{{ " + expression + " }}</p>")
    with pytest.raises(TemplateRenderError):
        render(compiled, CONTEXT)
    assert CONTEXT["recommendations"] == [ITEM]


def test_syntax_error_reports_part_and_line():
    with pytest.raises(TemplatePartsError) as caught:
        _email("<p>one</p>\n<p>{{ customer.first_name </p>", subject="{% if %}")
    assert set(caught.value.errors) == {"subject", "html"}
    assert caught.value.errors["html"].startswith("Line 2: ")
    assert caught.value.errors["subject"].startswith("Line 1: ")


@pytest.mark.parametrize(
    ("channel", "sources", "errors"),
    [
        ("email", {"subject": ""}, {"subject", "html"}),
        ("sms", {"text": " "}, {"text"}),
        ("push", {"text": "x"}, {"title"}),
    ],
)
def test_required_parts(channel, sources, errors):
    with pytest.raises(TemplatePartsError) as caught:
        parts_compile(channel, sources)
    assert set(caught.value.errors) == errors


def test_sms_and_push_render_plain_text():
    sms = parts_compile(
        "sms", {"text": "Hi {{ customer.first_name }} & {{ recommendations.0.title }}"}
    )
    assert render(sms, CONTEXT).text == "Hi Ada & Red <shoe>"
    push = parts_compile(
        "push",
        {
            "title": "{{ recommendations.0.title }}",
            "text": "b",
            "url": "{{ recommendations.0.url }}",
        },
    )
    message = render(push, CONTEXT)
    assert (message.title, message.text, message.url, message.icon) == (
        "Red <shoe>",
        "b",
        "https://shop/i1",
        "",
    )


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("", "GSM-7", 0, 0),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("€" * 80, "GSM-7", 160, 1),
        ("ü" * 70, "GSM-7", 70, 1),
        ("ł" * 70, "UCS-2", 70, 1),
        ("ł" * 71, "UCS-2", 71, 2),
        ("😀" * 35, "UCS-2", 70, 1),
    ],
)
def test_sms_segments(text, encoding, units, segments):
    length = sms_segments(text)
    assert (length.encoding, length.units, length.segments) == (encoding, units, segments)


def test_html_to_text_keeps_image_alt_and_drops_anchor_only_links():
    assert html_to_text('<img alt="Logo"><br><a href="#top">top</a>') == "Logo\ntop"


# --- the model, its service and the bulk contexts ------------------------------------------


@pytest.mark.django_db
def test_template_compile_reports_model_field_and_line():
    template = MessageTemplate(
        name="t", channel="email", subject="ok", html_body="<p>\n{% for x in y %}</p>"
    )
    with pytest.raises(ValidationError) as caught:
        template_compile(template)
    assert list(caught.value.message_dict) == ["html_body"]
    assert caught.value.message_dict["html_body"][0].startswith("Line 2: ")


@pytest.mark.django_db
def test_message_template_update_with_syntax_error_changes_nothing():
    template = message_template_create(
        name="Welcome", channel="email", subject="Hi", html_body="<p>{{ customer.first_name }}</p>"
    )
    with pytest.raises(ValidationError) as caught:
        message_template_update(template=template, subject="{{ oops", name="Renamed")
    assert list(caught.value.message_dict) == ["subject"]
    template.refresh_from_db()
    assert (template.name, template.subject) == ("Welcome", "Hi")
    with pytest.raises(ValidationError) as caught:
        message_template_create(name="Welcome", channel="sms", body="x")
    assert list(caught.value.message_dict) == ["name"]
    assert MessageTemplate.objects.count() == 1


@pytest.fixture
def shop(db):
    """Items i1..i5 (popular in that order), a hybrid model with a list for the first buyer."""
    serving._local_drop()
    for n in range(1, 6):
        ItemFactory(
            external_id=f"i{n}",
            title=f"Item {n}",
            category="hats" if n == 5 else "shoes",
            price=Decimal(10 * n),
            image_url=f"https://img/{n}.jpg",
            deep_link=f"https://shop/i{n}",
        )
    ModelVersionFactory(
        algorithm="popularity",
        is_active=True,
        artifact={"item_ids": ["i1", "i2", "i3", "i4", "i5"], "scores": [5, 4, 3, 2, 1]},
    )
    customers = []
    for n in range(3):
        customer = CustomerFactory(first_name=f"Name{n}", attributes={"tier": n})
        CustomerFeatures.objects.create(
            customer=customer,
            state={
                **features_empty(),
                "orders": 2,
                "revenue": 50.0,
                "recent_purchases": ["i5"],
                "affinity": {"hats": 2.0, "shoes": 1.0},
            },
        )
        consent_set(customer=customer, purpose="personalization", granted=n < 2, source="api")
        customers.append(customer)
    version = ModelVersionFactory(algorithm="hybrid", is_active=True)
    recommendation_lists_store(
        version=version, rows=[(customers[0].pk, ["i4", "i5", "i3"], [3.0, 2.0, 1.0])]
    )
    yield customers
    serving._local_drop()


def test_context_for_customers_in_bulk(shop, django_assert_num_queries):
    plain = CustomerFactory(first_name="")
    context_for_customers([shop[0]])  # loads the serving snapshot
    pks = [c.pk for c in shop] + [plain.pk]
    # customers+features, consent, purchases, lists: the same for 4 or 4,000 customers
    with django_assert_num_queries(4):
        contexts = context_for_customers(pks, campaign_name="Spring")
    assert list(contexts) == sorted(pks)
    first = contexts[shop[0].pk]
    assert [r["id"] for r in first["recommendations"]] == ["i4", "i3", "i1"]  # i5 was bought
    assert first["recommendations"][0] == {
        "id": "i4",
        "title": "Item 4",
        "image_url": "https://img/4.jpg",
        "url": "https://shop/i4",
        "price": Decimal("40.00"),
        "category": "shoes",
        "brand": "Acme",
    }
    assert [r["id"] for r in contexts[shop[1].pk]["recommendations"]] == ["i1", "i2", "i3"]
    # no personalization consent: the popular list, purchases not used
    assert [r["id"] for r in contexts[shop[2].pk]["recommendations"]] == ["i1", "i2", "i3"]
    assert first["campaign"] == {"name": "Spring"}
    customer = first["customer"]
    assert customer["first_name"] == "Name0"
    assert customer["attributes"] == {"tier": 0}
    assert customer["features"]["orders"] == 2
    assert customer["features"]["top_category"] == "hats"
    assert customer["features"]["last_purchased_category"] == "hats"
    assert customer["features"]["last_purchased_item"]["title"] == "Item 5"
    assert contexts[plain.pk]["customer"]["features"]["orders"] == 0
    compiled = template_compile(
        MessageTemplateFactory.build(
            channel="email",
            subject="{{ customer|first_name_or('there') }}",
            html_body="{{ recommendations.0.title }} {{ recommendations.0.price|money }}",
            body="",
        )
    )
    assert render(compiled, contexts[plain.pk]).subject == "there"
    assert render(compiled, first).html == "Item 4 €40.00"


def test_context_for_customers_leaves_out_erased_and_unknown(shop):
    shop[1].erased_at = shop[1].created_at
    shop[1].save(update_fields=["erased_at"])
    assert list(context_for_customers([shop[0].pk, shop[1].pk, 999_999])) == [shop[0].pk]
    assert context_for_customers([]) == {}


def test_derived_text_keeps_variables_and_the_unsubscribe_link():
    compiled = _email(
        "<p>Hi {{ customer.first_name }}</p>{% for item in recommendations %}"
        '<p><a href="{{ item.url }}">{{ item.title }}</a></p>{% endfor %}'
        '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
    )
    assert compiled.derived_text is True
    message = render(compiled, CONTEXT, links=MessageLinks(unsubscribe_url="https://u/1"))
    assert message.text == ("Hi Ada\n\nRed <shoe> (https://shop/i1)\n\nUnsubscribe (https://u/1)")


def test_text_is_converted_per_message_when_the_derived_template_does_not_parse():
    compiled = _email(
        "<head>{% if customer.first_name %}<title>x</title></head>{% endif %}<p>b</p>"
    )
    assert (compiled.derived_text, compiled.text_from_html) == (False, True)
    assert render(compiled, CONTEXT).text == "b"
