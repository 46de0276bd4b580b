"""Brands to watch, spike alerts on their negative mentions, and their acknowledgement.

Saving a brand whose name, aliases, hashtags or handles changed rescans the stored posts for
it in the background (a Job the brand page polls), because the mentions found so far were
found with the old words. Turning listening (`is_active`) on rescans too, since ingest
skipped the brand while it was off; turning it off removes its mentions (an inactive brand
has none, see `brand_rescan`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from insights.models import AlertStatus, Brand, BrandAlert, Post, SentimentLabel
from insights.services import brand_rescan
from insights.spikes import spike_check
from marketing.models import Job
from marketing.roles import MARKETER
from marketing.services import job_create, job_finish, job_progress, job_start

logger = logging.getLogger(__name__)

BRAND_FIELDS = (
    "name",
    "kind",
    "parent",
    "aliases",
    "hashtags",
    "handles",
    "is_own",
    "is_active",
    "alert_emails",
)
# What a mention is matched on: a change of any of these means a rescan.
MATCHED_FIELDS = ("name", "aliases", "hashtags", "handles", "is_active")


def _clean_terms(values, *, strip: str = "") -> list[str]:
    """Trimmed, without the tag's sign, duplicates (case-insensitive) dropped, order kept."""
    seen: dict[str, str] = {}
    for value in values or ():
        term = str(value).strip().lstrip(strip).strip()
        if term and term.lower() not in seen:
            seen[term.lower()] = term
    return list(seen.values())


def _normalize(fields: dict) -> dict:
    out = dict(fields)
    if "aliases" in out:
        out["aliases"] = _clean_terms(out["aliases"])
    if "hashtags" in out:
        out["hashtags"] = _clean_terms(out["hashtags"], strip="#")
    if "handles" in out:
        out["handles"] = _clean_terms(out["handles"], strip="@")
    if "alert_emails" in out:
        emails = _clean_terms(out["alert_emails"])
        bad = []
        for email in emails:
            try:
                validate_email(email)
            except ValidationError:
                bad.append(email)
        if bad:
            raise ValidationError({"alert_emails": f"Not an email address: {', '.join(bad)}."})
        out["alert_emails"] = [e.lower() for e in emails]
    return out


def _check_parent(brand: Brand) -> None:
    if brand.parent_id is None:
        return
    if brand.pk is not None and brand.parent_id == brand.pk:
        raise ValidationError({"parent": "A brand cannot belong to itself."})
    if brand.kind != "product":
        raise ValidationError({"parent": "Only a product belongs to a brand."})


@dataclass(frozen=True)
class BrandSaved:
    brand: Brand
    rescan_job: Job | None


def brand_save(*, brand: Brand | None, fields: dict, user=None) -> BrandSaved:
    """Create (`brand` None) or update a brand; schedules a rescan of stored posts when what
    it is matched on changed (a new brand is scanned too: older posts may name it)."""
    fields = _normalize({k: v for k, v in fields.items() if k in BRAND_FIELDS})
    with transaction.atomic():
        if brand is None:
            target = Brand()
            before: dict = {}
        else:
            target = Brand.objects.select_for_update(no_key=True).get(pk=brand.pk)
            before = {f: getattr(target, f) for f in MATCHED_FIELDS}
        for name, value in fields.items():
            setattr(target, name, value)
        _check_parent(target)
        target.full_clean()
        target.save()
        after = {f: getattr(target, f) for f in MATCHED_FIELDS}
        job = None
        if before != after:
            job = job_create(kind="brand_rescan", user=user)
            transaction.on_commit(lambda: _rescan_schedule(job.pk, target.pk))
    return BrandSaved(brand=target, rescan_job=job)


def _rescan_schedule(job_id: int, brand_id: int) -> None:
    from insights.tasks import brand_rescan_task

    brand_rescan_task.delay(job_id=job_id, brand_id=brand_id)


# --- spike alerts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertSettings:
    window: timedelta
    history: int  # previous windows forming the usual level
    k: float
    min_count: int

    @classmethod
    def from_settings(cls) -> AlertSettings:
        return cls(
            window=timedelta(minutes=settings.INSIGHTS_ALERT_WINDOW_MINUTES),
            history=settings.INSIGHTS_ALERT_HISTORY_WINDOWS,
            k=settings.INSIGHTS_ALERT_K,
            min_count=settings.INSIGHTS_ALERT_MIN_COUNT,
        )


ALERT_STEP = timedelta(minutes=15)

# Window k back from the latest (k = 0) is [end - (k+1)·window, end - k·window): counted
# from the history's start so that a mention posted exactly at a window's start is in it.
_NEGATIVE_PER_WINDOW = """
SELECT brand_id,
       %(history)s - floor(extract(epoch FROM (posted_at - %(start)s)) / %(seconds)s)::int AS k,
       count(*)
FROM insights_mention
WHERE brand_id = ANY(%(brands)s) AND posted_at >= %(start)s AND posted_at < %(end)s
  AND sentiment_label = %(label)s
GROUP BY 1, 2
"""


