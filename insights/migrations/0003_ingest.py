"""Indexes the ingest path reads: customers by their social handles.

Handles live in `Customer.attributes["social_handles"]` (see insights/services.py). Posts
are linked by a case-insensitive lookup of their author's handle; without this index
every batch of 1,000 posts scanned every customer (200 ms at 20,000 customers). The index
is on the profiles table but belongs to this feature, so it is created here. It indexes
the handles lower-cased and without "@" (removing "@" from JSON text leaves valid JSON), and
without GIN's pending list (fastupdate), which a bulk import of customers would fill and
every lookup would then scan (2 ms per handle at 20,000 customers).
"""

from django.db import migrations

INDEX = "insights_customer_social_handles_gin"


class Migration(migrations.Migration):
    dependencies = [
        ("insights", "0002_social_listening"),
        ("profiles", "0009_event_type_time_index"),
    ]

    operations = [
        migrations.RunSQL(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON profiles_customer "
            "USING gin ((lower(replace((attributes -> 'social_handles')::text, '@', ''))::jsonb)) "
            "WITH (fastupdate = off) WHERE attributes ? 'social_handles'",
            f"DROP INDEX IF EXISTS {INDEX}",
        ),
    ]
