from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    # Built CONCURRENTLY: the events table is large and written to all the time.
    atomic = False

    dependencies = [
        ("profiles", "0008_cluster_runs"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="event",
            index=models.Index(
                fields=["type", "occurred_at"],
                include=["customer", "item_external_id", "value"],
                name="event_type_time",
            ),
        ),
    ]
