from django.urls import path

from experiments import views

app_name = "experiments"

urlpatterns = [
    path("experiments/", views.experiment_list_view, name="experiment-list"),
]
