"""Writing campaigns from the pages: create and edit (with their variants), schedule,
unschedule, cancel, duplicate. Launch, pause and resume are in campaigns/lifecycle.py.

The rules that span fields and rows (an audience matching its type, a schedule time that is
not past, templates of the campaign's channel, weights not all zero) live in
`campaign_problems`, so every caller (the pages, the admin, a future API) gets the same
answer; the services raise them as one `ValidationError` ({field: [messages]}) before
anything is written.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from campaigns.errors import CampaignStatusError
from campaigns.models import (
    AudienceType,
    Campaign,
    CampaignStatus,
    CampaignVariant,
    Message,
    MessageStatus,
    MessageTemplate,
    ScheduleType,
    SkipReason,
)
from campaigns.selectors import campaign_qs_for_update

logger = logging.getLogger(__name__)

# The fields a marketer sets on the create and edit pages (status and times are the
# lifecycle's).
CAMPAIGN_FIELDS = (
    "name",
    "channel",
    "audience_type",
    "segment",
    "trigger_event_type",
    "trigger_exit_event_type",
    "trigger_delay_minutes",
    "trigger_reentry_days",
    "schedule_type",
    "scheduled_at",
    "recurrence",
    "recurrence_until",
    "send_local_time",
    "quiet_hours_start",
    "quiet_hours_end",
    "goal_event_type",
    "goal_window_hours",
    "holdout_percent",
    "cost",
)
EDITABLE = (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED)
CANCELLABLE = (
    CampaignStatus.DRAFT,
    CampaignStatus.SCHEDULED,
    CampaignStatus.SENDING,
    CampaignStatus.PAUSED,
)
TIMED_SCHEDULES = (ScheduleType.AT, ScheduleType.RECURRING, ScheduleType.LOCAL_TIME)


@dataclass(frozen=True)
class VariantSpec:
    """One variant as the form gives it; `pk` set for a variant being kept."""

    name: str
    template: MessageTemplate
    weight: int = 1
    pk: int | None = None


def _audience_problems(fields: Mapping[str, Any]) -> dict[str, str]:
    if fields.get("audience_type") == AudienceType.TRIGGER:
        problems = {}
        trigger = fields.get("trigger_event_type")
        if not trigger:
            problems["trigger_event_type"] = "Choose the event that starts the journey."
        elif fields.get("trigger_exit_event_type") == trigger:
            problems["trigger_exit_event_type"] = (
                "The exit event must differ from the trigger event."
            )
        return problems
    if fields.get("segment") is None:
        return {"segment": "Choose a segment."}
    return {}


def _schedule_problems(fields: Mapping[str, Any], now: datetime) -> dict[str, str]:
    kind = fields.get("schedule_type") or ScheduleType.NOW
    at = fields.get("scheduled_at")
    if kind not in TIMED_SCHEDULES:
        return {}
    if at is None:
        what = "date" if kind == ScheduleType.LOCAL_TIME else "time"
        return {"scheduled_at": f"Choose the {what} to send."}
    problems = {}
    if kind == ScheduleType.LOCAL_TIME:
        # The local time may still be ahead somewhere on earth until the day is over there.
        if at.date() < timezone.localdate(now):
            problems["scheduled_at"] = "The date is in the past."
        if fields.get("send_local_time") is None:
            problems["send_local_time"] = "Choose the local time to send at."
    elif at <= now:
        problems["scheduled_at"] = "The time is in the past."
    if kind == ScheduleType.RECURRING:
        if not fields.get("recurrence"):
            problems["recurrence"] = "Choose daily or weekly."
        until = fields.get("recurrence_until")
        if until is not None and until <= at:
            problems["recurrence_until"] = "The end must be after the first send."
    return problems


def _quiet_and_goal_problems(fields: Mapping[str, Any]) -> dict[str, str]:
    problems = {}
    start, end = fields.get("quiet_hours_start"), fields.get("quiet_hours_end")
    if (start is None) != (end is None):
        problems["quiet_hours_end" if end is None else "quiet_hours_start"] = (
            "Give both the start and the end of the quiet hours, or neither."
        )
    elif start is not None and start == end:
        problems["quiet_hours_end"] = "The quiet hours must end at another hour than they start."
    if fields.get("goal_event_type") and not fields.get("goal_window_hours"):
        problems["goal_window_hours"] = "A conversion goal needs a window of at least 1 hour."
    cost = fields.get("cost")
    if cost is not None and Decimal(cost) < 0:
        problems["cost"] = "The cost cannot be negative."
    return problems


def _variant_problems(channel: str, variants: Sequence[VariantSpec]) -> list[str]:
    if not variants:
        return ["Add at least one variant with a template."]
    problems = []
    for spec in variants:
        if spec.template.channel != channel:
            problems.append(
                f"Variant {spec.name!r}: the template {spec.template.name!r} is for "
                f"{spec.template.get_channel_display()}, not for this campaign's channel."
            )
    names = [spec.name for spec in variants]
    if len(set(names)) != len(names):
        problems.append("Each variant needs its own name.")
    if all(spec.weight <= 0 for spec in variants):
        problems.append("At least one variant needs a weight above 0.")
    return problems


def campaign_problems(
    *, fields: Mapping[str, Any], variants: Sequence[VariantSpec], now: datetime | None = None
) -> dict[str, list[str]]:
    """{field or "variants": [messages]} for campaign fields and variants that do not make a
    sendable campaign; empty when they do."""
    now = now or timezone.now()
    single = {
        **_audience_problems(fields),
        **_schedule_problems(fields, now),
        **_quiet_and_goal_problems(fields),
    }
    problems = {name: [message] for name, message in single.items()}
    if variant_messages := _variant_problems(fields.get("channel", ""), variants):
        problems["variants"] = variant_messages
    return problems


def _validated(campaign: Campaign, variants: Sequence[VariantSpec]) -> None:
    errors: dict[str, list[str]] = {}
    try:
        campaign.full_clean(exclude=["template", "parent", "created_by"])
    except ValidationError as exc:
        errors.update(exc.message_dict)
    fields = {name: getattr(campaign, name) for name in CAMPAIGN_FIELDS}
    for name, messages in campaign_problems(fields=fields, variants=variants).items():
        errors.setdefault(name, []).extend(messages)
    if errors:
        raise ValidationError(errors)


def _normalized(campaign: Campaign) -> None:
    """Blank the fields the chosen audience and schedule do not use, so the stored row says
    only what applies (a segment campaign has no trigger, a one-off no recurrence)."""
    if campaign.audience_type == AudienceType.TRIGGER:
        campaign.segment = None
    else:
        campaign.trigger_event_type = campaign.trigger_exit_event_type = ""
        campaign.trigger_reentry_days = None
    if campaign.schedule_type == ScheduleType.NOW:
        campaign.scheduled_at = None
    if campaign.schedule_type != ScheduleType.RECURRING:
        campaign.recurrence, campaign.recurrence_until = "", None
    if campaign.schedule_type != ScheduleType.LOCAL_TIME:
        campaign.send_local_time = None


def _variants_save(campaign: Campaign, variants: Sequence[VariantSpec]) -> None:
    """Make the campaign's variants exactly `variants` (kept ones updated in place)."""
    kept = [spec.pk for spec in variants if spec.pk]
    campaign.variants.exclude(pk__in=kept).delete()
    existing = {v.pk: v for v in campaign.variants.filter(pk__in=kept)}
    # Renames may swap names: park the kept ones first, or the unique constraint trips.
    for variant in existing.values():
        variant.name = f"~{variant.pk}"
        variant.save(update_fields=["name", "updated_at"])
    for spec in variants:
        kept_variant = existing.get(spec.pk) if spec.pk else None
        if kept_variant is None:
            CampaignVariant.objects.create(
                campaign=campaign, name=spec.name, template=spec.template, weight=spec.weight
            )
            continue
        kept_variant.name = spec.name
        kept_variant.template, kept_variant.weight = spec.template, spec.weight
        kept_variant.save(update_fields=["name", "template", "weight", "updated_at"])


