from django.db.models import QuerySet

from marketing.imports_models import ImportFile


def import_file_list(*, limit: int = 50) -> QuerySet[ImportFile]:
    return ImportFile.objects.select_related("job", "created_by").order_by("-created_at", "-pk")[
        :limit
    ]


def import_file_get(*, pk: int) -> ImportFile | None:
    return ImportFile.objects.select_related("job").filter(pk=pk).first()
