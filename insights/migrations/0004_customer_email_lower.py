"""Indexes the ingest path reads: customers by their email, case-insensitively.

Posts carry their author's email lower-cased, while `Customer.email` keeps the capitals it
was imported with, so posts are linked on `lower(email)`; the plain index on `email` does not
serve that, and without this one every batch of posts scanned every customer. Like
insights/0003_ingest, the index is on the profiles table but belongs to this feature.
"""

from django.db import migrations

INDEX = "insights_customer_email_lower"


class Migration(migrations.Migration):
    dependencies = [
        ("insights", "0003_ingest"),
    ]

    operations = [
        migrations.RunSQL(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON profiles_customer (lower(email))",
            f"DROP INDEX IF EXISTS {INDEX}",
        ),
    ]
