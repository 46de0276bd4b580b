"""Messages in bulk for the message rollup's tests and benchmark: `n` sent messages spread
evenly over `span` up to `now` (a fifth SMS), a third opened five minutes after sending, a
tenth clicked two minutes later; one set-based INSERT."""

import datetime as dt

from django.db import connection

from profiles.models import Customer
from tests.campaigns.factories import CampaignFactory

_INSERT = """
INSERT INTO campaigns_message (channel, address, idempotency_key, status, skip_reason,
    provider_message_id, error, attempts, created_at, sent_at, opened_at, clicked_at,
    campaign_id, customer_id, payload)
SELECT CASE WHEN g %% 5 = 0 THEN 'sms' ELSE 'email' END, '', %(prefix)s || g, 'sent', '', '',
    '', 1, t, t,
    CASE WHEN g %% 3 = 0 THEN t + interval '5 minutes' END,
    CASE WHEN g %% 10 = 0 THEN t + interval '7 minutes' END,
    (%(campaigns)s::bigint[])[1 + g %% %(n_campaigns)s],
    (%(customers)s::bigint[])[1 + (g / %(n_campaigns)s) %% %(n_customers)s],
    '{}'::jsonb
FROM generate_series(1, %(n)s) AS g,
    LATERAL (SELECT %(now)s::timestamptz - %(span)s::interval * (g::float8 / %(n)s)) AS s(t)
"""


def messages_load(
    *, n: int, now: dt.datetime, span: dt.timedelta, campaigns: int = 100, prefix: str = "load-"
) -> None:
    """Needs n <= campaigns * customers (one message per recipient of a campaign)."""
    n_customers = -(-n // campaigns)
    customers = Customer.objects.bulk_create(
        Customer(external_id=f"{prefix}{i}") for i in range(n_customers)
    )
    campaign_ids = [CampaignFactory(status="done").pk for _ in range(campaigns)]
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT,
            {"prefix": prefix, "campaigns": campaign_ids, "n_campaigns": campaigns,
             "customers": [c.pk for c in customers], "n_customers": n_customers, "n": n,
             "now": now, "span": span},
        )  # fmt: skip
        cursor.execute("ANALYZE campaigns_message")
