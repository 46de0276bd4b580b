from django import forms

from campaigns.models import CampaignStatus
from profiles.models import Channel


class CampaignFilterForm(forms.Form):
    q = forms.CharField(
        required=False,
        max_length=200,
        widget=forms.TextInput(
            attrs={
                "type": "search",
                "placeholder": "Search name",
                "aria-label": "Search campaigns",
                "autocomplete": "off",
            }
        ),
    )
    status = forms.ChoiceField(
        required=False,
        choices=[("", "Any status"), *CampaignStatus.choices],
        widget=forms.Select(attrs={"aria-label": "Status"}),
    )
    channel = forms.ChoiceField(
        required=False,
        choices=[("", "All channels"), *Channel.choices],
        widget=forms.Select(attrs={"aria-label": "Channel"}),
    )
