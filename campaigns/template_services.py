"""Saving message templates: the model's checks, then the templates must compile."""

from __future__ import annotations

from django.db import transaction

from campaigns.models import MessageTemplate
from campaigns.templating import template_compile

TEMPLATE_FIELDS = ("name", "channel", "subject", "body", "html_body", "url", "icon")


def _validated(template: MessageTemplate) -> MessageTemplate:
    """Raise ValidationError ({field: [messages]}) on model errors or template syntax errors
    ("Line 3: unexpected '}'"), before anything is written."""
    template.full_clean()
    template_compile(template)
    return template


def message_template_create(
    *,
    name: str,
    channel: str,
    subject: str = "",
    body: str = "",
    html_body: str = "",
    url: str = "",
    icon: str = "",
) -> MessageTemplate:
    template = MessageTemplate(
        name=name,
        channel=channel,
        subject=subject,
        body=body,
        html_body=html_body,
        url=url,
        icon=icon,
    )
    with transaction.atomic():
        _validated(template).save()
    return template


def message_template_update(*, template: MessageTemplate, **fields: str) -> MessageTemplate:
    """Change the given fields (of TEMPLATE_FIELDS); on error the stored row is untouched."""
    unknown = set(fields) - set(TEMPLATE_FIELDS)
    if unknown:
        raise TypeError(f"Not a template field: {', '.join(sorted(unknown))}")
    changed = MessageTemplate.objects.get(pk=template.pk)
    for name, value in fields.items():
        setattr(changed, name, value)
    with transaction.atomic():
        _validated(changed).save(update_fields=[*fields, "updated_at"])
    return changed
