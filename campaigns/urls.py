from django.urls import path

from campaigns import views, views_templates, webhooks

app_name = "campaigns"

urlpatterns = [
    path("campaigns/", views.campaign_list_view, name="campaign-list"),
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
]
