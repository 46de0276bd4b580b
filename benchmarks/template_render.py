"""Personalized message rendering: bulk template contexts, then one render per recipient.

Builds a scratch database (customers with features and personalization consent, a catalog,
a popularity version and a hybrid version with a precomputed list per customer), compiles an
email template once, builds the contexts of all customers in batches (as dispatch will, with
3 recommendations each) and renders the email (subject, HTML with the 3 items, text derived
from the HTML) for every one. Prints JSON on its last line: contexts/s, renders/s and both
together, single process.

    .venv/bin/python benchmarks/template_render.py [--customers 10000] [--batch 1000]
"""

import argparse
import json
import random
import time

from _scratch import bench_env, database_reset, django_setup

DB = "marketing_bench_templates"
_ENV = bench_env(DB, redis_db=12)

SUBJECT = "{{ customer|first_name_or('there') }}, picked for you: {{ recommendations.0.title }}"
HTML = """<html><body>
<p><a href="{{ view_in_browser_url }}">View in your browser</a></p>
<h1>Hello {{ customer|first_name_or("there") }}!</h1>
{% if customer.features.top_category %}
<p>More {{ customer.features.top_category }} for you:</p>
{% endif %}
<table>
{% for item in recommendations %}
  <tr><td><a href="{{ item.url }}"><img src="{{ item.image_url }}" alt="{{ item.title }}"></a></td>
      <td><a href="{{ item.url }}">{{ item.title }}</a><br>{{ item.price|money }}</td></tr>
{% endfor %}
</table>
<p>{{ campaign.name }} · <a href="{{ unsubscribe_url }}">Unsubscribe</a></p>
</body></html>"""


def _prepare(customers: int, items: int) -> list[int]:
    from django.utils import timezone

    from profiles.features import features_empty
    from profiles.models import Consent, Customer, CustomerFeatures
    from recommender.models import Item, ModelVersion
    from recommender.serving_services import recommendation_lists_store

    rng = random.Random(7)
    now = timezone.now()
    Item.objects.bulk_create(
        Item(
            external_id=f"i{n}",
            title=f"Item {n} <special>",
            category=f"cat{n % 12}",
            price=f"{rng.uniform(5, 200):.2f}",
            image_url=f"https://img.example.com/{n}.jpg",
            deep_link=f"https://shop.example.com/p/{n}",
        )
        for n in range(items)
    )
    ModelVersion.objects.create(
        algorithm="popularity",
        status="ready",
        is_active=True,
        artifact={"item_ids": [f"i{n}" for n in range(items)], "scores": list(range(items, 0, -1))},
    )
    rows = Customer.objects.bulk_create(
        Customer(
            external_id=f"c{n}",
            email=f"c{n}@example.com",
            first_name="" if n % 10 == 0 else f"Name{n}",
            last_name=f"Last{n}",
            country="DE",
        )
        for n in range(customers)
    )
    CustomerFeatures.objects.bulk_create(
        CustomerFeatures(
            customer=c,
            state={
                **features_empty(),
                "orders": 2,
                "revenue": 80.0,
                "recent_purchases": [f"i{rng.randrange(items)}"],
                "affinity": {f"cat{rng.randrange(12)}": 1.0},
            },
        )
        for c in rows
    )
    Consent.objects.bulk_create(
        Consent(customer=c, purpose="personalization", granted=True, source="api", changed_at=now)
        for c in rows
    )
    hybrid = ModelVersion.objects.create(algorithm="hybrid", status="ready", is_active=True)
    recommendation_lists_store(
        version=hybrid,
        rows=[
            (c.pk, [f"i{i}" for i in rng.sample(range(items), 20)], [20.0 - j for j in range(20)])
            for c in rows
        ],
    )
    return [c.pk for c in rows]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--items", type=int, default=2_000)
    parser.add_argument("--batch", type=int, default=1_000)
    args = parser.parse_args()
    database_reset(DB, _ENV)
    django_setup(_ENV)
    from django.core.cache import cache

    from campaigns.personalization import context_for_customers
    from campaigns.templating import MessageLinks, parts_compile, render

    cache.clear()
    pks = _prepare(args.customers, args.items)
    compiled = parts_compile("email", {"subject": SUBJECT, "html": HTML, "text": ""})
    context_for_customers(pks[:10], campaign_name="Bench")  # the serving snapshot, loaded once

    started = time.perf_counter()
    contexts: dict[int, dict] = {}
    for start in range(0, len(pks), args.batch):
        contexts.update(
            context_for_customers(pks[start : start + args.batch], campaign_name="Bench")
        )
    context_seconds = time.perf_counter() - started

    started = time.perf_counter()
    html_bytes = 0
    for pk, context in contexts.items():
        links = MessageLinks(
            unsubscribe_url=f"https://t.example.com/u/{pk}",
            view_in_browser_url=f"https://t.example.com/v/{pk}",
        )
        message = render(compiled, context, links=links)
        html_bytes += len(message.html)
    render_seconds = time.perf_counter() - started
    n = len(contexts)
    sample = render(compiled, contexts[pks[1]])
    print(  # noqa: T201 - a benchmark reports on stdout
        json.dumps(
            {
                "customers": n,
                "recommendations_each": 3,
                "batch": args.batch,
                "contexts_per_s": round(n / context_seconds),
                "renders_per_s": round(n / render_seconds),
                "contexts_and_renders_per_s": round(n / (context_seconds + render_seconds)),
                "render_us_each": round(render_seconds / n * 1e6, 1),
                "avg_html_bytes": round(html_bytes / n),
                "sample_subject": sample.subject,
                "all_have_3_items": all(len(c["recommendations"]) == 3 for c in contexts.values()),
            }
        )
    )


if __name__ == "__main__":
    main()
