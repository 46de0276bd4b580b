from django.urls import path

from recommender import views, views_affinity, views_models, views_offers

app_name = "recommender"

urlpatterns = [
    path("catalog/", views.item_list_view, name="item-list"),
    path("recommendations/", views.modelversion_list_view, name="modelversion-list"),
    path("offers/", views_offers.offer_list_view, name="offer-list"),
    path("offers/new/", views_offers.offer_create_view, name="offer-create"),
    path("offers/<int:pk>/", views_offers.offer_detail_view, name="offer-detail"),
    path("offers/<int:pk>/edit/", views_offers.offer_edit_view, name="offer-edit"),
    path("offers/learning/", views_offers.offer_learning_view, name="offer-learning"),
    path(
        "offers/evaluations/",
        views_offers.offer_evaluation_start_view,
        name="offer-evaluation-start",
    ),
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
