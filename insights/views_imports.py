"""Uploading a CSV or JSON file of posts: the import machinery of the Customers page
(ImportFile, its Job's progress bar, the row-numbered report) with kind "posts"."""

from django import forms
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods
from django.views.decorators.vary import vary_on_headers

from marketing.common.csv_import import KINDS, CsvHeaderError, header_check
from marketing.common.htmx import HtmxHttpRequest
from marketing.imports_models import ImportFile, ImportKind
from marketing.imports_selectors import import_file_list
from marketing.imports_services import import_file_create
from marketing.roles import require_edit

TEMPLATE = "insights/post_import.html"
MAX_UPLOAD_BYTES = 500 * 1024 * 1024
SUFFIXES = (".csv", ".json", ".jsonl")


class PostImportForm(forms.Form):
    file = forms.FileField(
        help_text="A UTF-8 CSV file with a header row, a .json list of posts or a .jsonl "
        "file (one post per line), at most 500 MB.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.json,.jsonl,text/csv"}),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        name = (upload.name or "").lower()
        if not name.endswith(SUFFIXES):
            raise forms.ValidationError("Upload a .csv, .json or .jsonl file.")
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                f"The file is {upload.size / 1024 / 1024:.0f} MB; at most 500 MB is accepted."
            )
        if name.endswith(".csv"):
            upload.seek(0)
            try:
                header_check(upload, kind=ImportKind.POSTS)
            except CsvHeaderError as exc:
                raise forms.ValidationError(exc.message) from None
            finally:
                upload.seek(0)
        return upload


def _render(
    request: HtmxHttpRequest, form: PostImportForm, started: ImportFile | None = None
) -> HttpResponse:
    template = TEMPLATE
    if request.htmx and not request.htmx.history_restore_request:
        template += "#import-panel"
    imports = import_file_list(kind=ImportKind.POSTS, limit=50)
    context = {
        "form": form,
        "started": started,
        "imports": imports,
        "spec": KINDS[ImportKind.POSTS],
    }
    return render(request, template, context)


@vary_on_headers("HX-Request")
@require_http_methods(["GET", "POST"])
def post_import_view(request: HtmxHttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _render(request, PostImportForm())
    require_edit(request)
    form = PostImportForm(request.POST, request.FILES)
    if not form.is_valid():
        return _render(request, form)
    import_file = import_file_create(
        kind=ImportKind.POSTS, upload=form.cleaned_data["file"], user=request.user
    )
    if not request.htmx:
        return redirect("insights:post-import")
    return _render(request, PostImportForm(), started=import_file)
