from django import forms

from marketing.common.listing import choice_filter, search_field
from profiles.models import SegmentKind

ANONYMOUS_CHOICES = [
    ("", "Known and anonymous"),
    ("false", "Known only"),
    ("true", "Anonymous only"),
]


class CustomerFilterForm(forms.Form):
    q = search_field(placeholder="Search id, email or name", label="Search customers")
    country = forms.CharField(
        required=False,
        max_length=2,
        widget=forms.TextInput(
            attrs={"placeholder": "Country", "aria-label": "Country code", "size": 7}
        ),
    )
    anonymous = forms.NullBooleanField(
        required=False, widget=forms.Select(choices=ANONYMOUS_CHOICES, attrs={"aria-label": "Kind"})
    )

    def clean_country(self) -> str:
        return self.cleaned_data["country"].strip().upper()


class SegmentFilterForm(forms.Form):
    q = search_field(placeholder="Search name or description", label="Search segments")
    kind = choice_filter(choices=SegmentKind.choices, empty="All kinds", label="Kind")
