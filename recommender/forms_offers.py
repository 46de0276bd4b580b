from django import forms

from marketing.common.listing import choice_filter, search_field
from profiles.models import Segment
from recommender.models import OFFER_CHANNELS, Item, Offer, OfferStatus, OfferType
from recommender.offers_services import OFFER_FIELDS

MAX_LINKED_ITEMS = 20


class OfferFilterForm(forms.Form):
    q = search_field(placeholder="Search offer or item", label="Search")
    status = choice_filter(choices=OfferStatus.choices, empty="Any status", label="Status")
    type = choice_filter(choices=OfferType.choices, empty="All types", label="Type")


def _ids(text: str) -> list[str]:
    return [p.strip() for p in text.replace("\n", ",").split(",") if p.strip()]


class OfferForm(forms.ModelForm):
    """The offer editor. Linked items and placements are typed as comma-separated ids (a
    catalog has too many items for a select); rules across fields are the model's clean()."""

    item_id = forms.CharField(
        required=False, max_length=128, label="Main item (storefront id)",
        help_text="The offered item: its stock, category and price feed eligibility and ranking.",
    )  # fmt: skip
    extra_item_ids = forms.CharField(
        required=False, label="Further linked items",
        help_text="Comma-separated storefront ids (a bundle's other parts); all must be in stock.",
        widget=forms.TextInput(),
    )  # fmt: skip
    channels = forms.MultipleChoiceField(
        required=False,
        choices=[(c, c) for c in OFFER_CHANNELS],
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every channel.",
    )
    placements = forms.CharField(
        required=False,
        max_length=500,
        help_text="Comma-separated, e.g. home_banner, cart. Empty: every placement.",
    )
    starts_at = forms.DateTimeField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    ends_at = forms.DateTimeField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )

    class Meta:
        model = Offer
        fields = [
            "name", "title", "description", "image_url", "deep_link", "type", "status",
            "discount_percent", "segment", "priority", "max_impressions", "max_redemptions",
            "max_impressions_per_customer", "max_redemptions_per_customer",
        ]  # fmt: skip
        labels = {"description": "Text"}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["segment"].queryset = Segment.objects.order_by("name")  # type: ignore[attr-defined]
        offer = self.instance
        if offer.pk:
            self.initial.setdefault("item_id", offer.item.external_id if offer.item else "")
            self.initial.setdefault(
                "extra_item_ids",
                ", ".join(i.external_id for i in offer.items.exclude(pk=offer.item_id)),
            )
            self.initial.setdefault("channels", offer.channels)
            self.initial.setdefault("placements", ", ".join(offer.placements))

    def clean_placements(self) -> list[str]:
        return _ids(self.cleaned_data.get("placements") or "")

    def clean(self):
        data = super().clean()
        wanted = [data.get("item_id") or ""] + _ids(data.get("extra_item_ids") or "")
        wanted = [w.strip() for w in wanted if w.strip()]
        if len(wanted) > MAX_LINKED_ITEMS:
            self.add_error("extra_item_ids", f"At most {MAX_LINKED_ITEMS} linked items.")
            return data
        found = Item.objects.in_bulk(wanted, field_name="external_id")
        missing = [w for w in wanted if w not in found]
        if missing:
            field = "item_id" if data.get("item_id") in missing else "extra_item_ids"
            self.add_error(field, f"No catalog item with id {', '.join(missing)}.")
        data["item"] = found.get((data.get("item_id") or "").strip())
        data["items"] = [found[w] for w in wanted if w in found]
        return data

    def _post_clean(self) -> None:
        """The service runs the model's validation; the form only parses."""

    def fields_for_service(self) -> dict:
        return {k: v for k, v in self.cleaned_data.items() if k in OFFER_FIELDS}
