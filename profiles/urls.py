from django.urls import path

from profiles import (
    views,
    views_clusters,
    views_events,
    views_imports,
    views_privacy,
    views_segment_builder,
    views_segment_imports,
    views_segments,
)

app_name = "profiles"

urlpatterns = [
    path("customers/", views.customer_list_view, name="customer-list"),
    path("customers/imports/", views_imports.import_list_view, name="import-list"),
    path("events/", views_events.event_list_view, name="event-list"),
    path(
        "customers/imports/<int:pk>/report/",
        views_imports.import_report_view,
        name="import-report",
    ),
    path("customers/<int:pk>/", views.customer_detail_view, name="customer-detail"),
    path(
        "customers/<int:pk>/consent/",
        views_privacy.customer_consent_update_view,
        name="customer-consent",
    ),
    path("customers/<int:pk>/export/", views_privacy.customer_export_view, name="customer-export"),
    path("customers/<int:pk>/erase/", views_privacy.customer_erase_view, name="customer-erase"),
    path("u/<str:token>/", views_privacy.unsubscribe_view, name="unsubscribe"),
    path("segments/", views.segment_list_view, name="segment-list"),
    path("segments/new/", views_segment_builder.segment_create_view, name="segment-create"),
    path("segments/builder/", views_segment_builder.segment_builder_view, name="segment-builder"),
    path("segments/<int:pk>/edit/", views_segment_builder.segment_edit_view, name="segment-edit"),
    path("segments/clusters/", views_clusters.cluster_list_view, name="cluster-list"),
    path("segments/clusters/<int:pk>/", views_clusters.cluster_detail_view, name="cluster-detail"),
    path("segments/clusters/<int:pk>/save/", views_clusters.cluster_save_view, name="cluster-save"),
    path("segments/import/", views_segment_imports.segment_import_view, name="segment-import"),
    path(
        "segments/import/jobs/<int:pk>/",
        views_segment_imports.segment_import_job_view,
        name="segment-import-job",
    ),
    path("segments/<int:pk>/", views_segments.segment_detail_view, name="segment-detail"),
    path("segments/<int:pk>/refresh/", views_segments.segment_refresh_view, name="segment-refresh"),
    path("segments/<int:pk>/status/", views_segments.segment_status_view, name="segment-status"),
    path("segments/<int:pk>/delete/", views_segments.segment_delete_view, name="segment-delete"),
    path(
        "segments/<int:pk>/export/",
        views_segments.segment_export_panel_view,
        name="segment-export-panel",
    ),
    path(
        "segments/<int:pk>/export.csv",
        views_segments.segment_export_view,
        name="segment-export",
    ),
    path(
        "segments/<int:pk>/import/",
        views_segment_imports.segment_import_replace_view,
        name="segment-import-replace",
    ),
]
