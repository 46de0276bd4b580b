"""Social listening writes: ingesting posts (mentions, sentiment, customer links), rescanning
a brand's mentions, training sentiment models.

Posts are unique by (source, external_id). A post seen again updates its metrics (likes,
shares, comments, other metrics) and, if it had none, its customer; its text, mentions and
sentiment stay as first scored. New posts are copied (binary COPY) into a staging table and
inserted with one statement per batch (`INSERT ... SELECT ... ON CONFLICT DO NOTHING`), so
two ingests of the same post racing each other store it once; their mentions are copied
straight into their table.

Customers are linked by the post's author handle, compared case-insensitively without "@"
to the handles a customer lists in `Customer.attributes["social_handles"]` (a list, e.g.
["@jane", "jane_doe"]; set it with the customer API or a users import), or by the post's
`author_email` to `Customer.email`. Erased customers are never linked.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import orjson
from django.db import transaction
from django.db.models import Count, Max
from django.utils import timezone

from insights import selectors_ingest as selectors
from insights.ingest import MAX_BATCH, PostRow, PostRowError, post_validate
from insights.mentions import BrandTerms, Match, MentionMatcher
from insights.models import Brand, Mention, Post, SentimentModel
from insights.sentiment import (
    VADER_NAME,
    Scorer,
    SklearnScorer,
    VaderScorer,
    aspects_many,
    evaluate,
    holdout_split,
    label_normalize,
    scorer_load,
)
from marketing.common.errors import ApplicationError
from profiles.services._db import bulk_cursor

logger = logging.getLogger(__name__)

INGEST_CHUNK = MAX_BATCH
RESCAN_CHUNK = 5000
HANDLES_ATTRIBUTE = "social_handles"


@dataclass(frozen=True)
class IngestResult:
    """rows = created + updated + rejected. `errors` name the row (as given: a list index
    from the API, a spreadsheet row number from a file) and the field."""

    rows: int
    created: int
    updated: int
    rejected: int
    mentions: int
    linked: int
    errors: list[PostRowError] = field(default_factory=list)

    def errors_by_row(self) -> dict[str, dict[str, list[str]]]:
        out: dict[str, dict[str, list[str]]] = {}
        for error in self.errors:
            out.setdefault(str(error.row), {}).setdefault(error.field, []).append(error.message)
        return out


# --- the matcher and the scorer, built once per process and rebuilt when they change ------

_lock = threading.Lock()
_matcher_cache: dict[str, tuple[tuple, MentionMatcher]] = {}
_scorer_cache: dict[str, tuple[tuple, Scorer]] = {}


def _brand_terms(brand: Brand) -> BrandTerms:
    return BrandTerms(
        key=brand.pk,
        name=brand.name,
        aliases=tuple(str(a) for a in brand.aliases or ()),
        hashtags=tuple(str(h) for h in brand.hashtags or ()),
        handles=tuple(str(h) for h in brand.handles or ()),
    )


def mention_matcher_get() -> MentionMatcher:
    """The matcher of the active brands; one cheap query checks it is current."""
    state = Brand.objects.filter(is_active=True).aggregate(n=Count("pk"), at=Max("updated_at"))
    stamp = (state["n"], state["at"])
    with _lock:
        cached = _matcher_cache.get("active")
        if cached is not None and cached[0] == stamp:
            return cached[1]
    matcher = MentionMatcher([_brand_terms(b) for b in Brand.objects.filter(is_active=True)])
    with _lock:
        _matcher_cache["active"] = (stamp, matcher)
    return matcher


def sentiment_scorer_get() -> Scorer:
    """The active SentimentModel's scorer, VADER when none is active."""
    active = (
        SentimentModel.objects.filter(is_active=True).values("pk", "updated_at", "kind").first()
    )
    stamp = (active["pk"], active["updated_at"]) if active else (None, None)
    with _lock:
        cached = _scorer_cache.get("active")
        if cached is not None and cached[0] == stamp:
            return cached[1]
    if active is None:
        scorer: Scorer = VaderScorer()
    else:
        model = SentimentModel.objects.get(pk=active["pk"])
        artifact = bytes(model.artifact) if model.artifact is not None else None
        scorer = scorer_load(kind=model.kind, name=model.name, artifact=artifact)
    with _lock:
        _scorer_cache["active"] = (stamp, scorer)
    return scorer


# --- ingest -------------------------------------------------------------------------------


