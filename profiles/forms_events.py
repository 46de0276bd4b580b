from django import forms

from marketing.common.listing import choice_filter
from profiles.models import EventChannel, EventType
from profiles.selectors_events import DEFAULT_WINDOW, EventCursor

WINDOW_CHOICES = [
    ("hour", "Last hour"),
    ("day", "Last 24 hours"),
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
]


class EventFilterForm(forms.Form):
    type = choice_filter(choices=EventType.choices, empty="All types", label="Type")
    channel = choice_filter(choices=EventChannel.choices, empty="All channels", label="Channel")
    campaign = forms.IntegerField(
        required=False,
        min_value=1,
        widget=forms.NumberInput(
            attrs={"placeholder": "Campaign id", "aria-label": "Campaign id", "size": 9}
        ),
    )
    item = forms.CharField(
        required=False,
        max_length=128,
        widget=forms.TextInput(attrs={"placeholder": "Item or offer id", "aria-label": "Item id"}),
    )
    window = forms.ChoiceField(
        required=False,
        choices=WINDOW_CHOICES,
        widget=forms.Select(attrs={"aria-label": "Window"}),
    )
    rec = forms.BooleanField(required=False, label="Clicks on recommendations")
    before = forms.CharField(required=False, max_length=40, widget=forms.HiddenInput)

    def clean_window(self) -> str:
        return self.cleaned_data["window"] or DEFAULT_WINDOW

    def clean_before(self) -> EventCursor | None:
        value = self.cleaned_data["before"]
        if not value:
            return None
        cursor = EventCursor.decode(value)
        if cursor is None:
            raise forms.ValidationError("Not a page of this list.")
        return cursor
