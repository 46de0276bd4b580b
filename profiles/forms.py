from django import forms

from profiles.models import SegmentKind

ANONYMOUS_CHOICES = [
    ("", "Known and anonymous"),
    ("false", "Known only"),
    ("true", "Anonymous only"),
]


class CustomerFilterForm(forms.Form):
    q = forms.CharField(
        required=False,
        max_length=200,
        widget=forms.TextInput(
            attrs={
                "type": "search",
                "placeholder": "Search id, email or name",
                "aria-label": "Search customers",
                "autocomplete": "off",
            }
        ),
    )
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
    q = forms.CharField(
        required=False,
        max_length=200,
        widget=forms.TextInput(
            attrs={
                "type": "search",
                "placeholder": "Search name or description",
                "aria-label": "Search segments",
                "autocomplete": "off",
            }
        ),
    )
    kind = forms.ChoiceField(
        required=False,
        choices=[("", "All kinds"), *SegmentKind.choices],
        widget=forms.Select(attrs={"aria-label": "Kind"}),
    )
