"""What the brand health page, the dashboard panel and the spike check read.

Every aggregate over mentions is a range of the (brand, posted_at) index: one brand, or a
short list of brands (`brand_id = ANY(...)`), over the selected window. The page's queries
are a fixed handful whatever the window or the number of mentions.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db import connection
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from campaigns.models import Campaign, CampaignStatus
from campaigns.selectors import campaign_list
from insights.models import (
    AlertStatus,
    Brand,
    BrandAlert,
    BrandKind,
    Mention,
    Post,
    SentimentLabel,
)
from insights.themes import top_themes

WINDOW_DAYS = (7, 30, 90)
DEFAULT_WINDOW_DAYS = 30
TOP_POSTS = 10
TOP_THEMES = 10
# Themes come from the latest mentions of each polarity in the window (their posts' aspects
# or words): enough for a stable top 10, bounded whatever the volume.
THEME_SAMPLE = 1000
CAMPAIGNS_SHOWN = 20
LABELS = (SentimentLabel.POSITIVE, SentimentLabel.NEUTRAL, SentimentLabel.NEGATIVE)


@dataclass(frozen=True)
class Window:
    days: int
    since: datetime  # start of the first day (current timezone)
    until: datetime  # end of today
    dates: list[date]

    @property
    def first(self) -> date:
        return self.dates[0]

    @property
    def last(self) -> date:
        return self.dates[-1]


def health_window(*, days: int, now: datetime | None = None) -> Window:
    """The last `days` calendar days, today included."""
    today = timezone.localdate(now or timezone.now())
    first = today - timedelta(days=days - 1)
    tz = timezone.get_current_timezone()
    since = datetime.combine(first, datetime.min.time(), tzinfo=tz)
    until = datetime.combine(today + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    return Window(
        days=days,
        since=since,
        until=until,
        dates=[first + timedelta(days=i) for i in range(days)],
    )


@dataclass(frozen=True)
class Voice:
    brand: Brand
    mentions: int
    share: float | None


@dataclass(frozen=True)
class CampaignPeriod:
    pk: int
    name: str
    start: datetime
    end: datetime


@dataclass
class BrandHealth:
    brand: Brand
    window: Window
    # day -> label ("" for not scored yet) -> mentions
    daily: dict[date, dict[str, int]] = field(default_factory=dict)
    voices: list[Voice] = field(default_factory=list)
    positive_themes: list[tuple[str, int]] = field(default_factory=list)
    negative_themes: list[tuple[str, int]] = field(default_factory=list)
    top_posts: list[Post] = field(default_factory=list)
    campaigns: list[CampaignPeriod] = field(default_factory=list)
    alerts: list[BrandAlert] = field(default_factory=list)

    def count(self, label: str | None = None) -> int:
        return sum(
            n
            for by_label in self.daily.values()
            for lab, n in by_label.items()
            if label is None or lab == label
        )

    @property
    def total(self) -> int:
        return self.count()

    @property
    def positive(self) -> int:
        return self.count(SentimentLabel.POSITIVE)

    @property
    def neutral(self) -> int:
        return self.count(SentimentLabel.NEUTRAL)

    @property
    def negative(self) -> int:
        return self.count(SentimentLabel.NEGATIVE)

    @property
    def net_sentiment(self) -> float | None:
        """(positive - negative) / scored mentions, in [-1, 1]."""
        scored = self.positive + self.neutral + self.negative
        return (self.positive - self.negative) / scored if scored else None

    @property
    def share_of_voice(self) -> float | None:
        for voice in self.voices:
            if voice.brand.pk == self.brand.pk:
                return voice.share
        return None

    def series(self, label: str | None = None) -> list[int]:
        return [
            sum(n for lab, n in self.daily.get(d, {}).items() if label is None or lab == label)
            for d in self.window.dates
        ]


def brand_get(*, pk: int) -> Brand | None:
    return Brand.objects.select_related("parent").filter(pk=pk).first()


def brand_list_for_health() -> list[Brand]:
    """Active brands, ours first."""
    return list(Brand.objects.filter(is_active=True).order_by("-is_own", "name"))


def brand_competitors(*, brand: Brand) -> QuerySet[Brand]:
    """What `brand` is compared with for share of voice: the active competitors of its kind,
    or, for a competitor, our active brands of its kind."""
    return Brand.objects.filter(is_active=True, kind=brand.kind, is_own=not brand.is_own)


def _daily(brand_id: int, window: Window) -> dict[date, dict[str, int]]:
    rows = (
        Mention.objects.filter(
            brand_id=brand_id, posted_at__gte=window.since, posted_at__lt=window.until
        )
        .annotate(day=TruncDate("posted_at"))
        .values("day", "sentiment_label")
        .annotate(n=Count("*"))
        .order_by()
    )
    daily: dict[date, dict[str, int]] = defaultdict(dict)
    for row in rows:
        daily[row["day"]][row["sentiment_label"]] = row["n"]
    return dict(daily)


def mention_counts(*, brand_ids: list[int], since: datetime, until: datetime) -> dict[int, int]:
    """Mentions per brand in [since, until): one range of the (brand, posted_at) index each."""
    if not brand_ids:
        return {}
    rows = (
        Mention.objects.filter(brand_id__in=brand_ids, posted_at__gte=since, posted_at__lt=until)
        .values("brand_id")
        .annotate(n=Count("*"))
        .order_by()
    )
    return {row["brand_id"]: row["n"] for row in rows}


def _voices(brand: Brand, window: Window) -> list[Voice]:
    brands = [brand, *brand_competitors(brand=brand)]
    counts = mention_counts(
        brand_ids=[b.pk for b in brands], since=window.since, until=window.until
    )
    total = sum(counts.values())
    voices = [
        Voice(b, counts.get(b.pk, 0), counts.get(b.pk, 0) / total if total else None)
        for b in brands
    ]
    return sorted(voices, key=lambda v: (-v.mentions, v.brand.name))


def _themes(brand: Brand, window: Window) -> tuple[list, list]:
    exclude = [brand.name, *brand.aliases, *brand.hashtags, *brand.handles]
    by_label: dict[str, list[tuple[object, str]]] = {"positive": [], "negative": []}
    for label in by_label:
        rows = (
            Mention.objects.filter(
                brand=brand,
                posted_at__gte=window.since,
                posted_at__lt=window.until,
                sentiment_label=label,
            )
            .order_by("-posted_at")
            .values_list("post__aspects", "post__text")[:THEME_SAMPLE]
        )
        by_label[label] = list(rows)
    return (
        top_themes(by_label["positive"], exclude=exclude, limit=TOP_THEMES),
        top_themes(by_label["negative"], exclude=exclude, limit=TOP_THEMES),
    )


def _top_posts(brand: Brand, window: Window) -> list[Post]:
    """From the brand's mentions in the window (an index range) to their posts, most engaged
    first; a post naming the brand twice is listed once."""
    engagement = F("post__likes") + F("post__shares") + F("post__comments")
    mentions = (
        Mention.objects.filter(brand=brand, posted_at__gte=window.since, posted_at__lt=window.until)
        .select_related("post")
        .order_by(engagement.desc(), "-posted_at", "-post_id")[: TOP_POSTS * 3]
    )
    posts: dict[int, Post] = {}
    for mention in mentions:
        posts.setdefault(mention.post_id, mention.post)
    return list(posts.values())[:TOP_POSTS]


def campaign_periods(*, since: datetime, until: datetime, now: datetime | None = None):
    """Campaigns that ran in [since, until): from their start (or send) to their end; one
    still sending or paused runs until now; a one-off send without an end is shown as its
    day."""
    now = now or timezone.now()
    started = Q(started_at__isnull=False, started_at__lt=until) | Q(
        started_at__isnull=True, sent_at__isnull=False, sent_at__lt=until
    )
    ended_after = Q(finished_at__isnull=True) | Q(finished_at__gte=since)
    rows: list[Campaign] = list(
        campaign_list()
        .select_related(None)
        .filter(started, ended_after)
        .exclude(status=CampaignStatus.CANCELLED)
        .only("pk", "name", "status", "started_at", "sent_at", "finished_at")
        .order_by("started_at", "pk")[:CAMPAIGNS_SHOWN]
    )
    periods = []
    for c in rows:
        start = c.started_at or c.sent_at
        assert start is not None  # noqa: S101 - filtered above
        if c.finished_at:
            end = c.finished_at
        elif c.status in (CampaignStatus.SENDING, CampaignStatus.PAUSED):
            end = now
        else:
            end = start + timedelta(days=1)
        if end < since:
            continue
        end = max(end, start + timedelta(hours=12))
        periods.append(CampaignPeriod(c.pk, c.name, max(start, since), min(end, until)))
    return periods


def brand_alerts_open(*, brand: Brand | None = None) -> QuerySet[BrandAlert]:
    qs = BrandAlert.objects.filter(status=AlertStatus.OPEN).select_related("brand")
    if brand is not None:
        qs = qs.filter(brand=brand)
    return qs.order_by("-window_end", "-pk")


def brand_alert_get(*, pk: int) -> BrandAlert | None:
    return BrandAlert.objects.select_related("brand").filter(pk=pk).first()


def brand_health(*, brand: Brand, days: int, now: datetime | None = None) -> BrandHealth:
    """Everything the health page shows for one brand over the last `days` days."""
    window = health_window(days=days, now=now)
    positive, negative = _themes(brand, window)
    return BrandHealth(
        brand=brand,
        window=window,
        daily=_daily(brand.pk, window),
        voices=_voices(brand, window),
        positive_themes=positive,
        negative_themes=negative,
        top_posts=_top_posts(brand, window),
        campaigns=campaign_periods(since=window.since, until=window.until, now=now),
        alerts=list(brand_alerts_open(brand=brand)[:5]),
    )


@dataclass(frozen=True)
class HealthPanel:
    """The dashboard's brand health panel: our brands together against the competitors."""

    since: datetime
    until: datetime
    mentions: int
    positive: int
    negative: int
    scored: int
    own_share: float | None
    alerts: list[BrandAlert]
    open_alerts: int
    brand_id: int | None  # our first brand, for the link

    @property
    def net_sentiment(self) -> float | None:
        return (self.positive - self.negative) / self.scored if self.scored else None


