import re
from typing import cast

from django import forms

from insights.models import Brand, BrandKind, SentimentLabel
from insights.selectors_health import DEFAULT_WINDOW_DAYS, WINDOW_DAYS
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
    sentiment = forms.ChoiceField(
        required=False,
        choices=[("", "Any sentiment"), *SentimentLabel.choices],
        widget=forms.Select(attrs={"aria-label": "Sentiment"}),
    )
    date_from = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date", "aria-label": "From"}),
    )
    date_to = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date", "aria-label": "To"}),
    )
    customer = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def __init__(self, *args, brands, sources: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        brand_field = cast(forms.ModelChoiceField, self.fields["brand"])
        source_field = cast(forms.ChoiceField, self.fields["source"])
        brand_field.queryset = brands
        source_field.choices = [("", "All sources")] + [(s, s) for s in sources]


def _split(text: str) -> list[str]:
    """Comma- or line-separated values."""
    return [part.strip() for part in re.split(r"[,\n]", text or "") if part.strip()]


class TermsField(forms.CharField):
    """A list edited as comma- or line-separated text."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 2, "cols": 50}))
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        return value

    def to_python(self, value) -> list[str]:  # type: ignore[override]
        if isinstance(value, list):
            return [str(v).strip() for v in value if str(v).strip()]
        return _split(super().to_python(value) or "")


class BrandForm(forms.Form):
    """The brand editor. Tags' signs (#, @) may be typed or not; the service strips them."""

    name = forms.CharField(max_length=200)
    kind = forms.ChoiceField(choices=BrandKind.choices)
    parent = forms.ModelChoiceField(
        queryset=Brand.objects.none(),
        required=False,
        empty_label="—",
        help_text="For a product: the brand it belongs to.",
    )
    aliases = TermsField(help_text="Other names and spellings, separated by commas.")
    hashtags = TermsField(help_text="e.g. #acme, #acmeshoes")
    handles = TermsField(help_text="Social accounts, e.g. @acme")
    is_own = forms.BooleanField(
        required=False, initial=True, label="Our own (untick for a competitor)"
    )
    is_active = forms.BooleanField(required=False, initial=True, label="Listening")
    alert_emails = TermsField(
        label="Alert emails",
        help_text="Emailed when negative mentions spike; empty: the marketers.",
    )

    def __init__(self, *args, brand: Brand | None = None, **kwargs) -> None:
        if brand is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": brand.name,
                "kind": brand.kind,
                "parent": brand.parent_id,
                "aliases": brand.aliases,
                "hashtags": brand.hashtags,
                "handles": brand.handles,
                "is_own": brand.is_own,
                "is_active": brand.is_active,
                "alert_emails": brand.alert_emails,
            }
        super().__init__(*args, **kwargs)
        parents = Brand.objects.filter(kind=BrandKind.BRAND).order_by("name")
        if brand is not None:
            parents = parents.exclude(pk=brand.pk)
        cast(forms.ModelChoiceField, self.fields["parent"]).queryset = parents


class HealthWindowForm(forms.Form):
    brand = forms.IntegerField(required=False, min_value=1)
    days = forms.TypedChoiceField(
        choices=[(d, f"{d} days") for d in WINDOW_DAYS],
        coerce=int,
        required=False,
        empty_value=DEFAULT_WINDOW_DAYS,  # type: ignore[arg-type]
    )
