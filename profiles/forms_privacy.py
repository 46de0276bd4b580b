from django import forms

from profiles.models import ConsentPurpose


class ConsentForm(forms.Form):
    purpose = forms.ChoiceField(choices=ConsentPurpose.choices)
    granted = forms.TypedChoiceField(choices=[("1", "grant"), ("0", "withdraw")], coerce=int)
    note = forms.CharField(max_length=500, required=False)


class EraseForm(forms.Form):
    confirm = forms.CharField(
        help_text="Type the customer's id to confirm.", max_length=128, required=True
    )

    def __init__(self, *args, expected: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.expected = expected

    def clean_confirm(self):
        value = self.cleaned_data["confirm"].strip()
        if value != self.expected:
            raise forms.ValidationError("Type the customer's id exactly to confirm the erasure.")
        return value
