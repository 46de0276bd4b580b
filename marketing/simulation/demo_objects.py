"""A few hand-made objects so every page of the demo has something on it.

This is the project's seeding tool, so it writes to several apps' tables directly. Everything
is keyed by a stable name and upserted, so re-running it (with `--reset`) does not duplicate.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np

from campaigns.models import Campaign, CampaignStatus, MessageTemplate
from experiments.models import Experiment, ExperimentKind, ExperimentStatus, Variant
from insights.models import Brand
from insights.services import posts_ingest
from marketing.simulation.store import US_PER_DAY, StoreTruth
from profiles.models import Segment, SegmentKind
from profiles.segments.rules import RuleCatalog, rules_validate
from recommender.models import Item, Offer

DEMO_MARK = "Simulated store demo offer."
OFFER_DISCOUNTS = (10, 15, 20, 25, 30)
N_POSTS = 30
POST_TEMPLATES = (
    ("Just got the {product} from {brand}, absolutely love it!", True),
    ("{brand} delivery was fast and the {product} works great.", True),
    ("Best {product} I have bought in years. Thanks {brand}!", True),
    ("{brand} support sorted my order in minutes, impressed.", True),
    ("The {product} from {brand} broke after a week. Disappointed.", False),
    ("Still waiting for my {brand} order, two weeks now. Terrible.", False),
    ("{brand} prices went up again, the {product} is not worth it.", False),
    ("Has anyone tried the {product} from {brand}?", None),
    ("Comparing the {product} at {brand} with other shops this weekend.", None),
)
SEGMENTS = (
    (
        "Big spenders",
        "Customers with more than 200 in purchases.",
        {"op": "and", "conditions": [
            {"kind": "feature", "field": "revenue", "op": "gt", "value": 200}]},
    ),
    (
        "Lapsed browsers",
        "Viewed items but bought nothing in 30 days.",
        {"op": "and", "conditions": [
            {"kind": "event", "event_type": "view", "within_days": 30, "op": "gte", "value": 1},
            {"kind": "event", "event_type": "purchase", "within_days": 30, "op": "eq", "value": 0},
        ]},
    ),
    (
        "Email engaged",
        "Opened an email in the last 30 days.",
        {"op": "and", "conditions": [
            {"kind": "event", "event_type": "email_open", "within_days": 30, "op": "gte",
             "value": 1}]},
    ),
    (
        "Electronics fans reachable by email",
        "Bought electronics twice in 60 days, or love the category; email allowed.",
        {"op": "and", "conditions": [
            {"op": "or", "conditions": [
                {"kind": "event", "event_type": "purchase", "category": "electronics",
                 "within_days": 60, "op": "gte", "value": 2},
                {"kind": "feature", "field": "affinity", "category": "electronics", "op": "gte",
                 "value": 10},
            ]},
            {"kind": "reachable", "channel": "email", "op": "is"},
        ]},
    ),
)  # fmt: skip
TEMPLATES = (
    (
        "Weekly picks (email)",
        "email",
        "{{ customer.first_name | first_name_or('Hello') }}, your picks of the week",
        "",  # the text version is derived from the HTML
        """<p>Hi {{ customer.first_name | first_name_or('there') }},</p>
<p>We picked these for you:</p>
<ul>{% for item in recommendations %}
  <li><a href="{{ item.url }}"><img src="{{ item.image_url }}" alt="" width="80">
  {{ item.title }}</a> {{ item.price | money }}</li>{% endfor %}
