from django.urls import reverse

from marketing.roles import user_can_edit

NAVIGATION = (
    ("Dashboard", "dashboard"),
    ("Customers", "profiles:customer-list"),
    ("Segments", "profiles:segment-list"),
    ("Catalog", "recommender:item-list"),
    ("Recommendations", "recommender:modelversion-list"),
    ("Offers", "recommender:offer-list"),
    ("Campaigns", "campaigns:campaign-list"),
    ("Experiments", "experiments:experiment-list"),
    ("Attribution", "experiments:attribution"),
    ("Insights", "insights:post-list"),
)


def navigation(request):
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    path = request.path
    items = []
    for label, name in NAVIGATION:
        url = reverse(name)
        active = path == url if url == "/" else path.startswith(url)
        items.append({"label": label, "url": url, "active": active})
    return {"nav_items": items, "can_edit": user_can_edit(request.user)}
