from django.urls import path

from insights import views, views_brands, views_health
from insights.views_imports import post_import_view

app_name = "insights"

urlpatterns = [
    path("insights/", views.post_list_view, name="post-list"),
    path("insights/import/", post_import_view, name="post-import"),
    path("insights/health/", views_health.brand_health_view, name="health"),
    path("insights/health/<int:pk>/", views_health.brand_health_view, name="brand-health"),
    path(
        "insights/alerts/<int:pk>/acknowledge/",
        views_health.alert_acknowledge_view,
        name="alert-acknowledge",
    ),
    path("insights/brands/", views_brands.brand_list_view, name="brand-list"),
    path("insights/brands/new/", views_brands.brand_create_view, name="brand-create"),
    path("insights/brands/<int:pk>/edit/", views_brands.brand_edit_view, name="brand-edit"),
]
