from django.db.models import QuerySet

from marketing.imports_models import ImportFile


def import_file_list(*, kind: str | None = None, limit: int = 50) -> QuerySet[ImportFile]:
    """The latest imports, newest first; of one kind (an ImportKind) when given."""
    qs = ImportFile.objects.select_related("job", "created_by")
    if kind is not None:
        qs = qs.filter(kind=kind)
    return qs.order_by("-created_at", "-pk")[:limit]


def import_file_get(*, pk: int) -> ImportFile | None:
    return ImportFile.objects.select_related("job").filter(pk=pk).first()
