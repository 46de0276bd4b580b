from django.urls import path

from recommender import views, views_affinity, views_models

app_name = "recommender"

urlpatterns = [
    path("catalog/", views.item_list_view, name="item-list"),
    path("recommendations/", views.modelversion_list_view, name="modelversion-list"),
    path("offers/", views.offer_list_view, name="offer-list"),
    path("recommendations/train/", views_models.modelversion_train_view, name="modelversion-train"),
    path(
        "recommendations/<int:pk>/activate/",
        views_models.modelversion_activate_view,
        name="modelversion-activate",
    ),
    path(
        "recommendations/rollback/",
        views_models.modelversion_rollback_view,
        name="modelversion-rollback",
    ),
    path(
        "recommender/affinity-segments/",
        views_affinity.affinity_segment_create_view,
        name="affinity-segment-create",
    ),
    path(
        "recommender/affinity-segments/jobs/<int:pk>/",
        views_affinity.affinity_segment_job_view,
        name="affinity-segment-job",
    ),
]
