from typing import cast

from django import forms

from insights.models import Brand
from marketing.common.listing import search_field


class PostFilterForm(forms.Form):
    q = search_field(placeholder="Search text or author", label="Search posts")
    brand = forms.ModelChoiceField(
        required=False,
        queryset=Brand.objects.none(),
        empty_label="All brands",
        widget=forms.Select(attrs={"aria-label": "Brand"}),
    )
    source = forms.ChoiceField(required=False, widget=forms.Select(attrs={"aria-label": "Source"}))

    def __init__(self, *args, brands, sources: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        brand_field = cast(forms.ModelChoiceField, self.fields["brand"])
        source_field = cast(forms.ChoiceField, self.fields["source"])
        brand_field.queryset = brands
        source_field.choices = [("", "All sources")] + [(s, s) for s in sources]
