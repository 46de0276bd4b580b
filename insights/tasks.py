import logging
from smtplib import SMTPException

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(
    name="insights.brand_alerts_check",
    soft_time_limit=120,
    time_limit=180,
    # Beat sends one every 15 minutes; a check that waited that long is superseded.
    expires=840,
)
def brand_alerts_check_task() -> list[int]:
    """Negative mention spikes into alerts (idempotent: one alert per brand and window)."""
    from insights.services_health import brand_alerts_check

    alerts = brand_alerts_check()
    if alerts:
        logger.info("brand alerts raised", extra={"alerts": [a.pk for a in alerts]})
    return [a.pk for a in alerts]


@shared_task(
    name="insights.brand_alert_email",
    # A refused or dropped SMTP connection is worth another try (SMTPException is an
    # OSError); the service releases its claim on the alert when the send fails.
    autoretry_for=(SMTPException, OSError),
)
def brand_alert_email_task(*, alert_id: int) -> bool:
    """Email an alert's recipients once (the alert row is claimed before sending and
    released if the send fails, so a retry sends it and a redelivery does not)."""
    from insights.services_health import brand_alert_email

    return brand_alert_email(alert_id=alert_id)


def _rescan_failed(self, exc, task_id, args, kwargs, einfo) -> None:
    from marketing.services import job_mark_failed

    job_mark_failed(job_id=kwargs["job_id"], error=repr(exc))


@shared_task(
    name="insights.brand_rescan",
    soft_time_limit=1800,
    time_limit=1900,
    on_failure=_rescan_failed,
)
def brand_rescan_task(*, job_id: int, brand_id: int) -> None:
    """The stored posts scanned again for a brand whose words changed (progress in the Job)."""
    from insights.services_health import brand_rescan_run

    brand_rescan_run(job_id=job_id, brand_id=brand_id)
