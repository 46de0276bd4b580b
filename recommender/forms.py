from typing import cast

from django import forms

from marketing.common.listing import choice_filter
from recommender.models import Algorithm, ModelStatus

SEARCH_ATTRS = {"type": "search", "autocomplete": "off"}


class ItemFilterForm(forms.Form):
    q = forms.CharField(
        required=False,
        max_length=200,
        widget=forms.TextInput(
            attrs={
                **SEARCH_ATTRS,
                "placeholder": "Search title or exact id",
                "aria-label": "Search catalog",
            }
        ),
    )
    category = forms.ChoiceField(
        required=False, widget=forms.Select(attrs={"aria-label": "Category"})
    )
    in_stock = forms.NullBooleanField(
        required=False,
        widget=forms.Select(
            choices=[("", "Any stock"), ("true", "In stock"), ("false", "Out of stock")],
            attrs={"aria-label": "Stock"},
        ),
    )
    is_active = forms.NullBooleanField(
        required=False,
        widget=forms.Select(
            choices=[("", "Active and inactive"), ("true", "Active"), ("false", "Inactive")],
            attrs={"aria-label": "Active"},
        ),
    )

    def __init__(self, *args, categories: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        field = cast(forms.ChoiceField, self.fields["category"])
        field.choices = [("", "All categories")] + [(c, c) for c in categories]


class ModelVersionFilterForm(forms.Form):
    algorithm = choice_filter(choices=Algorithm.choices, empty="All algorithms", label="Algorithm")
    status = choice_filter(choices=ModelStatus.choices, empty="Any status", label="Status")
