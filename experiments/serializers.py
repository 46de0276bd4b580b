from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from experiments.models import Allocation, Experiment, MetricKind
from profiles.models import EventType, Segment


class MetricSerializer(serializers.Serializer):
    event_type = serializers.ChoiceField(choices=EventType.choices)
    window_days = serializers.IntegerField(min_value=1, max_value=365, default=7)
    kind = serializers.ChoiceField(choices=MetricKind.choices, default=MetricKind.CONVERSION)


class VariantInputSerializer(serializers.Serializer):
    key = serializers.SlugField(max_length=64)
    name = serializers.CharField(max_length=100, required=False, default="")
    weight = serializers.IntegerField(min_value=0, max_value=1_000_000, default=1)
    is_control = serializers.BooleanField(
        default=False, help_text="At most one; without one, the first variant is the control."
    )
    config = serializers.JSONField(
        required=False, default=dict, help_text="What the variant serves (free-form)."
    )

    def validate_config(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("An object is required.")
        return value


class AllocationParamsSerializer(serializers.Serializer):
    burn_in = serializers.IntegerField(
        min_value=0, max_value=1_000_000, default=100, help_text="Users per arm before reweighting."
    )
    min_share = serializers.FloatField(
        min_value=0, max_value=0.5, default=0.01, help_text="Smallest share of traffic per arm."
    )
    epsilon = serializers.FloatField(
        min_value=0, max_value=1, default=0.1, help_text="Exploration of epsilon_greedy."
    )


class ExperimentCreateInputSerializer(serializers.Serializer):
    key = serializers.SlugField(max_length=64)
    name = serializers.CharField(max_length=200, required=False, default="")
    hypothesis = serializers.CharField(required=False, allow_blank=True, default="")
    variants = VariantInputSerializer(many=True)
    metric = MetricSerializer()
    guardrails = MetricSerializer(many=True, required=False, default=list)
    allocation = serializers.ChoiceField(choices=Allocation.choices, default=Allocation.FIXED)
    allocation_params = AllocationParamsSerializer(required=False)
    traffic_percent = serializers.FloatField(min_value=0.01, max_value=100, default=100.0)
    holdout_percent = serializers.FloatField(min_value=0, max_value=99.99, default=0.0)
    audience_segment = serializers.PrimaryKeyRelatedField(
        queryset=Segment.objects.all(),
        required=False,
        allow_null=True,
        default=None,
        help_text="A segment id; only its members take part. Omit for every customer.",
    )

    def validate_key(self, value: str) -> str:
        if Experiment.objects.filter(key=value).exists():
            raise serializers.ValidationError("An experiment with this key already exists.")
        return value


class AssignInputSerializer(serializers.Serializer):
    customer_id = serializers.CharField(
        max_length=128, help_text="The storefront's customer id (known or not)."
    )


class AssignOutputSerializer(serializers.Serializer):
    experiment = serializers.CharField()
    variant = serializers.CharField(
        allow_null=True, help_text="The variant key; null when not in the experiment."
    )
    in_experiment = serializers.BooleanField()
    reason = serializers.ChoiceField(
        required=False,
        choices=["holdout", "global_control", "not_in_audience", "traffic", "not_running"],
        help_text="Why the customer is not in the experiment (only then).",
    )


class VariantOutputSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    weight = serializers.IntegerField(help_text="The configured weight.")
    allocation_weight = serializers.FloatField(
        allow_null=True, help_text="The share in force (null until started)."
    )
    is_control = serializers.BooleanField()
    config = serializers.JSONField()


class ExperimentOutputSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    hypothesis = serializers.CharField()
    status = serializers.CharField()
    kind = serializers.CharField()
    allocation = serializers.CharField()
    allocation_params = serializers.SerializerMethodField()
    traffic_percent = serializers.FloatField()
    holdout_percent = serializers.FloatField()
    audience_segment = serializers.IntegerField(source="audience_segment_id", allow_null=True)
    metric = serializers.SerializerMethodField()
    guardrails = MetricSerializer(many=True)
    variants = VariantOutputSerializer(many=True, source="variants.all")
    started_at = serializers.DateTimeField(allow_null=True)
    stopped_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()

    @extend_schema_field(AllocationParamsSerializer)
    def get_allocation_params(self, experiment: Experiment) -> dict:
        return {
            "burn_in": experiment.bandit_burn_in,
            "min_share": experiment.bandit_min_share,
            "epsilon": experiment.bandit_epsilon,
        }

    @extend_schema_field(MetricSerializer)
    def get_metric(self, experiment: Experiment) -> dict:
        return {
            "event_type": experiment.metric_event_type,
            "window_days": experiment.metric_window_days,
            "kind": experiment.metric_kind,
        }


class IntervalSerializer(serializers.Serializer):
    estimate = serializers.FloatField(allow_null=True)
    lower = serializers.FloatField(allow_null=True)
    upper = serializers.FloatField(allow_null=True)


class ResultVariantSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    is_control = serializers.BooleanField()
    weight = serializers.IntegerField()
    allocation_weight = serializers.FloatField(allow_null=True)
    users = serializers.IntegerField(help_text="Exposed customers.")
    total = serializers.FloatField(help_text="Sum of the metric over the exposed customers.")
    mean = serializers.FloatField(allow_null=True, help_text="Conversion rate or mean per user.")


class DecisionSerializer(serializers.Serializer):
    code = serializers.ChoiceField(
        choices=["sample_ratio_mismatch", "keep_running", "winner", "control_wins", "no_difference"]
    )
    message = serializers.CharField(help_text="The plain-language verdict.")
    winner = serializers.CharField(allow_null=True)
    probability = serializers.FloatField(allow_null=True)
    expected_loss = serializers.FloatField(allow_null=True)
    users_needed_per_variant = serializers.IntegerField(allow_null=True)


class ComparisonSerializer(serializers.Serializer):
    variant = serializers.CharField()
    absolute_lift = IntervalSerializer()
    relative_lift = IntervalSerializer()
    test = serializers.JSONField(
        help_text="{statistic, p_value, df}: two-proportion z-test (rates) or Welch t (means)."
    )
    p_value_adjusted = serializers.FloatField(help_text="Holm-adjusted over the variants.")
    sequential = serializers.JSONField(
        help_text="mSPRT: {difference, log_likelihood_ratio, p_value (always valid), interval}."
    )
    sequential_p_adjusted = serializers.FloatField()
    prob_beat_control = serializers.FloatField()
    expected_loss = serializers.FloatField()
    expected_loss_control = serializers.FloatField()


class AnalysisSerializer(serializers.Serializer):
    metric = serializers.ChoiceField(choices=["conversion", "mean"])
    control = serializers.CharField()
    alpha = serializers.FloatField()
    interval_alpha = serializers.FloatField(help_text="Bonferroni level of the intervals.")
    correction = serializers.ChoiceField(choices=["holm", "none"])
    variants = serializers.JSONField(help_text="[{variant, n, value: interval}]")
    comparisons = ComparisonSerializer(many=True)
    srm = serializers.JSONField(
        allow_null=True,
        help_text="{observed, expected, statistic, p_value, mismatch}; null for bandits.",
    )
    required_users_per_variant = serializers.IntegerField(allow_null=True)
    decision = DecisionSerializer()


class CupedSerializer(serializers.Serializer):
    theta = serializers.FloatField()
    variance_reduction = serializers.FloatField(help_text="1 - adjusted / raw variance.")
    analysis = AnalysisSerializer()


class GuardrailResultSerializer(serializers.Serializer):
    metric = MetricSerializer()
    analysis = AnalysisSerializer(allow_null=True)
    breached = serializers.ListField(
        child=serializers.CharField(), help_text="Variants significantly worse than control."
    )


class ExperimentResultsOutputSerializer(serializers.Serializer):
    experiment = serializers.JSONField(help_text="{key, name, status, allocation, metric, control}")
    computed_at = serializers.DateTimeField()
    variants = ResultVariantSerializer(many=True)
    holdout = serializers.JSONField(allow_null=True, help_text="{users, mean} of held-out users.")
    analysis = AnalysisSerializer(
        allow_null=True, help_text="The primary metric; null until every variant has users."
    )
    decision = DecisionSerializer()
    cuped = CupedSerializer(
        allow_null=True, help_text="The primary metric adjusted by its pre-exposure value."
    )
    ipw = serializers.JSONField(
        allow_null=True,
        help_text="Bandits: per variant {rate, standard_error, rate_hajek}, inverse propensity "
        "weighted with the logged propensities.",
    )
    guardrails = GuardrailResultSerializer(many=True)
    timeline = serializers.JSONField(
        help_text="{days, variants: {key: {users, value, lower, upper}}, lift: {key: "
        "{estimate, lower, upper}}}: cumulative by exposure day."
    )
    sequential_history = serializers.JSONField(
        help_text="{variant: [{day, p_value, users}]}: the stored daily always-valid p-values."
    )
