"""Experiments through the API: keys, salts, audience and traffic, metrics, bandit allocation,
exposures and the allocation history. Existing rows get keys from their names."""

import secrets

import django.db.models.deletion
from django.db import migrations, models
from django.utils.text import slugify

import experiments.models


def _unique_slug(text: str, taken: set[str], fallback: str) -> str:
    base = (slugify(text) or fallback)[:56]
    slug, n = base, 1
    while slug in taken:
        n += 1
        slug = f"{base}-{n}"
    taken.add(slug)
    return slug


def fill_keys(apps, schema_editor):
    Experiment = apps.get_model("experiments", "Experiment")
    Variant = apps.get_model("experiments", "Variant")
    taken: set[str] = set()
    for experiment in Experiment.objects.order_by("pk"):
        experiment.key = _unique_slug(experiment.name, taken, f"experiment-{experiment.pk}")
        experiment.salt = secrets.token_hex(8)
        experiment.save(update_fields=["key", "salt"])
        variant_keys: set[str] = set()
        for variant in Variant.objects.filter(experiment=experiment).order_by("pk"):
            variant.key = _unique_slug(variant.name, variant_keys, f"variant-{variant.pk}")
            variant.save(update_fields=["key"])
        first_control = (
            Variant.objects.filter(experiment=experiment, is_control=True).order_by("pk").first()
        )
        if first_control is not None:  # at most one control from now on
            Variant.objects.filter(experiment=experiment, is_control=True).exclude(
                pk=first_control.pk
            ).update(is_control=False)


