"""A validated rule tree (profiles/segments/rules.py) to one SQL query over customers.

Every condition becomes a `Q` on `Customer`: columns and generated feature columns directly,
behaviour as subqueries on events that the planner runs once for all customers (`EXISTS`
semi-joins, `IN (… GROUP BY customer HAVING count(*) >= n)`), so counting a segment is one
statement and never a loop over customers in Python. With `correlated=True` behaviour is
compiled as per-customer subqueries instead, which is what the real-time evaluation of one
customer wants (index lookups on (customer, occurred_at)).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db.models import (
    Case,
    Count,
    Exists,
    Expression,
    F,
    FloatField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
    Window,
)
from django.db.models.fields.json import KT, KeyTextTransform, KeyTransform
from django.db.models.functions import Cast, Ceil, Coalesce, CumeDist, Exp, NullIf
from django.db.models.lookups import (
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    IsNull,
    LessThan,
    LessThanOrEqual,
)
from django.utils import timezone

from profiles.consent import CHANNEL_PURPOSE
from profiles.models import (
    ChannelEndpoint,
    Consent,
    Customer,
    CustomerFeatures,
    Event,
    Segment,
    SegmentKind,
    SegmentMembership,
)
from profiles.segments.rules import ATTRIBUTE_PREFIX, RulesInvalid

ItemsInCategory = Callable[[str], QuerySet]
_items_in_category: ItemsInCategory | None = None
# (sentiment or None, brand id or None, since or None) -> the posts with a `customer` foreign
# key that mention the brand (any brand) with that sentiment since then
PostsMentioning = Callable[[str | None, int | None, datetime | None], QuerySet]
_posts_mentioning: PostsMentioning | None = None

NUMERIC_TEXT = r"^\s*-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?\s*$"
ALWAYS = Q(pk__isnull=False)
NEVER = Q(pk__isnull=True)
MAX_SEGMENT_NESTING = 5

COMPARISONS = {
    "gt": GreaterThan,
    "gte": GreaterThanOrEqual,
    "lt": LessThan,
    "lte": LessThanOrEqual,
    "eq": Exact,
}


def items_in_category_register(lookup: ItemsInCategory) -> None:
    """The catalog (recommender app) gives the subquery of item ids in a category this way,
    so that profiles never imports the recommender."""
    global _items_in_category  # noqa: PLW0603 - a registry set once at start-up
    _items_in_category = lookup


def posts_mentioning_register(lookup: PostsMentioning) -> None:
    """The listening app (insights) gives the customers' posts that mention a brand this way,
    so that profiles never imports it."""
    global _posts_mentioning  # noqa: PLW0603 - a registry set once at start-up
    _posts_mentioning = lookup


@dataclass
class _Context:
    now: datetime
    correlated: bool
    visited: frozenset[int] = field(default_factory=frozenset)
    known: Mapping[int, Segment] = field(default_factory=dict)


def segment_rules_q(
    rules: dict,
    *,
    now: datetime | None = None,
    correlated: bool = False,
    visited: frozenset[int] = frozenset(),
    known: Mapping[int, Segment] | None = None,
) -> Q:
    """The Q on Customer selecting the members of a validated rule tree. Segments the rules
    refer to are read from `known` (by id) when there, else from the database."""
    ctx = _Context(
        now=now or timezone.now(), correlated=correlated, visited=visited, known=known or {}
    )
    return _group(rules, ctx)


def segment_rules_queryset(rules: dict, *, now: datetime | None = None) -> QuerySet[Customer]:
    return Customer.objects.filter(erased_at__isnull=True).filter(segment_rules_q(rules, now=now))


def _group(node: dict, ctx: _Context) -> Q:
    parts = [
        _group(child, ctx) if "conditions" in child else _condition(child, ctx)
        for child in node["conditions"]
    ]
    combined = parts[0]
    for part in parts[1:]:
        combined = (combined | part) if node["op"] == "or" else (combined & part)
    return combined


def _condition(c: dict, ctx: _Context) -> Q:
    kind = c["kind"]
    if kind == "profile":
        if c["field"].startswith(ATTRIBUTE_PREFIX):
            return _attribute(c["field"][len(ATTRIBUTE_PREFIX) :], c)
        return _column(c["field"], c, ctx)
    if kind == "feature":
        return _feature(c, ctx)
    if kind == "event":
        return _event(c, ctx)
    if kind == "consent":
        q = Q(
            Exists(
                Consent.objects.filter(customer=OuterRef("pk"), purpose=c["purpose"], granted=True)
            )
        )
        return q if c["op"] == "granted" else ~q
    if kind == "reachable":
        q = _reachable(c["channel"])
        return q if c["op"] == "is" else ~q
    if kind == "mention":
        return _mention(c, ctx)
    q = _segment(c["segment"], ctx)
    return q if c["op"] == "in" else ~q


# --- profile columns and attributes ---------------------------------------------------------


def _column(name: str, c: dict, ctx: _Context) -> Q:
    op, value = c["op"], c.get("value")
    if name == "is_anonymous":
        return Q(is_anonymous=op == "is_true")
    if name in ("birth_date", "created_at"):
        return _time(F(name), op, value, ctx, is_date=name == "birth_date")
    exact = "iexact" if name == "email" else "exact"
    if op == "eq":
        return Q(**{f"{name}__{exact}": value})
    if op == "neq":
        return ~Q(**{f"{name}__{exact}": value})
    if op in ("in", "not_in"):
        q = Q(**{f"{name}__in": value})
        if name == "email":
            q = Q()
            for address in value or ():
                q |= Q(email__iexact=address)
        return q if op == "in" else ~q
    if op in ("contains", "not_contains"):
        q = Q(**{f"{name}__icontains": value})
        return q if op == "contains" else ~q
    q = ~Q(**{name: ""})
    return q if op == "exists" else ~q


def _attribute(key: str, c: dict) -> Q:
    op, value = c["op"], c.get("value")
    path = f"attributes__{key}"
    has = Q(attributes__has_key=key)
    if op == "exists":
        return has
    if op == "not_exists":
        return ~has
    if op in ("eq", "neq", "in", "not_in"):
        values = value if isinstance(value, list) else [value]
        matches = Q()
        for v in values:
            # A number given as text matches the attribute stored as a number or as text.
            alternatives = Q(**{path: v})
            if isinstance(v, int | float) and not isinstance(v, bool):
                alternatives |= Q(**{path: str(v)})
            matches |= alternatives
        return (has & matches) if op in ("eq", "in") else ~(has & matches)
    if op in ("contains", "not_contains"):
        q = has & Q(**{f"{path}__icontains": value})
        return q if op == "contains" else ~q
    number = Case(
        When(Q(**{f"{path}__regex": NUMERIC_TEXT}), then=Cast(KT(path), FloatField())),
        default=Value(None, output_field=FloatField()),
    )
    return _compare(number, op, value)


def _compare(expression, op: str, value) -> Q:
    if op == "between":
        low, high = value
        return Q(GreaterThanOrEqual(expression, low)) & Q(LessThanOrEqual(expression, high))
    if op == "neq":
        return ~Q(Exact(expression, value))
    return Q(COMPARISONS[op](expression, value))


def _time(expression, op: str, value, ctx: _Context, *, is_date: bool = False) -> Q:
    if op in ("exists", "not_exists"):
        missing = Q(IsNull(expression, True))
        return ~missing if op == "exists" else missing
    if op in ("in_last_days", "not_in_last_days"):
        since = ctx.now - timedelta(days=value)
        bound: date | datetime = since.date() if is_date else since
        if op == "in_last_days":
            return Q(GreaterThanOrEqual(expression, bound))
        return Q(LessThan(expression, bound)) | Q(IsNull(expression, True))
    parse = date.fromisoformat if is_date else datetime.fromisoformat
    if op == "between":
        low, high = (_aware(parse(v)) for v in value)
        return Q(GreaterThanOrEqual(expression, low)) & Q(LessThanOrEqual(expression, high))
    moment = _aware(parse(value))
    return Q(LessThan(expression, moment)) if op == "before" else Q(GreaterThan(expression, moment))


def _aware(value):
    if isinstance(value, datetime) and timezone.is_naive(value):
        return timezone.make_aware(value, timezone.get_current_timezone())
    return value


# --- features -------------------------------------------------------------------------------

RFM_ORDER = {
    "rfm_recency": "last_purchase",
    "rfm_frequency": "orders",
    "rfm_monetary": "revenue",
}


def _feature(c: dict, ctx: _Context) -> Q:
    name, op, value = c["field"], c["op"], c.get("value")
    if name in ("first_seen", "last_seen", "last_purchase"):
        return _time(F(f"features__{name}"), op, value, ctx)
    if name in RFM_ORDER:
        return _rfm(name, op, value)
    expression: Expression
    if name == "average_order_value":
        expression = Cast(F("features__revenue"), FloatField()) / NullIf(F("features__orders"), 0)
        if op in ("exists", "not_exists"):
            q = Q(GreaterThan(Coalesce(F("features__orders"), Value(0)), 0))
            return q if op == "exists" else ~q
    elif name == "affinity":
        expression = Coalesce(_affinity(c["category"], ctx), Value(0.0), output_field=FloatField())
    else:
        expression = Coalesce(F(f"features__{name}"), Value(0), output_field=FloatField())
    if op == "exists":
        return Q(GreaterThan(expression, 0))
    if op == "not_exists":
        return ~Q(GreaterThan(expression, 0))
    return _compare(expression, op, value)


def _affinity(category: str, ctx: _Context):
    """The decayed affinity as of now: stored scores are as of `affinity_as_of`."""
    decay = math.log(2) / (settings.PROFILE_FEATURES_HALF_LIFE_DAYS * 86400.0)
    score = Cast(
        KeyTextTransform(category, KeyTransform("affinity", "features__state")), FloatField()
    )
    as_of = Cast(KeyTextTransform("affinity_as_of", "features__state"), FloatField())
    age = Value(ctx.now.timestamp(), output_field=FloatField()) - as_of
    return score * Exp(Value(-decay, output_field=FloatField()) * age)


def _rfm(name: str, op: str, value) -> Q:
    """Quintile scores among customers with features: 5 is the most recent / frequent /
    valuable fifth (by cumulative distribution, so ties share a score)."""
    order = F(RFM_ORDER[name]).asc(nulls_first=True)
    scored = CustomerFeatures.objects.annotate(
        score=Ceil(Window(CumeDist(), order_by=order) * Value(5.0))
    )
    if op in ("exists", "not_exists"):
        q = Q(features__isnull=False)
        return q if op == "exists" else ~q
    if op == "between":
        low, high = value
        members = scored.filter(score__gte=low, score__lte=high)
    elif op == "neq":
        members = scored.exclude(score=value)
    else:
        members = scored.filter(**{f"score__{'exact' if op == 'eq' else op}": value})
    return Q(pk__in=members.values("customer_id"))


# --- behaviour ------------------------------------------------------------------------------


def _events(c: dict, ctx: _Context) -> QuerySet[Event]:
    events = Event.objects.filter(type=c["event_type"])
    if "within_days" in c:
        events = events.filter(occurred_at__gte=ctx.now - timedelta(days=c["within_days"]))
    if "category" in c:
        if _items_in_category is None:
            raise RulesInvalid({"": "No catalog is registered to resolve categories."})
        events = events.filter(item_external_id__in=_items_in_category(c["category"]))
    if "item" in c:
        events = events.filter(item_external_id=c["item"])
    if "channel" in c:
        events = events.filter(channel=c["channel"])
    if "campaign_id" in c:
        events = events.filter(campaign_id=c["campaign_id"])
    return events.order_by()


def _event(c: dict, ctx: _Context) -> Q:
    c = {"aggregate": "count", "op": "gte", "value": 1, **c}
    return _behaviour(_events(c, ctx), c, ctx)


def _mention(c: dict, ctx: _Context) -> Q:
    """How many of the customer's posts mention a brand with a sentiment: counted like events
    (the posts' (customer, posted_at) index), one post once however often it names it."""
    if _posts_mentioning is None:
        raise RulesInvalid({"": "No listening app is registered to resolve mentions."})
    since = ctx.now - timedelta(days=c["within_days"]) if "within_days" in c else None
    sentiment = None if c["sentiment"] == "any" else c["sentiment"]
    posts = _posts_mentioning(sentiment, c.get("brand"), since).order_by()
    return _behaviour(posts, {"aggregate": "count", **c}, ctx)


def _behaviour(events: QuerySet, c: dict, ctx: _Context) -> Q:
    """Customers whose rows in `events` (a queryset with a `customer` foreign key) compare
    with c["value"] by c["op"], counted or summed (c["aggregate"])."""
    op, value = c["op"], c["value"]
    if ctx.correlated:
        per_customer = events.filter(customer=OuterRef("pk")).values("customer_id")
        measure = Count("*") if c["aggregate"] == "count" else Sum("value")
        total = Coalesce(
            Subquery(per_customer.annotate(m=measure).values("m")[:1]),
            Value(0, output_field=FloatField()),
            output_field=FloatField(),
        )
        return _compare(total, op, value)
    if c["aggregate"] == "sum":
        return _sum_compare(events, op, value)
    at_least = {
        "gte": value,
        "gt": value + 1,
    }
    if op in at_least:
        return _at_least(events, at_least[op])
    if op == "lte":
        return ~_at_least(events, value + 1)
    if op == "lt":
        return ~_at_least(events, value)
    return _at_least(events, value) & ~_at_least(events, value + 1)


def _at_least(events: QuerySet, n: int) -> Q:
    if n <= 0:
        return ALWAYS
    if n == 1:
        return Q(Exists(events.filter(customer=OuterRef("pk"))))
    # count(*), not count(id): the (type, occurred_at) index covers customer, item and value
    # but not id, and any other column would force a visit to the table for every event.
    grouped = events.values("customer_id").annotate(n=Count("*")).filter(n__gte=n)
    return Q(pk__in=grouped.values("customer_id"))


def _sum_compare(events: QuerySet[Event], op: str, value) -> Q:
    """Customers without such events have a sum of 0."""
    positive_op = {"gte": "gte", "gt": "gt", "lte": "gt", "lt": "gte"}[op]
    if (positive_op == "gte" and value <= 0) or (positive_op == "gt" and value < 0):
        matched = ALWAYS
    else:
        grouped = events.values("customer_id").annotate(total=Sum("value"))
        grouped = grouped.filter(**{f"total__{positive_op}": value})
        matched = Q(pk__in=grouped.values("customer_id"))
    return matched if op in ("gte", "gt") else ~matched


# --- consent, reachability and other segments -----------------------------------------------


def _reachable(channel: str) -> Q:
    consent = Consent.objects.filter(
        customer=OuterRef("pk"), purpose=CHANNEL_PURPOSE[channel], granted=True
    )
    endpoint = ChannelEndpoint.objects.filter(
        customer=OuterRef("pk"), channel=channel, opted_out=False
    )
    return Q(Exists(consent)) & Q(Exists(endpoint))


def _segment(segment_id: int, ctx: _Context) -> Q:
    """A rule segment is evaluated inline (always current); the others by their members."""
    if segment_id in ctx.visited:
        raise RulesInvalid({"": "Segments cannot refer to each other in a circle."})
    if len(ctx.visited) >= MAX_SEGMENT_NESTING:
        raise RulesInvalid({"": f"Segments nest at most {MAX_SEGMENT_NESTING} deep."})
    segment = ctx.known.get(segment_id)
    if segment is None:
        segment = Segment.objects.filter(pk=segment_id).only("kind", "rules").first()
    if segment is None:
        raise RulesInvalid({"": f"Segment {segment_id} does not exist."})
    if segment.kind == SegmentKind.RULES:
        inner = replace(ctx, visited=ctx.visited | {segment_id})
        return _group(segment.rules, inner)
    return Q(
        Exists(SegmentMembership.objects.filter(segment_id=segment_id, customer=OuterRef("pk")))
    )