def posts_validate(
    rows: Sequence, *, source_default: str | None = None, strict: bool = True, first_row: int = 0
) -> tuple[list[PostRow], list[PostRowError]]:
    """Rows numbered from `first_row` (0: list indexes, as the API reports them)."""
    now = timezone.now()
    valid: list[PostRow] = []
    errors: list[PostRowError] = []
    for index, raw in enumerate(rows):
        row, row_errors = post_validate(
            raw, row=first_row + index, now=now, source_default=source_default, strict=strict
        )
        if row is not None:
            valid.append(row)
        errors.extend(row_errors)
    return valid, errors


def posts_ingest(
    rows: Sequence[dict],
    *,
    source_default: str | None = None,
    strict: bool = False,
    all_or_nothing: bool = False,
    first_row: int = 0,
) -> IngestResult:
    """Validate, score and store posts; see the module docstring. Invalid rows are reported
    in `errors` and skipped; with `all_or_nothing` (the API) one invalid row refuses the
    batch and nothing is stored. With `strict`, unknown fields are errors."""
    valid, errors = posts_validate(
        rows, source_default=source_default, strict=strict, first_row=first_row
    )
    rejected = len({e.row for e in errors})
    if all_or_nothing and errors:
        return IngestResult(len(rows), 0, 0, rejected, 0, 0, errors)
    created = updated = mentions = linked = 0
    for start in range(0, len(valid), INGEST_CHUNK):
        c, u, m, k = posts_store(valid[start : start + INGEST_CHUNK])
        created += c
        updated += u
        mentions += m
        linked += k
    return IngestResult(len(rows), created, updated, rejected, mentions, linked, errors)


def posts_store(rows: Sequence[PostRow]) -> tuple[int, int, int, int]:
    """Store validated rows: (created, updated, mentions, linked)."""
    if not rows:
        return 0, 0, 0, 0
    unique: dict[tuple[str, str], PostRow] = {}
    for row in rows:
        unique[(row.source, row.external_id)] = row  # the last one wins, like a re-send
    batch = list(unique.values())
    matcher = mention_matcher_get()
    scorer = sentiment_scorer_get()
    existing = selectors.post_ids_by_key(keys=list(unique))
    fresh = [r for r in batch if (r.source, r.external_id) not in existing]
    customers = _customers_for(batch)
    now = timezone.now()
    created_ids: dict[tuple[str, str], int] = {}
    found: list[list[Match]] = []
    scores = []
    aspects: list[list[str]] = []
    if fresh:
        texts = [r.text for r in fresh]
        scores = scorer.score_many(texts)
        found = matcher.find_many(texts)
        aspects = aspects_many(texts)
    with transaction.atomic():
        cursor = bulk_cursor()
        if fresh:
            # COPY (binary, formatted in C) into a staging table, then one INSERT ... ON
            # CONFLICT DO NOTHING: a post stored meanwhile by a concurrent ingest is skipped
            # here and updated below.
            cursor.execute(_POST_STAGE)
            cursor.execute("DELETE FROM insights_post_stage")  # an earlier chunk's, if any
            with cursor.copy(_POST_STAGE_COPY) as copy:
                copy.set_types(_POST_STAGE_TYPES)
                write = copy.write_row
                dumps = orjson.dumps
                for r, s, a in zip(fresh, scores, aspects, strict=True):
                    write(
                        (
                            r.source,
                            r.external_id,
                            r.author,
                            r.author_email,
                            r.text,
                            r.language,
                            r.url,
                            r.posted_at,
                            r.likes,
                            r.shares,
                            r.comments,
                            dumps(r.metrics).decode() if r.metrics else "{}",
                            customers.get((r.source, r.external_id)),
                            s.score,
                            s.label,
                            dumps(a).decode() if a else "[]",
                        )
                    )
            cursor.execute(_POST_INSERT, {"now": now, "sentiment_model": scorer.name})
            created_ids = {(s, e): pk for pk, s, e in cursor.fetchall()}
        mention_rows = []
        for row, score, matches in zip(fresh, scores, found, strict=True):
            post_id = created_ids.get((row.source, row.external_id))
            if post_id is None:
                continue  # stored meanwhile by a concurrent ingest: updated below
            seen: set[tuple[Hashable, int]] = set()
            for match in matches:
                if (match.key, match.start) in seen:
                    continue
                seen.add((match.key, match.start))
                mention_rows.append(
                    (
                        post_id,
                        match.key,
                        match.start,
                        match.end,
                        match.text[:200],
                        match.match_type,
                        match.similarity,
                        row.posted_at,
                        score.score,
                        score.label,
                    )
                )
        if mention_rows:
            # Straight into the table: the posts were created by this transaction, so no
            # other one can have stored their mentions, and (brand, start) is unique above.
            with cursor.copy(_MENTION_COPY) as copy:
                copy.set_types(_MENTION_TYPES)
                for mention in mention_rows:
                    copy.write_row(mention)
        repeats = [r for r in batch if (r.source, r.external_id) not in created_ids]
        if repeats:
            raced = [
                (r.source, r.external_id)
                for r in repeats
                if (r.source, r.external_id) not in existing
            ]
            if raced:  # stored by a concurrent ingest after the first look
                existing.update(selectors.post_ids_by_key(keys=raced))
            cursor.execute(
                _POST_UPDATE,
                {
                    "now": now,
                    "id": [existing.get((r.source, r.external_id)) for r in repeats],
                    "likes": [r.likes for r in repeats],
                    "shares": [r.shares for r in repeats],
                    "comments": [r.comments for r in repeats],
                    "metrics": [orjson.dumps(r.metrics).decode() for r in repeats],
                    "customer_id": [customers.get((r.source, r.external_id)) for r in repeats],
                },
            )
    linked = sum(1 for r in batch if customers.get((r.source, r.external_id)))
    return len(created_ids), len(repeats), len(mention_rows), linked


