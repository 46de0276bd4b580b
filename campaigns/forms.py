from django import forms

from campaigns.models import CampaignStatus, MessageTemplate
from marketing.common.listing import choice_filter, search_field
from profiles.models import Channel


class CampaignFilterForm(forms.Form):
    q = search_field(placeholder="Search name", label="Search campaigns")
    status = choice_filter(choices=CampaignStatus.choices, empty="Any status", label="Status")
    channel = choice_filter(choices=Channel.choices, empty="All channels", label="Channel")


class MessageTemplateFilterForm(forms.Form):
    q = search_field(placeholder="Search name or subject", label="Search templates")
    channel = choice_filter(choices=Channel.choices, empty="All channels", label="Channel")


class MessageTemplateForm(forms.ModelForm):
    """The editor; the parts shown depend on the channel (campaigns/templating.py)."""

    class Meta:
        model = MessageTemplate
        fields = ["name", "channel", "subject", "html_body", "body", "url", "icon"]
        labels = {
            "subject": "Subject (email) / title (push, in-app)",
            "html_body": "HTML body",
            "body": "Text (email: leave blank to derive it from the HTML)",
            "url": "Link",
            "icon": "Icon URL",
        }
        widgets = {
            "html_body": forms.Textarea(attrs={"rows": 14, "spellcheck": "false"}),
            "body": forms.Textarea(attrs={"rows": 6}),
        }


class TemplatePreviewForm(forms.Form):
    """What the preview panel posts besides the template fields."""

    customer = forms.CharField(
        required=False,
        max_length=254,
        label="Preview for customer",
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": "id, storefront id or email; blank: random"}
        ),
    )
