from django import forms

from recommender.models import Algorithm


class TrainForm(forms.Form):
    algorithm = forms.ChoiceField(
        choices=Algorithm.choices,
        initial=Algorithm.HYBRID,
        widget=forms.Select(attrs={"aria-label": "Algorithm to train"}),
    )


class RollbackForm(forms.Form):
    algorithm = forms.ChoiceField(choices=Algorithm.choices)
