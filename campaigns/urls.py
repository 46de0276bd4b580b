from django.urls import path

from campaigns import views

app_name = "campaigns"

urlpatterns = [
    path("campaigns/", views.campaign_list_view, name="campaign-list"),
]