class Migration(migrations.Migration):
    dependencies = [
        ("experiments", "0001_initial"),
        ("profiles", "0009_event_type_time_index"),
    ]

    operations = [
        migrations.RenameField("experiment", "primary_metric", "metric_event_type"),
        migrations.AddField(
            model_name="experiment",
            name="key",
            field=models.SlugField(db_index=False, max_length=64, null=True),
        ),
        migrations.AddField(
            model_name="experiment",
            name="salt",
            field=models.CharField(
                default=experiments.models.new_salt, editable=False, max_length=32
            ),
        ),
        migrations.AddField(
            model_name="variant",
            name="key",
            field=models.SlugField(db_index=False, max_length=64, null=True),
        ),
        migrations.RunPython(fill_keys, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="experiment",
            name="key",
            field=models.SlugField(help_text="The id the API uses.", max_length=64, unique=True),
        ),
        migrations.AlterField(
            model_name="variant",
            name="key",
            field=models.SlugField(max_length=64),
        ),
        migrations.AddField(
            model_name="experiment",
            name="audience_segment",
            field=models.ForeignKey(
                blank=True,
                help_text="Only its members take part; empty means every customer.",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="experiments",
                to="profiles.segment",
            ),
        ),
        migrations.AddField(
            model_name="experiment",
            name="traffic_percent",
            field=models.FloatField(
                default=100.0, help_text="Share of the audience in the experiment, 0.01 to 100."
            ),
        ),
        migrations.AddField(
            model_name="experiment",
            name="holdout_percent",
            field=models.FloatField(
                default=0.0,
                help_text="Share of the participants held out: no variant, measured as a baseline.",
            ),
        ),
        migrations.AddField(
            model_name="experiment",
            name="metric_window_days",
            field=models.PositiveSmallIntegerField(default=7),
        ),
        migrations.AddField(
            model_name="experiment",
            name="metric_kind",
            field=models.CharField(
                choices=[
                    ("conversion", "Conversion (did the event happen within the window)"),
                    ("revenue", "Revenue per user (sum of the event values within the window)"),
                    ("click_through", "Click-through (clicks per exposed user)"),
                ],
                default="conversion",
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="experiment",
            name="guardrails",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text='Metrics that must not get worse: [{"event_type", "window_days", '
                '"kind"}].',
            ),
        ),
        migrations.AddField(
            model_name="experiment",
            name="allocation",
            field=models.CharField(
                choices=[
                    ("fixed", "Fixed weights (A/B/n)"),
                    ("epsilon_greedy", "Epsilon-greedy bandit"),
                    ("ucb1", "UCB1 bandit"),
                    ("thompson", "Thompson sampling bandit"),
                ],
                default="fixed",
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="experiment",
            name="bandit_burn_in",
            field=models.PositiveIntegerField(
                default=100, help_text="Users every arm needs before a bandit reweights."
            ),
        ),
        migrations.AddField(
            model_name="experiment",
            name="bandit_min_share",
            field=models.FloatField(
                default=0.01, help_text="The smallest share of traffic a bandit leaves an arm."
            ),
        ),
        migrations.AddField(
            model_name="experiment",
            name="bandit_epsilon",
            field=models.FloatField(default=0.1, help_text="Exploration of epsilon-greedy."),
        ),
        migrations.AddField(
            model_name="variant",
            name="allocation_weight",
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddConstraint(
            model_name="experiment",
            constraint=models.CheckConstraint(
                condition=models.Q(("metric_kind__in", ["conversion", "revenue", "click_through"])),
                name="experiment_metric_kind_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="experiment",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("allocation__in", ["fixed", "epsilon_greedy", "ucb1", "thompson"])
                ),
                name="experiment_allocation_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="experiment",
            constraint=models.CheckConstraint(
                condition=models.Q(("traffic_percent__gt", 0), ("traffic_percent__lte", 100)),
                name="experiment_traffic_percent_range",
            ),
        ),
        migrations.AddConstraint(
            model_name="experiment",
            constraint=models.CheckConstraint(
                condition=models.Q(("holdout_percent__gte", 0), ("holdout_percent__lt", 100)),
                name="experiment_holdout_percent_range",
            ),
        ),
        migrations.AddConstraint(
            model_name="experiment",
            constraint=models.CheckConstraint(
                condition=models.Q(("bandit_min_share__gte", 0), ("bandit_min_share__lt", 1)),
                name="experiment_min_share_range",
            ),
        ),
        migrations.AddConstraint(
            model_name="experiment",
            constraint=models.CheckConstraint(
                condition=models.Q(("bandit_epsilon__gte", 0), ("bandit_epsilon__lte", 1)),
                name="experiment_epsilon_range",
            ),
        ),
        migrations.AddConstraint(
            model_name="variant",
            constraint=models.UniqueConstraint(
                fields=("experiment", "key"), name="variant_unique_key"
            ),
        ),
        migrations.AddConstraint(
            model_name="variant",
            constraint=models.UniqueConstraint(
                condition=models.Q(("is_control", True)),
                fields=("experiment",),
                name="variant_one_control",
            ),
        ),
        migrations.CreateModel(
            name="AllocationChange",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("changed_at", models.DateTimeField()),
                (
                    "weights",
                    models.JSONField(help_text="Variant key to share of traffic; shares sum to 1."),
                ),
                ("reason", models.CharField(help_text="start, bandit or manual.", max_length=32)),
                (
                    "details",
                    models.JSONField(
                        blank=True, default=dict, help_text="e.g. the arm counts used."
                    ),
                ),
                (
                    "experiment",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="allocation_changes",
                        to="experiments.experiment",
                    ),
                ),
            ],
            options={
                "ordering": ["experiment", "changed_at", "pk"],
                "indexes": [
                    models.Index(fields=["experiment", "changed_at"], name="allocation_change_time")
                ],
            },
        ),
        migrations.CreateModel(
            name="Exposure",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("exposed_at", models.DateTimeField()),
                ("propensity", models.FloatField()),
                (
                    "customer",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="exposures",
                        to="profiles.customer",
                    ),
                ),
                (
                    "experiment",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="exposures",
                        to="experiments.experiment",
                    ),
                ),
                (
                    "variant",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="exposures",
                        to="experiments.variant",
                    ),
                ),
            ],
            options={
                "indexes": [
                    models.Index(fields=["experiment", "exposed_at"], name="exposure_time"),
                    models.Index(fields=["customer"], name="exposure_customer"),
                ],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("experiment", "customer"), name="exposure_unique_customer"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("propensity__gt", 0), ("propensity__lte", 1)),
                        name="exposure_propensity_range",
                    ),
                ],
            },
        ),
    ]
