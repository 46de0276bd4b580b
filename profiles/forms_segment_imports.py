from django import forms

from profiles.forms_imports import MAX_UPLOAD_BYTES
from profiles.models import Segment
from profiles.segments.errors import SegmentImportError
from profiles.segments.imports import segment_import_header_check

FILE_HELP = (
    "A UTF-8 CSV file with a header row naming a customer_id (the storefront's id) or an "
    "email column; other columns are ignored. At most 500 MB."
)


def segment_upload_clean(upload):
    """Refuse a file that is too big or has no usable header now, before anything is
    stored (the form and the API serializer)."""
    if upload.size > MAX_UPLOAD_BYTES:
        raise forms.ValidationError(
            f"The file is {upload.size / 1024 / 1024:.0f} MB; at most 500 MB is accepted."
        )
    try:
        segment_import_header_check(upload)
    except SegmentImportError as exc:
        raise forms.ValidationError(exc.message) from None
    return upload


class SegmentImportFileForm(forms.Form):
    """Replace the members of an imported segment: just the file."""

    file = forms.FileField(
        help_text=FILE_HELP, widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"})
    )

    def clean_file(self):
        return segment_upload_clean(self.cleaned_data["file"])


class SegmentImportForm(SegmentImportFileForm):
    name = forms.CharField(
        max_length=Segment._meta.get_field("name").max_length,
        widget=forms.TextInput(attrs={"size": 60}),
    )
    description = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2, "cols": 60})
    )
    field_order = ["name", "description", "file"]