def campaign_create(
    *, fields: Mapping[str, Any], variants: Sequence[VariantSpec], created_by: Any = None
) -> Campaign:
    """A draft campaign with its variants. `fields` holds CAMPAIGN_FIELDS (missing ones
    take the model defaults)."""
    unknown = set(fields) - set(CAMPAIGN_FIELDS)
    if unknown:
        raise TypeError(f"Not a campaign field: {', '.join(sorted(unknown))}")
    campaign = Campaign(**fields, status=CampaignStatus.DRAFT, created_by=created_by)
    _normalized(campaign)
    _validated(campaign, variants)
    # The campaign's own template stays the first variant's, for the pages and the admin.
    campaign.template = variants[0].template
    with transaction.atomic():
        campaign.save()
        _variants_save(campaign, variants)
    logger.info("campaign created", extra={"campaign": campaign.pk})
    return campaign


def campaign_update(
    *, campaign: Campaign | int, fields: Mapping[str, Any], variants: Sequence[VariantSpec]
) -> Campaign:
    """Change a draft or scheduled campaign and replace its variants. A scheduled campaign
    whose schedule became "now" goes back to draft (it waits for "Send now")."""
    unknown = set(fields) - set(CAMPAIGN_FIELDS)
    if unknown:
        raise TypeError(f"Not a campaign field: {', '.join(sorted(unknown))}")
    pk = campaign.pk if isinstance(campaign, Campaign) else campaign
    with transaction.atomic():
        locked = _locked(pk, EDITABLE, "only a draft or scheduled campaign can be edited")
        for name, value in fields.items():
            setattr(locked, name, value)
        _normalized(locked)
        _validated(locked, variants)
        locked.template = variants[0].template
        if locked.status == CampaignStatus.SCHEDULED and locked.scheduled_at is None:
            locked.status = CampaignStatus.DRAFT
        locked.save()
        _variants_save(locked, variants)
    logger.info("campaign updated", extra={"campaign": pk})
    return locked


