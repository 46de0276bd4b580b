"""Social posts scored (mentions + sentiment + aspects) and stored in PostgreSQL through
`posts_ingest`, in batches of 1,000 as the API and the file importer send them.

Generates seeded posts (50,000 by default): 12 brands with aliases, hashtags and handles;
texts mixing brand names, misspellings, hashtags, handles, opinion words, emoji and filler
drawn Zipf-like from a 3,000-word vocabulary; a third of the authors are known customers.
Runs on a scratch database, then ingests the same posts again (metrics-only updates).
Also times the pure scoring steps without the database, and counts the CPU time per post
of the ingest processes and of their PostgreSQL backends (a figure the machine's other load
barely moves). Prints JSON on its last line; "ok" needs 5,000 posts/s end to end on the
first run.

    .venv/bin/python benchmarks/social_ingest.py [--posts 50000] [--batch 1000] [--workers 2]
        [--db marketing_bench_social]
"""

import argparse
import json
import os
import random
import time

from _scratch import bench_env, database_reset, django_setup

DB = "marketing_bench_social"
TARGET = 5000
BRANDS = [
    ("Acme Store", ["acme", "acme shop"], ["acmestore"], ["acme_store"]),
    ("Globex Mart", ["globex"], ["globexmart"], ["globex"]),
    ("Initech", [], ["initech"], ["initech_help"]),
    ("Umbrella Outfitters", ["umbrella outfit"], ["umbrellafits"], []),
    ("Hooli Phones", ["hooli"], ["hooliphone"], ["hooli"]),
    ("Stark Sneakers", ["stark kicks"], [], ["starkkicks"]),
    ("Wayne Coffee", ["wayne cafe"], ["waynecoffee"], []),
    ("Soylent Snacks", ["soylent"], [], ["soylent"]),
    ("Tyrell Beauty", ["tyrell"], ["tyrellglow"], []),
    ("Cyberdyne Audio", ["cyberdyne"], [], ["cyberdyne_audio"]),
    ("Nakatomi Travel", ["nakatomi"], ["nakatomitrips"], []),
    ("Vandelay Imports", ["vandelay"], [], []),
]
OPINIONS = [
    "love it",
    "absolutely terrible",
    "great price",
    "delivery was slow",
    "customer service was rude",
    "quality is amazing",
    "broke after a week",
    "not bad at all",
    "worst purchase ever",
    "so happy with the fit",
    "the app keeps crashing",
    "meh",
    "would recommend",
    "never again!!",
    ":) thanks",
    "overpriced but nice",
]
EMOJI = ["🔥", "😡", "❤️", "👍", "😂", "🙄", ""]


def _vocabulary(rng: random.Random, size: int) -> list[str]:
    letters = "abcdefghijklmnoprstuvwy"
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(letters) for _ in range(rng.randint(3, 9))))
    return sorted(words)


def _misspell(rng: random.Random, word: str) -> str:
    i = rng.randrange(1, len(word))
    return word[:i] + word[i - 1] + word[i:]  # a doubled letter: "Acmee"


def _posts(n: int, seed: int, customers: int) -> list[dict]:
    rng = random.Random(seed)
    vocab = _vocabulary(rng, 3000)
    weights = [1 / (rank + 1) for rank in range(len(vocab))]
    now = int(time.time()) - 3600
    posts = []
    for k in range(n):
        name, aliases, tags, handles = rng.choice(BRANDS)
        kind = rng.random()
        if kind < 0.35:
            brand = name
        elif kind < 0.5 and aliases:
            brand = rng.choice(aliases)
        elif kind < 0.65 and tags:
            brand = "#" + rng.choice(tags)
        elif kind < 0.75 and handles:
            brand = "@" + rng.choice(handles)
        elif kind < 0.85:
            brand = _misspell(rng, name.split()[0])
        else:
            brand = ""  # no mention
        filler = rng.choices(vocab, weights=weights, k=rng.randint(6, 25))
        cut = rng.randrange(len(filler))
        words = [*filler[:cut], brand, rng.choice(OPINIONS), *filler[cut:], rng.choice(EMOJI)]
        author = rng.randrange(customers * 3)
        posts.append(
            {
                "source": "bench",
                "external_id": f"b{k}",
                "author": f"@user{author}",
                "text": " ".join(w for w in words if w),
                "language": "en",
                "posted_at": now - rng.randrange(90 * 86400),
                "likes": rng.randrange(500),
                "shares": rng.randrange(50),
                "comments": rng.randrange(30),
                "url": f"https://example.social/p/{k}",
            }
        )
    return posts


