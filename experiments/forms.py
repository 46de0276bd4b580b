from django import forms

from experiments.models import ExperimentKind, ExperimentStatus
from marketing.common.listing import choice_filter, search_field


class ExperimentFilterForm(forms.Form):
    q = search_field(placeholder="Search name or hypothesis", label="Search experiments")
    kind = choice_filter(choices=ExperimentKind.choices, empty="All kinds", label="Kind")
    status = choice_filter(choices=ExperimentStatus.choices, empty="Any status", label="Status")
