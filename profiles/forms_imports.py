from django import forms

from marketing.common.csv_import import KINDS, CsvHeaderError, header_check

MAX_UPLOAD_BYTES = 500 * 1024 * 1024


class ImportUploadForm(forms.Form):
    kind = forms.ChoiceField(choices=[(kind, spec.label) for kind, spec in KINDS.items()])
    file = forms.FileField(
        help_text="A UTF-8 CSV file with a header row, at most 500 MB.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                f"The file is {upload.size / 1024 / 1024:.0f} MB; at most 500 MB is accepted."
            )
        return upload

    def clean(self):
        """Check the header now, so a file that cannot be imported is refused at once."""
        cleaned = super().clean()
        upload, kind = cleaned.get("file"), cleaned.get("kind")
        if upload is not None and kind:
            upload.seek(0)
            try:
                header_check(upload, kind=kind)
            except CsvHeaderError as exc:
                self.add_error("file", exc.message)
            finally:
                upload.seek(0)
        return cleaned
