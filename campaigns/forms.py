from django import forms
from django.forms.models import ModelChoiceIteratorValue

from campaigns.models import (
    AudienceType,
    Campaign,
    CampaignStatus,
    CampaignVariant,
    MessageTemplate,
    Recurrence,
)
from campaigns.services import CAMPAIGN_FIELDS
from marketing.common.listing import choice_filter, search_field
from profiles.models import Channel, EventType, Segment


class CampaignFilterForm(forms.Form):
    q = search_field(placeholder="Search name", label="Search campaigns")
    status = choice_filter(choices=CampaignStatus.choices, empty="Any status", label="Status")
    channel = choice_filter(choices=Channel.choices, empty="All channels", label="Channel")
    audience_type = choice_filter(
        choices=AudienceType.choices, empty="Any audience", label="Audience"
    )


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


EVENT_CHOICES = [("", "—"), *EventType.choices]
DATETIME_INPUT = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class CampaignForm(forms.ModelForm):
    """The create and edit page; the rules across fields are the service's
    (`campaigns.services.campaign_problems`), whose errors the view puts on these fields."""

    trigger_event_type = forms.ChoiceField(
        choices=EVENT_CHOICES, required=False, label="Trigger event (X)"
    )
    trigger_exit_event_type = forms.ChoiceField(
        choices=EVENT_CHOICES, required=False, label="Exit event (Y): not sent if done within T"
    )
    goal_event_type = forms.ChoiceField(
        choices=EVENT_CHOICES, required=False, label="Conversion goal event"
    )
    segment = forms.ModelChoiceField(
        queryset=Segment.objects.order_by("name"), required=False, label="Segment"
    )
    recurrence = forms.ChoiceField(
        choices=[("", "—"), *Recurrence.choices[1:]], required=False, label="Repeat"
    )

    class Meta:
        model = Campaign
        fields = list(CAMPAIGN_FIELDS)
        labels = {
            "audience_type": "Audience",
            "trigger_delay_minutes": "Delay T (minutes)",
            "trigger_reentry_days": "Re-entry after (days; blank: once per customer)",
            "schedule_type": "Send",
            "scheduled_at": "At (first send; for local time: the date)",
            "recurrence": "Repeat",
            "recurrence_until": "Repeat until",
            "send_local_time": "Local time of each recipient",
            "quiet_hours_start": "Quiet hours from (hour 0-23, recipient's time)",
            "quiet_hours_end": "Quiet hours until (hour 0-23)",
            "goal_window_hours": "Goal window (hours after the send)",
            "holdout_percent": "Holdout (% of the audience who get nothing, for lift)",
            "cost": "Cost",
        }
        widgets = {
            "audience_type": forms.RadioSelect,
            "schedule_type": forms.RadioSelect,
            "scheduled_at": DATETIME_INPUT,
            "recurrence_until": DATETIME_INPUT,
            "send_local_time": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        }


class TemplateSelect(forms.Select):
    """Options carry their template's channel, so the page lists only the campaign's."""

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        if isinstance(value, ModelChoiceIteratorValue):
            option["attrs"]["data-channel"] = value.instance.channel
        return option


class TemplateChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return f"{obj.name} ({obj.get_channel_display()})"


class CampaignVariantForm(forms.ModelForm):
    template = TemplateChoiceField(
        queryset=MessageTemplate.objects.order_by("channel", "name"), widget=TemplateSelect
    )

    class Meta:
        model = CampaignVariant
        fields = ["name", "template", "weight"]


class BaseVariantFormSet(forms.BaseInlineFormSet):
    def get_unique_error_message(self, unique_check) -> str:
        return "Each variant needs its own name."


CampaignVariantFormSet = forms.inlineformset_factory(
    Campaign,
    CampaignVariant,
    form=CampaignVariantForm,
    formset=BaseVariantFormSet,
    extra=1,
    can_delete=True,
    min_num=0,
)


class CampaignPreviewForm(forms.Form):
    customer = forms.CharField(
        required=False,
        max_length=254,
        label="Preview for customer",
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": "storefront id, email or id; blank: random"}
        ),
    )
