from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path

from experiments.api import experiment_assign_view
from marketing import views
from marketing.api import urlpatterns as api_urlpatterns
from recommender.api_offers import offer_rank_view

urlpatterns = [
    # The assignment hot path first (resolved without trying every pattern below); it hands
    # whatever it does not serve to the router's `assign` action, the documented contract.
    re_path(
        r"^api/v1/experiments/(?P<key>[-a-zA-Z0-9_]+)/assign/?$",
        experiment_assign_view,
        name="experiment-assign-hot",
    ),
    # The same for the offer ranker's Rank (it hands the rest to OfferRankView).
    re_path(r"^api/v1/offers/rank/?$", offer_rank_view, name="offers-rank-hot"),
    # The API before the pages: its calls are resolved without trying the apps' page routes.
    *api_urlpatterns,
    path("", views.dashboard_view, name="dashboard"),
    path("healthz", views.healthz_view, name="healthz"),
    path("favicon.ico", views.favicon_view, name="favicon"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("jobs/<int:pk>/", views.job_detail_view, name="job-detail"),
    path("admin/", admin.site.urls),
    path("", include("profiles.urls")),
    path("", include("recommender.urls")),
    path("", include("campaigns.urls")),
    path("", include("experiments.urls")),
    path("", include("insights.urls")),
]

if settings.BENCHMARK_VIEWS:
    urlpatterns.insert(0, path("bench/bare", views.bare_json_view, name="bench-bare"))

# A database lost before the view runs (session, user) answers 503, not a 500 page.
handler500 = "marketing.common.middleware.server_error"
