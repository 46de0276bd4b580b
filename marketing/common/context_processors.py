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
    ("Brand health", "insights:health"),
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
    # A section inside another (/insights/health/ in /insights/): only the closest is active.
    longest = max((len(i["url"]) for i in items if i["active"]), default=0)
    for item in items:
        item["active"] = item["active"] and len(item["url"]) == longest
    return {"nav_items": items, "can_edit": user_can_edit(request.user)}
