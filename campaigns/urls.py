from django.urls import path

from campaigns import (
    views,
    views_campaigns,
    views_campaigns_report,
    views_templates,
    views_tracking,
    webhooks,
)

app_name = "campaigns"

urlpatterns = [
    path("campaigns/", views.campaign_list_view, name="campaign-list"),
    path("campaigns/new/", views_campaigns.campaign_create_view, name="campaign-create"),
    path("campaigns/<int:pk>/", views_campaigns.campaign_detail_view, name="campaign-detail"),
    path("campaigns/<int:pk>/edit/", views_campaigns.campaign_edit_view, name="campaign-edit"),
    path(
        "campaigns/<int:pk>/preview/",
        views_campaigns.campaign_preview_view,
        name="campaign-preview",
    ),
    path(
        "campaigns/<int:pk>/progress/",
        views_campaigns.campaign_progress_view,
        name="campaign-progress",
    ),
    path(
        "campaigns/<int:pk>/actions/<slug:action>/",
        views_campaigns.campaign_action_view,
        name="campaign-action",
    ),
    path(
        "campaigns/<int:pk>/report/",
        views_campaigns_report.campaign_report_view,
        name="campaign-report",
    ),
    path(
        "campaigns/<int:pk>/report.csv",
        views_campaigns_report.campaign_report_csv_view,
        name="campaign-report-csv",
    ),
    path("campaigns/templates/", views_templates.template_list_view, name="template-list"),
    path("campaigns/templates/new/", views_templates.template_create_view, name="template-create"),
    path(
        "campaigns/templates/<int:pk>/",
        views_templates.template_edit_view,
        name="template-edit",
    ),
    path(
        "campaigns/templates/preview/",
        views_templates.template_preview_view,
        name="template-preview",
    ),
    path(
        "webhooks/sendgrid/events",
        webhooks.sendgrid_events_view,
        name="webhook-sendgrid-events",
    ),
    path("webhooks/twilio/inbound", webhooks.twilio_inbound_view, name="webhook-twilio-inbound"),
    path("webhooks/twilio/status", webhooks.twilio_status_view, name="webhook-twilio-status"),
    path("t/o/<str:token>", views_tracking.track_open_view, name="track-open"),
    path("t/c/<str:token>", views_tracking.track_click_view, name="track-click"),
    path("t/u/<str:token>", views_tracking.track_unsubscribe_view, name="track-unsubscribe"),
]
