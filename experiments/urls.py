from django.urls import path

from experiments import views, views_attribution

app_name = "experiments"

urlpatterns = [
    path("experiments/", views.experiment_list_view, name="experiment-list"),
    path("attribution/", views_attribution.attribution_view, name="attribution"),
    path(
        "attribution/export.csv",
        views_attribution.attribution_export_view,
        name="attribution-export",
    ),
]