# Dropped at the end of the transaction; a caller's own transaction may stage several
# chunks, hence IF NOT EXISTS and the DELETE before each.
_POST_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS insights_post_stage (source text, external_id text, author text,
    author_email text, text text, language text, url text, posted_at timestamptz, likes int,
    shares int, comments int, metrics text, customer_id bigint, sentiment float8,
    sentiment_label text, aspects text) ON COMMIT DROP
"""
_POST_STAGE_COPY = "COPY insights_post_stage FROM STDIN (FORMAT BINARY)"
_POST_STAGE_TYPES = [
    *["text"] * 7,
    "timestamptz",
    *["int4"] * 3,
    "text",
    "int8",
    "float8",
    "text",
    "text",
]

_POST_INSERT = """
INSERT INTO insights_post (created_at, updated_at, source, external_id, author, author_email,
    text, language, url, posted_at, likes, shares, comments, metrics, customer_id, sentiment,
    sentiment_label, sentiment_model, aspects)
SELECT %(now)s, %(now)s, source, external_id, author, author_email, text, language, url,
    posted_at, likes, shares, comments, metrics::jsonb, customer_id, sentiment,
    sentiment_label, %(sentiment_model)s, aspects::jsonb
FROM insights_post_stage
ON CONFLICT (source, external_id) DO NOTHING
RETURNING id, source, external_id
"""

_MENTION_COPY = """
COPY insights_mention (post_id, brand_id, start, "end", matched_text, match_type, similarity,
    posted_at, sentiment, sentiment_label) FROM STDIN (FORMAT BINARY)
"""
_MENTION_TYPES = [
    "int8",
    "int8",
    "int4",
    "int4",
    "text",
    "text",
    "float8",
    "timestamptz",
    "float8",
    "text",
]

_MENTION_INSERT = """
INSERT INTO insights_mention (post_id, brand_id, start, "end", matched_text, match_type,
    similarity, posted_at, sentiment, sentiment_label)
SELECT * FROM unnest(%(post_id)s::bigint[], %(brand_id)s::bigint[], %(start)s::int[],
    %(end)s::int[], %(matched_text)s::text[], %(match_type)s::text[], %(similarity)s::float8[],
    %(posted_at)s::timestamptz[], %(sentiment)s::float8[], %(sentiment_label)s::text[])
ON CONFLICT (post_id, brand_id, start) DO NOTHING
"""

# By id, with `id = ANY(...)` so the posts are read through the primary key: joined on
# (source, external_id) the planner hashed the whole table for every batch.
_POST_UPDATE = """
UPDATE insights_post p
SET likes = v.lk, shares = v.sh, comments = v.c, metrics = p.metrics || v.m::jsonb,
    customer_id = coalesce(p.customer_id, v.cu), updated_at = %(now)s
FROM unnest(%(id)s::bigint[], %(likes)s::int[], %(shares)s::int[], %(comments)s::int[],
    %(metrics)s::text[], %(customer_id)s::bigint[])
    AS v(id, lk, sh, c, m, cu)
