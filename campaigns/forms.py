from django import forms

from campaigns.models import CampaignStatus
from marketing.common.listing import choice_filter, search_field
from profiles.models import Channel


class CampaignFilterForm(forms.Form):
    q = search_field(placeholder="Search name", label="Search campaigns")
    status = choice_filter(choices=CampaignStatus.choices, empty="Any status", label="Status")
    channel = choice_filter(choices=Channel.choices, empty="All channels", label="Channel")
