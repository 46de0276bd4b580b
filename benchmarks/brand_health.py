"""Benchmark: the brand health page's reads (insights/selectors_health.py) and the spike
check (insights/services_health.py `brand_alerts_check`) with many mentions stored.

    .venv/bin/python benchmarks/brand_health.py [--posts 500000] [--days 90] [--reload]

The scratch database (marketing_bench_brand_health) holds `posts` posts spread evenly over
`days` days up to now, scored (a third negative), each mentioning one of 10 brands (2 ours,
8 competitors) and a fifth a second one, analyzed. Measured, each the median of five runs
after one warm-up: `brand_health` of our first brand over 7, 30 and 90 days, the dashboard
panel over 30 days and the spike check over every brand. The last line is JSON; it also says
whether the plans of the per-day aggregate and the share of voice read the (brand,
posted_at) index.
"""

import argparse
import datetime as dt
import json
import statistics
import sys
import time

from _scratch import bench_env, django_setup, scratch_needs_load

DB = "marketing_bench_brand_health"
_ENV = bench_env(DB, redis_db=3)
BRANDS = 10

_POSTS = """
INSERT INTO insights_post (created_at, updated_at, source, external_id, author, author_email,
    text, language, url, posted_at, likes, shares, comments, metrics, sentiment,
    sentiment_label, sentiment_model, aspects)
SELECT now(), now(), 'bench', g::text, 'user' || (g %% 20000), '',
    (ARRAY['Love the new shoes, great fit', 'Delivery was late again, awful support',
           'Bought socks today', 'Broken zipper after a week, terrible quality',
           'Amazing price and fast shipping'])[1 + g %% 5],
    'en', '', %(now)s - (g::float / %(posts)s) * %(span)s * interval '1 second',
    g %% 97, g %% 13, g %% 29, '{}',
    CASE WHEN g %% 3 = 0 THEN -0.6 WHEN g %% 3 = 1 THEN 0.6 ELSE 0.0 END,
    CASE WHEN g %% 3 = 0 THEN 'negative' WHEN g %% 3 = 1 THEN 'positive' ELSE 'neutral' END,
    'bench',
    (ARRAY['["fit"]', '["delivery", "support"]', '[]', '["zipper", "quality"]',
           '["price", "shipping"]'])[1 + g %% 5]::jsonb
FROM generate_series(1, %(posts)s) AS g
"""

_MENTIONS = """
INSERT INTO insights_mention (post_id, brand_id, start, "end", matched_text, match_type,
    similarity, posted_at, sentiment, sentiment_label)
SELECT p.id, (%(brands)s::bigint[])[1 + (p.id * 7 + m.k) %% %(n)s], m.k * 10, m.k * 10 + 4,
    'name', 'name', 1.0, p.posted_at, p.sentiment, p.sentiment_label
FROM insights_post p CROSS JOIN (VALUES (0), (1)) AS m(k)
WHERE m.k = 0 OR p.id %% 5 = 0
"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def timed(run, repeat: int = 5) -> float:
    run()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        samples.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(samples), 1)


def _scan(plan: str) -> str:
    """The plan's scan of insights_mention, e.g. "Index Only Scan using mention_brand_..."."""
    for line in plan.splitlines():
        if "insights_mention" in line or "mention_brand" in line:
            return line.strip().lstrip("-> ").split("  (")[0]
    return plan.splitlines()[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--posts", type=int, default=500_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--reload", action="store_true")
    args = parser.parse_args()
    django_setup(_ENV)
    from django.db import connection, transaction
    from django.utils import timezone

    from insights.models import Brand, Post
    from insights.selectors_health import brand_health, health_panel, health_window
    from insights.services_health import AlertSettings, brand_alerts_check

    now = timezone.now()
    if scratch_needs_load(Post, rows=args.posts, reload=args.reload, db=DB, env=_ENV):
        log(f"loading {args.posts:,} posts")
        with transaction.atomic():
            brands = [Brand.objects.create(name=f"Brand {i}", is_own=i < 2) for i in range(BRANDS)]
            with connection.cursor() as cursor:
                cursor.execute(
                    _POSTS,
                    {"now": now, "posts": args.posts, "span": args.days * 86400},
                )
                cursor.execute(
                    _MENTIONS,
                    {"brands": [b.pk for b in brands], "n": BRANDS},
                )
        with connection.cursor() as cursor:  # as autovacuum leaves them: visibility map set
            cursor.execute("VACUUM ANALYZE insights_post")
            cursor.execute("VACUUM ANALYZE insights_mention")
    brand = Brand.objects.filter(is_own=True).order_by("pk").first()
    assert brand is not None  # noqa: S101 - loaded above
    config = AlertSettings(window=dt.timedelta(hours=1), history=48, k=3.0, min_count=5)

    def alerts() -> None:
        with transaction.atomic():
            brand_alerts_check(now=now, config=config)
            transaction.set_rollback(True)

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM insights_mention")
        mentions = cursor.fetchone()[0]
    result: dict = {"posts": Post.objects.count(), "mentions": mentions, "days": args.days}
    for days in (7, 30, 90):
        health = brand_health(brand=brand, days=days, now=now)
        result[f"brand_health_{days}d_ms"] = timed(
            lambda d=days: brand_health(brand=brand, days=d, now=now)
        )
        result[f"brand_health_{days}d_mentions"] = health.total
    window = health_window(days=30, now=now)
    result["dashboard_panel_30d_ms"] = timed(
        lambda: health_panel(since=window.since, until=window.until)
    )
    result["alerts_check_ms"] = timed(alerts)
    brand_ids = list(Brand.objects.values_list("pk", flat=True))
    for days in (7, 90):
        window = health_window(days=days, now=now)
        with connection.cursor() as cursor:
            cursor.execute(
                """EXPLAIN SELECT (posted_at AT TIME ZONE 'UTC')::date, sentiment_label, count(*)
                   FROM insights_mention WHERE brand_id = %s AND posted_at >= %s
                   AND posted_at < %s GROUP BY 1, 2""",
                [brand.pk, window.since, window.until],
            )
            daily_plan = "\n".join(row[0] for row in cursor.fetchall())
            cursor.execute(
                """EXPLAIN SELECT brand_id, count(*) FROM insights_mention
                   WHERE brand_id = ANY(%s) AND posted_at >= %s AND posted_at < %s
                   GROUP BY 1""",
                [brand_ids, window.since, window.until],
            )
            voice_plan = "\n".join(row[0] for row in cursor.fetchall())
        result[f"daily_{days}d_plan"] = _scan(daily_plan)
        result[f"share_{days}d_plan"] = _scan(voice_plan)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