WHERE p.id = v.id AND p.id = ANY(%(id)s::bigint[])
"""


def handle_normalize(handle: str) -> str:
    return handle.strip().lstrip("@").strip().casefold()


def _customers_for(rows: Sequence[PostRow]) -> dict[tuple[str, str], int]:
    handles = {handle_normalize(r.author) for r in rows if r.author.strip()}
    emails = {r.author_email for r in rows if r.author_email}
    if not handles and not emails:
        return {}
    by_handle, by_email = selectors.customers_by_handle_or_email(handles=handles, emails=emails)
    out: dict[tuple[str, str], int] = {}
    for row in rows:
        customer = by_handle.get(handle_normalize(row.author)) if row.author else None
        if customer is None and row.author_email:
            customer = by_email.get(row.author_email)
        if customer is not None:
            out[(row.source, row.external_id)] = customer
    return out


# --- brands -------------------------------------------------------------------------------


def brand_rescan(brand: Brand | int, *, progress: Callable[[int], None] | None = None) -> int:
    """Find a brand's mentions again over every stored post (after its name, aliases,
    hashtags or handles changed). Returns the number of mentions it now has. An inactive
    brand is left with none."""
    brand = brand if isinstance(brand, Brand) else Brand.objects.get(pk=brand)
    brand.refresh_from_db()
    terms = [_brand_terms(b) for b in Brand.objects.filter(is_active=True).exclude(pk=brand.pk)]
    if brand.is_active:
        terms.append(_brand_terms(brand))
    matcher = MentionMatcher(terms)
    total = 0
    done = 0
    with transaction.atomic():
        Mention.objects.filter(brand=brand).delete()
        if not brand.is_active:
            return 0
        cursor = bulk_cursor()
        last_pk = 0
        while True:
            chunk = list(
                Post.objects.filter(pk__gt=last_pk)
                .order_by("pk")
                .values_list("pk", "text", "posted_at", "sentiment", "sentiment_label")[
                    :RESCAN_CHUNK
                ]
            )
            if not chunk:
                break
            last_pk = chunk[-1][0]
            rows = []
            for (pk, _text, posted_at, sentiment, label), matches in zip(
                chunk, matcher.find_many(c[1] for c in chunk), strict=True
            ):
                for match in matches:
                    if match.key == brand.pk:
                        rows.append((pk, match, posted_at, sentiment, label))
            if rows:
                cursor.execute(
                    _MENTION_INSERT,
                    {
                        "post_id": [r[0] for r in rows],
                        "brand_id": [brand.pk] * len(rows),
                        "start": [r[1].start for r in rows],
                        "end": [r[1].end for r in rows],
                        "matched_text": [r[1].text[:200] for r in rows],
                        "match_type": [r[1].match_type for r in rows],
                        "similarity": [r[1].similarity for r in rows],
                        "posted_at": [r[2] for r in rows],
                        "sentiment": [r[3] for r in rows],
                        "sentiment_label": [r[4] or "" for r in rows],
                    },
                )
                total += cursor.rowcount
            done += len(chunk)
            if progress:
                progress(done)
    logger.info("brand rescanned", extra={"brand": brand.pk, "mentions": total})
    return total


# --- sentiment models ---------------------------------------------------------------------


class SentimentTrainingError(ApplicationError):
    code = "sentiment_training_invalid"


@dataclass(frozen=True)
class TrainResult:
    model: SentimentModel
    activated: bool
    candidate: dict
    baseline: dict
    baseline_name: str


def sentiment_model_train(
    rows: Iterable[dict] | Iterable[tuple[str, str]],
    *,
    name: str | None = None,
    test_size: float = 0.2,
    seed: int = 0,
) -> TrainResult:
    """Train a scikit-learn model on labelled posts ({"text", "label"} or (text, label)),
    score it and the active model (VADER when none) on the same held-out split, and store
    it; it becomes the active model only when its macro-F1 there is higher. The stored model
    is then refitted on every row; its `metrics` are the held-out ones."""
    texts: list[str] = []
    labels: list[str] = []
    for row in rows:
        text, raw = (row["text"], row["label"]) if isinstance(row, dict) else row
        label = label_normalize(raw)
        if label is None or not str(text).strip():
            continue
        texts.append(str(text))
        labels.append(label)
    if len(texts) < 20 or len(set(labels)) < 2:
        raise SentimentTrainingError(
            "Need at least 20 labelled posts of at least two classes.",
            extra={"rows": len(texts), "classes": sorted(set(labels))},
        )
    counts = {label: labels.count(label) for label in sorted(set(labels))}
    if min(counts.values()) < 2:
        # One example cannot be both learnt from and held out (the split is stratified).
        few = ", ".join(f"{label} {n}" for label, n in counts.items() if n < 2)
        raise SentimentTrainingError(
            f"Need at least 2 labelled posts of each class ({few}).", extra={"counts": counts}
        )
    name = name or f"sklearn-{timezone.now():%Y%m%d-%H%M%S}"
    try:
        train_t, test_t, train_l, test_l = holdout_split(
            texts, labels, test_size=test_size, seed=seed
        )
        candidate = SklearnScorer.fit(train_t, train_l)
        final = SklearnScorer.fit(texts, labels, name=name)
    except ValueError as exc:  # scikit-learn refusing the data, e.g. no word to learn from
        raise SentimentTrainingError(
            f"The model cannot be trained on these posts: {exc}", extra={"counts": counts}
        ) from exc
    candidate_metrics = evaluate(test_l, [s.label for s in candidate.score_many(test_t)])
    current = sentiment_scorer_get()
    baseline_metrics = evaluate(test_l, [s.label for s in current.score_many(test_t)])
    activate = candidate_metrics.macro_f1 > baseline_metrics.macro_f1
    metrics = {
        **candidate_metrics.as_dict(),
        "split": f"held-out {int(test_size * 100)}% stratified, seed {seed}",
        "train_rows": len(train_t),
        "test_rows": len(test_t),
        "baseline": {"name": current.name, **baseline_metrics.as_dict()},
    }
    with transaction.atomic():
        if activate:
            SentimentModel.objects.filter(is_active=True).update(is_active=False)
        model = SentimentModel.objects.create(
            name=name,
            kind=SklearnScorer.kind,
            artifact=final.dumps(),
            metrics=metrics,
            is_active=activate,
        )
    logger.info(
        "sentiment model trained",
        extra={"model": name, "activated": activate, "macro_f1": candidate_metrics.macro_f1},
    )
    return TrainResult(
        model=model,
        activated=activate,
        candidate=candidate_metrics.as_dict(),
        baseline=baseline_metrics.as_dict(),
        baseline_name=current.name,
    )


def sentiment_model_activate(model: SentimentModel | None) -> None:
    """Make `model` the active one; None goes back to VADER."""
    with transaction.atomic():
        SentimentModel.objects.filter(is_active=True).update(is_active=False)
        if model is not None:
            SentimentModel.objects.filter(pk=model.pk).update(is_active=True)


def posts_rescore(*, since: datetime | None = None) -> int:
    """Score stored posts again with the active model (and their mentions' copies)."""
    scorer = sentiment_scorer_get()
    qs = Post.objects.order_by("pk")
    if since is not None:
        qs = qs.filter(posted_at__gte=since)
    changed = 0
    last_pk = 0
    while True:
        chunk = list(qs.filter(pk__gt=last_pk).values_list("pk", "text")[:RESCAN_CHUNK])
        if not chunk:
            return changed
        last_pk = chunk[-1][0]
        scores = scorer.score_many([c[1] for c in chunk])
        with transaction.atomic():
            cursor = bulk_cursor()
            cursor.execute(
                """
                UPDATE insights_post p SET sentiment = v.s, sentiment_label = v.l,
                    sentiment_model = %(name)s
                FROM unnest(%(pk)s::bigint[], %(s)s::float8[], %(l)s::text[]) AS v(pk, s, l)
                WHERE p.id = v.pk
                """,
                {
                    "name": scorer.name,
                    "pk": [c[0] for c in chunk],
                    "s": [s.score for s in scores],
                    "l": [s.label for s in scores],
                },
            )
            cursor.execute(
                """
                UPDATE insights_mention m SET sentiment = p.sentiment,
                    sentiment_label = p.sentiment_label
                FROM insights_post p WHERE m.post_id = p.id AND p.id = ANY(%(pk)s::bigint[])
                """,
                {"pk": [c[0] for c in chunk]},
            )
        changed += len(chunk)


__all__ = [
    "VADER_NAME",
    "IngestResult",
    "brand_rescan",
    "mention_matcher_get",
    "posts_ingest",
    "posts_rescore",
    "posts_store",
    "posts_validate",
    "sentiment_model_activate",
    "sentiment_model_train",
    "sentiment_scorer_get",
]
