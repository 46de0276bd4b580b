from django import forms

from recommender.segment_affinity import MAX_TOP_N


class AffinitySegmentForm(forms.Form):
    """Name, target (an item or an attribute expression) and size (top N or top %)."""

    TARGETS = (("expression", "Items matching an expression"), ("item", "One item"))
    SIZES = (("top_n", "Top customers"), ("top_percent", "Top percent of customers"))

    name = forms.CharField(max_length=200)
    target = forms.ChoiceField(choices=TARGETS, initial="expression", widget=forms.RadioSelect)
    expression = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.TextInput(
            attrs={"placeholder": 'category = "books" and price < 20', "size": 70}
        ),
        help_text="Fields: item columns (category, brand, price, in_stock, title, external_id) "
        'and attribute keys; = != < <= > >=, in ("A", "B"), and, or, not, parentheses.',
    )
    item_id = forms.CharField(
        required=False,
        max_length=128,
        label="Item",
        widget=forms.TextInput(attrs={"list": "affinity-items", "placeholder": "item id"}),
    )
    size = forms.ChoiceField(choices=SIZES, initial="top_n", widget=forms.RadioSelect)
    top_n = forms.IntegerField(required=False, min_value=1, max_value=MAX_TOP_N, initial=1000)
    top_percent = forms.FloatField(required=False, min_value=0.01, max_value=100)

    def clean(self):
        data = super().clean()
        target, size = data.get("target"), data.get("size")
        if target == "expression" and not data.get("expression"):
            self.add_error("expression", 'Enter an expression, e.g. category = "books".')
        if target == "item" and not data.get("item_id"):
            self.add_error("item_id", "Pick an item.")
        for field, message in (
            ("top_n", "Enter how many customers."),
            ("top_percent", "Enter a percentage."),
        ):
            if size == field and data.get(field) is None and field not in self.errors:
                self.add_error(field, message)
        return data

    def request_kwargs(self) -> dict:
        data = self.cleaned_data
        by_item = data["target"] == "item"
        by_count = data["size"] == "top_n"
        return {
            "name": data["name"],
            "item_id": data["item_id"] if by_item else None,
            "expression": None if by_item else data["expression"],
            "top_n": data["top_n"] if by_count else None,
            "top_percent": None if by_count else data["top_percent"],
        }