def _locked(pk: int, statuses: Sequence[str], needs: str) -> Campaign:
    """The campaign row locked (inside the caller's transaction), if its status is one of
    `statuses`; else CampaignStatusError ("Campaign 'X' is done; <needs>.")."""
    locked = campaign_qs_for_update().get(pk=pk)
    if locked.status not in statuses:
        raise CampaignStatusError(
            f"Campaign {locked.name!r} is {locked.status}; {needs}.",
            extra={"status": locked.status},
        )
    return locked


def campaign_schedule(*, campaign: Campaign | int, now: datetime | None = None) -> Campaign:
    """draft -> scheduled at its `scheduled_at` (the beat task `campaigns_launch_due`
    launches it then). The time must still be ahead."""
    now = now or timezone.now()
    pk = campaign.pk if isinstance(campaign, Campaign) else campaign
    with transaction.atomic():
        locked = _locked(pk, [CampaignStatus.DRAFT], "only a draft can be scheduled")
        fields = {name: getattr(locked, name) for name in CAMPAIGN_FIELDS}
        if locked.schedule_type not in TIMED_SCHEDULES:
            raise ValidationError(
                {"schedule_type": ["Choose a time to send at (edit the schedule) first."]}
            )
        if problems := _schedule_problems(fields, now):
            raise ValidationError({name: [message] for name, message in problems.items()})
        locked.status = CampaignStatus.SCHEDULED
        locked.save(update_fields=["status", "updated_at"])
    logger.info("campaign scheduled", extra={"campaign": pk, "at": str(locked.scheduled_at)})
    return locked


def _transition(campaign: Campaign | int, sources: Sequence[str], target: str) -> Campaign:
    pk = campaign.pk if isinstance(campaign, Campaign) else campaign
    with transaction.atomic():
        locked = _locked(pk, sources, f"this needs {' or '.join(sources)}")
        locked.status = target
        update = ["status", "updated_at"]
        if target == CampaignStatus.CANCELLED:
            locked.finished_at = timezone.now()
            update.append("finished_at")
        locked.save(update_fields=update)
    logger.info("campaign status", extra={"campaign": pk, "status": target})
    return locked


def campaign_unschedule(*, campaign: Campaign | int) -> Campaign:
    """scheduled -> draft: it will not launch until scheduled again."""
    return _transition(campaign, [CampaignStatus.SCHEDULED], CampaignStatus.DRAFT)


def campaign_cancel(*, campaign: Campaign | int) -> Campaign:
    """Stop for good. A sending campaign stops at its next page (a batch sends only for a
    sending or done campaign); its `queued` messages (retries, or rows of a batch still to
    send them) become `skipped` (cancelled), so their retries find nothing to send, and
    `message_send` skips one queued meanwhile. Messages already sent, and `sending` ones
    whose fate the provider decides, stay and stay in the report."""
    cancelled = _transition(campaign, CANCELLABLE, CampaignStatus.CANCELLED)
    skipped = Message.objects.filter(campaign=cancelled, status=MessageStatus.QUEUED).update(
        status=MessageStatus.SKIPPED, skip_reason=SkipReason.CANCELLED
    )
    logger.info("campaign cancelled", extra={"campaign": cancelled.pk, "skipped": skipped})
    return cancelled


def campaign_duplicate(*, campaign: Campaign | int, created_by: Any = None) -> Campaign:
    """A new draft with the same settings and variants ("Copy of ..."), unscheduled."""
    source = campaign if isinstance(campaign, Campaign) else Campaign.objects.get(pk=campaign)
    fields = {name: getattr(source, name) for name in CAMPAIGN_FIELDS}
    fields.update(name=f"Copy of {source.name}"[:200], schedule_type=ScheduleType.NOW)
    copy = Campaign(
        **fields, template=source.template, status=CampaignStatus.DRAFT, created_by=created_by
    )
    _normalized(copy)
    with transaction.atomic():
        copy.save()
        CampaignVariant.objects.bulk_create(
            CampaignVariant(campaign=copy, name=v.name, template_id=v.template_id, weight=v.weight)
            for v in source.variants.order_by("pk")
        )
    logger.info("campaign duplicated", extra={"campaign": copy.pk, "source": source.pk})
    return copy