</ul>
<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>""",
    ),
    (
        "Flash sale (SMS)",
        "sms",
        "",
        "{{ customer.first_name | first_name_or('Hi') }}: {% if recommendations %}"
        "{{ recommendations.0.title }} is on sale today only {{ recommendations.0.url }}"
        "{% else %}our flash sale ends tonight{% endif %}",
        "",
    ),
)


def _at(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC)


def demo_objects_create(*, truth: StoreTruth) -> dict[str, int]:
    cfg = truth.config
    start, end = _at(cfg.start_us), _at(cfg.end_us)

    items = Item.objects.in_bulk(
        [truth.item_external_ids[i] for i in truth.offer_items], field_name="external_id"
    )
    titles = truth.item_titles()
    existing = list(Offer.objects.filter(description=DEMO_MARK).order_by("pk"))
    offers = []
    for k, (discount, i) in enumerate(
        zip(OFFER_DISCOUNTS, truth.offer_items.tolist(), strict=False)
    ):
        offer = existing[k] if k < len(existing) else Offer(description=DEMO_MARK)
        offer.name = f"{discount}% off {titles[i]}"
        offer.item = items[truth.item_external_ids[i]]
        offer.discount_percent = Decimal(discount)
        offer.is_active = True
        offer.starts_at = start
        offer.ends_at = end + timedelta(days=30)
        offer.save()
        offers.append(offer)
    Offer.objects.filter(pk__in=[o.pk for o in existing[len(offers) :]]).delete()

    segments = {
        name: Segment.objects.update_or_create(
            name=name,
            defaults={
                "description": text,
                "kind": SegmentKind.RULES,
                "rules": rules_validate(rules, RuleCatalog()),
            },
        )[0]
        for name, text, rules in SEGMENTS
    }
    templates = {
        name: MessageTemplate.objects.update_or_create(
            name=name,
            defaults={"channel": channel, "subject": subject, "body": body, "html_body": html},
        )[0]
        for name, channel, subject, body, html in TEMPLATES
    }
    # Weekly picks is sent for real, A/B with a holdout, by demo_campaigns (after training).
    campaigns = [
        ("Weekly picks", "email", "Weekly picks (email)", "Email engaged", CampaignStatus.DRAFT),
        ("Flash sale", "sms", "Flash sale (SMS)", "Lapsed browsers", CampaignStatus.DRAFT),
    ]
    for name, channel, template, segment, status in campaigns:
        sent = status == CampaignStatus.SENT
        Campaign.objects.update_or_create(
            name=name,
            defaults={
                "channel": channel,
                "status": status,
                "template": templates[template],
                "segment": segments[segment],
                "scheduled_at": start + timedelta(days=3, hours=10) if sent else None,
                "sent_at": start + timedelta(days=3, hours=10) if sent else None,
            },
        )

    experiment, _ = Experiment.objects.update_or_create(
        key="homepage-recommendations",
        defaults={
            "name": "Homepage recommendations",
            "kind": ExperimentKind.AB,
            "status": ExperimentStatus.RUNNING,
            "hypothesis": "Personalised recommendations lift purchases over best-sellers.",
            "metric_event_type": "purchase",
            "started_at": start + timedelta(days=cfg.days // 2),
            "stopped_at": None,
        },
    )
    for name, is_control, config in (
        ("popular", True, {"algorithm": "popularity"}),
        ("personalised", False, {"algorithm": "als"}),
    ):
        Variant.objects.update_or_create(
            experiment=experiment,
            key=name,
            defaults={"name": name, "is_control": is_control, "weight": 1, "config": config},
        )

    return {
        "offers": len(offers),
        "segments": len(segments),
        "campaigns": len(campaigns),
        "experiments": 1,
        "posts": _posts_create(truth, titles),
    }


def _posts_create(truth: StoreTruth, titles: list[str]) -> int:
    cfg = truth.config
    own, _ = Brand.objects.update_or_create(
        name="Acme Store",
        defaults={"aliases": ["acme store"], "hashtags": ["acmestore"], "is_own": True},
    )
    rival, _ = Brand.objects.update_or_create(
        name="Globex Mart",
        defaults={"aliases": ["globex"], "hashtags": ["globexmart"], "is_own": False},
    )
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 2]))
    template = rng.integers(0, len(POST_TEMPLATES), N_POSTS)
    product = rng.integers(0, truth.n_items, N_POSTS)
    is_rival = rng.random(N_POSTS) < 0.3
    posted_us = cfg.start_us + (rng.random(N_POSTS) * cfg.days * US_PER_DAY).astype(np.int64)
    author = rng.integers(1000, 9999, N_POSTS)
    rows = []
    for k in range(N_POSTS):
        brand = rival if is_rival[k] else own
        noun = " ".join(titles[product[k]].split()[2:]).lower()
        rows.append(
            {
                "source": "simulated",
                "external_id": f"sim-{k + 1:04d}",
                "author": f"@shopper{author[k]}",
                "text": POST_TEMPLATES[template[k]][0].format(brand=brand.name, product=noun),
                "posted_at": _at(int(posted_us[k])).isoformat(),
            }
        )
    # Through the ingest path, so demo posts get their mentions and sentiment.
    posts_ingest(rows)
    return N_POSTS
