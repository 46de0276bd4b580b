from django.urls import path

from experiments import views, views_attribution

app_name = "experiments"

urlpatterns = [
    path("experiments/", views.experiment_list_view, name="experiment-list"),
    path("experiments/new/", views.experiment_create_view, name="experiment-create"),
    path(
        "experiments/new/from-campaign/<int:pk>/",
        views.campaign_experiment_create_view,
        name="campaign-experiment-create",
    ),
    path("experiments/<slug:key>/", views.experiment_results_view, name="experiment-results"),
    path("experiments/<slug:key>/edit/", views.experiment_edit_view, name="experiment-edit"),
    path(
        "experiments/<slug:key>/<str:action>/",
        views.experiment_action_view,
        name="experiment-action",
    ),
    path("attribution/", views_attribution.attribution_view, name="attribution"),
    path(
        "attribution/export.csv",
        views_attribution.attribution_export_view,
        name="attribution-export",
    ),
]
