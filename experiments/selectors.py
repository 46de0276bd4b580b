from django.db.models import Prefetch, Q, QuerySet

from experiments.models import Experiment, Variant


def experiment_list(*, filters: dict | None = None) -> QuerySet[Experiment]:
    filters = filters or {}
    qs = Experiment.objects.prefetch_related(
        Prefetch("variants", queryset=Variant.objects.order_by("pk"))
    )
    if q := filters.get("q"):
        qs = qs.filter(Q(name__icontains=q) | Q(hypothesis__icontains=q))
    if kind := filters.get("kind"):
        qs = qs.filter(kind=kind)
    if status := filters.get("status"):
        qs = qs.filter(status=status)
    return qs.order_by("-created_at", "-pk")
