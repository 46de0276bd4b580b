from django.urls import path

from campaigns import views, webhooks

app_name = "campaigns"

urlpatterns = [
    path("campaigns/", views.campaign_list_view, name="campaign-list"),
    path(
        "webhooks/sendgrid/events",
        webhooks.sendgrid_events_view,
        name="webhook-sendgrid-events",
    ),
    path("webhooks/twilio/inbound", webhooks.twilio_inbound_view, name="webhook-twilio-inbound"),
]
