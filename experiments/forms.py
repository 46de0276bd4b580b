from django import forms

from experiments.models import ExperimentKind, ExperimentStatus


class ExperimentFilterForm(forms.Form):
    q = forms.CharField(
        required=False,
        max_length=200,
        widget=forms.TextInput(
            attrs={
                "type": "search",
                "placeholder": "Search name or hypothesis",
                "aria-label": "Search experiments",
                "autocomplete": "off",
            }
        ),
    )
    kind = forms.ChoiceField(
        required=False,
        choices=[("", "All kinds"), *ExperimentKind.choices],
        widget=forms.Select(attrs={"aria-label": "Kind"}),
    )
    status = forms.ChoiceField(
        required=False,
        choices=[("", "Any status"), *ExperimentStatus.choices],
        widget=forms.Select(attrs={"aria-label": "Status"}),
    )