def _floor(at: datetime, step: timedelta) -> datetime:
    seconds = int(step.total_seconds())
    return datetime.fromtimestamp(int(at.timestamp()) // seconds * seconds, tz=at.tzinfo)


def brand_alerts_check(
    *, now: datetime | None = None, config: AlertSettings | None = None
) -> list[BrandAlert]:
    """Raise an alert for each active brand whose negative mentions of the latest window
    (ending at the last quarter hour) reach mean + k·std of the previous windows (and the
    minimum count). Safe to run again: one alert per (brand, window start), and none while an
    alert of an overlapping window exists. Returns the alerts created."""
    config = config or AlertSettings.from_settings()
    end = _floor(now or timezone.now(), ALERT_STEP)
    start = end - config.window
    history_start = end - config.window * (config.history + 1)
    brand_ids = list(Brand.objects.filter(is_active=True).values_list("pk", flat=True))
    if not brand_ids:
        return []
    counts: dict[int, dict[int, int]] = {pk: {} for pk in brand_ids}
    with connection.cursor() as cursor:
        cursor.execute(
            _NEGATIVE_PER_WINDOW,
            {
                "brands": brand_ids,
                "start": history_start,
                "end": end,
                "history": config.history,
                "seconds": config.window.total_seconds(),
                "label": SentimentLabel.NEGATIVE.value,
            },
        )
        for brand_id, k, n in cursor.fetchall():
            counts[brand_id][k] = n
    created = []
    for brand_id, per_window in counts.items():
        check = spike_check(
            count=per_window.get(0, 0),
            history=[per_window.get(k, 0) for k in range(1, config.history + 1)],
            k=config.k,
            min_count=config.min_count,
        )
        if not check.is_spike:
            continue
        alert = _alert_create(brand_id, start, end, check)
        if alert is not None:
            created.append(alert)
            logger.info(
                "brand_alert_created",
                extra={"brand_id": brand_id, "negative": check.count, "threshold": check.threshold},
            )
    for alert in created:
        transaction.on_commit(partial(_email_schedule, alert.pk))
    return created


def _alert_create(brand_id: int, start: datetime, end: datetime, check) -> BrandAlert | None:
    # Windows slide by a quarter hour: the same spike is in the next three. Acknowledged or
    # not, one alert stands for it; a spike after its window alerts again.
    overlapping = BrandAlert.objects.filter(
        brand_id=brand_id, window_end__gt=start, window_start__lt=end
    ).exclude(window_start=start)
    if overlapping.exists():
        return None
    try:
        with transaction.atomic():
            return BrandAlert.objects.create(
                brand_id=brand_id,
                window_start=start,
                window_end=end,
                negative_count=check.count,
                baseline=check.baseline,
                threshold=check.threshold,
            )
    except IntegrityError:
        return None  # this window's alert exists (a redelivered or concurrent run)


def _email_schedule(alert_id: int) -> None:
    from insights.tasks import brand_alert_email_task

    brand_alert_email_task.delay(alert_id=alert_id)


def alert_recipients(*, brand: Brand) -> list[str]:
    """The brand's alert emails, or else the active marketers' addresses."""
    if brand.alert_emails:
        return list(brand.alert_emails)
    users = get_user_model().objects.filter(is_active=True, groups__name=MARKETER, email__gt="")
    return sorted(set(users.values_list("email", flat=True)))


def brand_alert_email(*, alert_id: int) -> bool:
    """Email the alert once: the row is claimed (emailed_at set) before sending, so a
    redelivered or concurrent task sends nothing, and the claim is released when the send
    fails (the error is raised for the task to retry). Returns whether it sent."""
    claimed_at = timezone.now()
    claimed = BrandAlert.objects.filter(pk=alert_id, emailed_at__isnull=True).update(
        emailed_at=claimed_at
    )
    if not claimed:
        return False
    try:
        return _alert_email_send(alert_id)
    except Exception:
        BrandAlert.objects.filter(pk=alert_id, emailed_at=claimed_at).update(emailed_at=None)
        raise


def _alert_email_send(alert_id: int) -> bool:
    alert = BrandAlert.objects.select_related("brand").get(pk=alert_id)
    recipients = alert_recipients(brand=alert.brand)
    if not recipients:
        logger.warning("brand_alert_no_recipients", extra={"alert_id": alert_id})
        return False
    url = settings.PUBLIC_BASE_URL.rstrip("/") + reverse(
        "insights:brand-health", args=[alert.brand_id]
    )
    window = (
        f"{timezone.localtime(alert.window_start):%Y-%m-%d %H:%M}"
        f"–{timezone.localtime(alert.window_end):%H:%M}"
    )
    send_mail(
        subject=f"Negative mentions of {alert.brand.name} spiked: {alert.negative_count}",
        message=(
            f"{alert.negative_count} negative mentions of {alert.brand.name} between {window} "
            f"(usually {alert.baseline:.1f} per window; alert threshold {alert.threshold:.1f}).\n\n"
            f"Brand health: {url}\n"
        ),
        from_email=None,
        recipient_list=recipients,
    )
    return True


def brand_alert_acknowledge(*, alert: BrandAlert) -> bool:
    """Returns whether it was open (acknowledging twice changes nothing)."""
    changed = BrandAlert.objects.filter(pk=alert.pk, status=AlertStatus.OPEN).update(
        status=AlertStatus.ACKNOWLEDGED, updated_at=timezone.now()
    )
    return bool(changed)


def brand_rescan_run(*, job_id: int, brand_id: int) -> None:
    """The matcher's rescan of every stored post for one brand (insights/services.py), its
    progress in the job. A brand deleted meanwhile finishes the job with nothing to do."""
    brand = Brand.objects.filter(pk=brand_id).first()
    if brand is None:
        job_finish(job_id=job_id, message="The brand was deleted")
        return
    job_start(job_id=job_id, total=Post.objects.count(), message=f"Scanning posts for {brand}")
    mentions = brand_rescan(brand, progress=lambda done: job_progress(job_id=job_id, done=done))
    job_finish(
        job_id=job_id,
        result={"brand": brand.pk, "mentions": mentions},
        message=f"{mentions} mentions of {brand}",
    )
