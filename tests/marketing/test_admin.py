import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

OUR_APPS = ("marketing", "profiles", "recommender", "experiments", "campaigns", "insights")


def _our_models():
    return [m for m in apps.get_models() if m._meta.app_label in OUR_APPS]


@pytest.mark.parametrize("model", _our_models(), ids=lambda m: m._meta.label)
def test_every_model_is_in_the_admin(model):
    assert admin.site.is_registered(model)


@pytest.mark.parametrize("model", _our_models(), ids=lambda m: m._meta.label)
def test_every_admin_changelist_renders(admin_client, model):
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    response = admin_client.get(url)
    assert response.status_code == 200


def test_celery_beat_schedules_are_editable_in_the_admin(admin_client):
    response = admin_client.get(reverse("admin:django_celery_beat_periodictask_changelist"))
    assert response.status_code == 200