_PANEL = """
SELECT b.is_own, m.sentiment_label, count(*)
FROM insights_mention m JOIN insights_brand b ON b.id = m.brand_id
WHERE m.brand_id = ANY(%s) AND m.posted_at >= %s AND m.posted_at < %s
GROUP BY 1, 2
"""
PANEL_ALERTS = 3


def health_panel(*, since: datetime, until: datetime) -> HealthPanel:
    """Mentions, share of voice and net sentiment of our active brands (brand kind, not
    products) against the active competitors in [since, until), and the open alerts: three
    queries, or four with more than PANEL_ALERTS open alerts."""
    brands = list(
        Brand.objects.filter(is_active=True, kind=BrandKind.BRAND)
        .order_by("-is_own", "name")
        .values_list("pk", "is_own")
    )
    counts: dict[bool, dict[str, int]] = {True: {}, False: {}}
    if brands:
        with connection.cursor() as cursor:
            cursor.execute(_PANEL, [[pk for pk, _ in brands], since, until])
            for is_own, label, n in cursor.fetchall():
                counts[is_own][label] = n
    own = counts[True]
    own_total = sum(own.values())
    everyone = own_total + sum(counts[False].values())
    alerts = list(brand_alerts_open()[: PANEL_ALERTS + 1])
    open_alerts = len(alerts) if len(alerts) <= PANEL_ALERTS else brand_alerts_open().count()
    return HealthPanel(
        since=since,
        until=until,
        mentions=own_total,
        positive=own.get(SentimentLabel.POSITIVE, 0),
        negative=own.get(SentimentLabel.NEGATIVE, 0),
        scored=sum(own.get(label, 0) for label in LABELS),
        own_share=own_total / everyone if everyone else None,
        alerts=alerts[:PANEL_ALERTS],
        open_alerts=open_alerts,
        brand_id=next((pk for pk, is_own in brands if is_own), None),
    )


# --- for the segment rules (registered in apps.py; profiles does not import insights) ---------


def brand_choices() -> list[tuple[int, str]]:
    return list(Brand.objects.order_by("name").values_list("pk", "name"))


def posts_mentioning(
    sentiment: str | None, brand_id: int | None, since: datetime | None
) -> QuerySet[Post]:
    """Known customers' posts that mention `brand_id` (any brand when None) with the post's
    `sentiment` label (any when None), posted since `since`."""
    posts = Post.objects.filter(customer__isnull=False)
    if since is not None:
        posts = posts.filter(posted_at__gte=since)
    if sentiment is not None:
        posts = posts.filter(sentiment_label=sentiment)
    mentions = Mention.objects.filter(post=OuterRef("pk"))
    if brand_id is not None:
        mentions = mentions.filter(brand_id=brand_id)
    return posts.filter(Exists(mentions))
