"""CSV imports from the Customers page: upload, progress, report download."""

from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods
from django.views.decorators.vary import vary_on_headers

from marketing.common.csv_import import KINDS
from marketing.common.htmx import HtmxHttpRequest
from marketing.imports_models import ImportFile
from marketing.imports_selectors import import_file_get, import_file_list
from marketing.imports_services import import_file_create
from marketing.roles import require_edit
from profiles.forms_imports import ImportUploadForm

TEMPLATE = "profiles/import_list.html"


def _render(
    request: HtmxHttpRequest, form: ImportUploadForm, started: ImportFile | None = None
) -> HttpResponse:
    template = TEMPLATE
    if request.htmx and not request.htmx.history_restore_request:
        template += "#import-panel"
    context = {
        "form": form,
        "started": started,
        "imports": import_file_list(limit=50),
        "kinds": list(KINDS.items()),
    }
    return render(request, template, context)


@vary_on_headers("HX-Request")
@require_http_methods(["GET", "POST"])
def import_list_view(request: HtmxHttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _render(request, ImportUploadForm())
    require_edit(request)
    form = ImportUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return _render(request, form)
    import_file = import_file_create(
        kind=form.cleaned_data["kind"], upload=form.cleaned_data["file"], user=request.user
    )
    if not request.htmx:
        return redirect("profiles:import-list")
    return _render(request, ImportUploadForm(), started=import_file)


@require_GET
def import_report_view(request: HtmxHttpRequest, pk: int) -> FileResponse:
    import_file = import_file_get(pk=pk)
    if import_file is None or not import_file.report:
        raise Http404("No report for this import")
    try:
        handle = import_file.report.open("rb")
    except FileNotFoundError:
        raise Http404("The report file is gone") from None
    return FileResponse(
        handle,
        as_attachment=True,
        filename=f"import-{import_file.pk}-report.csv",
        content_type="text/csv",
    )
