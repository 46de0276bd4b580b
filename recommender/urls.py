from django.urls import path

from recommender import views

app_name = "recommender"

urlpatterns = [
    path("catalog/", views.item_list_view, name="item-list"),
    path("recommendations/", views.modelversion_list_view, name="modelversion-list"),
    path("offers/", views.offer_list_view, name="offer-list"),
]