def _backend_cpu_s() -> float | None:
    """CPU seconds used so far by this process's PostgreSQL backend (same machine), or
    None where /proc does not show it."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _ingest(batch: list[dict]) -> tuple[int, int, int, int, float, float | None]:
    """(created, updated, mentions, linked, CPU seconds of this process, CPU seconds of its
    PostgreSQL backend) for one batch."""
    from insights.services import posts_ingest

    backend = _backend_cpu_s()
    started = time.process_time()
    result = posts_ingest(batch)
    cpu = time.process_time() - started
    after = _backend_cpu_s()
    backend_cpu = after - backend if after is not None and backend is not None else None
    return result.created, result.updated, result.mentions, result.linked, cpu, backend_cpu


def _run(batches: list[list[dict]], workers: int) -> list[tuple]:
    """In this process, or in `workers` forked processes with their own connections (as
    several API or Celery workers would run)."""
    if workers <= 1:
        return [_ingest(batch) for batch in batches]
    import multiprocessing

    from django.db import connections

    connections.close_all()
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        return pool.map(_ingest, batches, chunksize=1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--posts", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=1, help="ingest processes")
    parser.add_argument("--db", default=DB, help="the scratch database (dropped and created)")
    args = parser.parse_args()

    env = bench_env(args.db, redis_db=2)
    database_reset(args.db, env)
    django_setup(env)
    from insights.models import Brand, Mention, Post
    from insights.sentiment import VaderScorer, aspects_many
    from insights.services import mention_matcher_get
    from profiles.models import Customer

    for name, aliases, tags, handles in BRANDS:
        Brand.objects.create(name=name, aliases=aliases, hashtags=tags, handles=handles)
    Customer.objects.bulk_create(
        Customer(
            external_id=f"c{i}",
            email=f"c{i}@example.com",
            attributes={"social_handles": [f"@user{i}"]},
        )
        for i in range(args.customers)
    )
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE profiles_customer")  # as autovacuum would after a bulk load
    posts = _posts(args.posts, args.seed, args.customers)
    batches = [posts[i : i + args.batch] for i in range(0, len(posts), args.batch)]

    # The pure steps, no database, on the first 10,000 texts.
    texts = [p["text"] for p in posts[:10_000]]
    matcher = mention_matcher_get()
    started = time.perf_counter()
    matcher.find_many(texts)
    match_s = time.perf_counter() - started
    started = time.perf_counter()
    VaderScorer().score_many(texts)
    vader_s = time.perf_counter() - started
    started = time.perf_counter()
    aspects_many(texts)
    aspects_s = time.perf_counter() - started

    started = time.perf_counter()
    cpu_started = time.process_time()
    results = _run(batches, args.workers)
    created = sum(r[0] for r in results)
    mentions = sum(r[2] for r in results)
    linked = sum(r[3] for r in results)
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started

    client_cpu = sum(r[4] for r in results)
    backend_cpu = None if any(r[5] is None for r in results) else sum(r[5] for r in results)

    for post in posts:
        post["likes"] += 1
    started = time.perf_counter()
    updated = sum(r[1] for r in _run(batches, args.workers))
    again_seconds = time.perf_counter() - started

    stored = Post.objects.count()
    result = {
        "benchmark": "social_ingest",
        "posts": args.posts,
        "batch": args.batch,
        "workers": args.workers,
        "brands": len(BRANDS),
        "customers": args.customers,
        "seconds": round(seconds, 2),
        "posts_per_s": round(args.posts / seconds),
        "cpu_seconds_in_process": round(cpu_seconds, 2),
        "posts_per_cpu_s_in_process": round(args.posts / cpu_seconds)
        if args.workers == 1
        else None,
        "created": created,
        "stored": stored,
        "mentions": mentions,
        "mentions_stored": Mention.objects.count(),
        "linked": linked,
        # CPU time per post of the ingest processes and of their PostgreSQL backends (not
        # counting PostgreSQL's WAL writer and checkpointer): what the load average cannot
        # take away, and the rate two otherwise idle cores would allow.
        "cpu_us_per_post_python": round(client_cpu / args.posts * 1e6),
        "cpu_us_per_post_postgres": round(backend_cpu / args.posts * 1e6)
        if backend_cpu is not None
        else None,
        "posts_per_s_on_2_idle_cores": round(2 * args.posts / (client_cpu + backend_cpu))
        if backend_cpu is not None
        else None,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "repeat_seconds": round(again_seconds, 2),
        "repeat_posts_per_s": round(args.posts / again_seconds),
        "repeat_updated": updated,
        "us_per_post_match": round(match_s / len(texts) * 1e6, 1),
        "us_per_post_vader": round(vader_s / len(texts) * 1e6, 1),
        "us_per_post_aspects": round(aspects_s / len(texts) * 1e6, 1),
        "target_posts_per_s": TARGET,
        "cpus": os.cpu_count(),
    }
    result["ok"] = (
        created == args.posts
        and stored == args.posts
        and updated == args.posts
        and result["posts_per_s"] >= TARGET
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
