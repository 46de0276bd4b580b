import json

from django import forms

from experiments.models import Allocation, Experiment, ExperimentKind, ExperimentStatus, MetricKind
from marketing.common.listing import choice_filter, search_field
from profiles.models import EventType, Segment


class ExperimentFilterForm(forms.Form):
    q = search_field(placeholder="Search name or hypothesis", label="Search experiments")
    kind = choice_filter(choices=ExperimentKind.choices, empty="All kinds", label="Kind")
    status = choice_filter(choices=ExperimentStatus.choices, empty="Any status", label="Status")


class ExperimentForm(forms.Form):
    """The create and edit page. Rules across fields and variants are the service's
    (experiments.services.variants_problems and the model constraints)."""

    key = forms.SlugField(max_length=64, help_text="The id the API and campaigns use.")
    name = forms.CharField(max_length=200, required=False, help_text="Defaults to the key.")
    hypothesis = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    audience_segment = forms.ModelChoiceField(
        queryset=Segment.objects.order_by("name"),
        required=False,
        empty_label="Every customer",
        label="Audience",
    )
    traffic_percent = forms.FloatField(
        min_value=0.01,
        max_value=100,
        initial=100,
        label="Traffic %",
        help_text="Share of the audience in the experiment.",
    )
    holdout_percent = forms.FloatField(
        min_value=0,
        max_value=99.99,
        initial=0,
        label="Holdout %",
        help_text="Share of the participants who get no variant (the baseline).",
    )
    metric_event_type = forms.ChoiceField(
        choices=EventType.choices, initial="purchase", label="Metric event"
    )
    metric_window_days = forms.IntegerField(
        min_value=1, max_value=365, initial=7, label="Window (days after exposure)"
    )
    metric_kind = forms.ChoiceField(
        choices=MetricKind.choices, initial="conversion", label="Metric"
    )
    guardrail_events = forms.MultipleChoiceField(
        choices=EventType.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Guardrails",
        help_text="Events that must not get worse (as conversions within the window below).",
    )
    guardrail_window_days = forms.IntegerField(
        min_value=1, max_value=365, initial=7, label="Guardrail window (days)"
    )
    allocation = forms.ChoiceField(choices=Allocation.choices, initial="fixed")
    bandit_burn_in = forms.IntegerField(
        min_value=0, max_value=1_000_000, initial=100, label="Burn-in (users per arm)"
    )
    bandit_min_share = forms.FloatField(
        min_value=0, max_value=0.5, initial=0.01, label="Minimum share per arm"
    )
    bandit_epsilon = forms.FloatField(
        min_value=0, max_value=1, initial=0.1, label="Epsilon (epsilon-greedy)"
    )

    def __init__(self, *args, experiment: Experiment | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.experiment = experiment
        if experiment is not None:
            self.fields["key"].disabled = True

    def clean_key(self) -> str:
        key = self.cleaned_data["key"]
        taken = Experiment.objects.filter(key=key)
        if self.experiment is not None:
            taken = taken.exclude(pk=self.experiment.pk)
        if taken.exists():
            raise forms.ValidationError("An experiment with this key already exists.")
        return key

    @classmethod
    def initial_for(cls, experiment: Experiment) -> dict:
        guardrails = experiment.guardrails or []
        return {
            "key": experiment.key,
            "name": experiment.name,
            "hypothesis": experiment.hypothesis,
            "audience_segment": experiment.audience_segment_id,
            "traffic_percent": experiment.traffic_percent,
            "holdout_percent": experiment.holdout_percent,
            "metric_event_type": experiment.metric_event_type,
            "metric_window_days": experiment.metric_window_days,
            "metric_kind": experiment.metric_kind,
            "guardrail_events": [g["event_type"] for g in guardrails],
            "guardrail_window_days": guardrails[0]["window_days"] if guardrails else 7,
            "allocation": experiment.allocation,
            "bandit_burn_in": experiment.bandit_burn_in,
            "bandit_min_share": experiment.bandit_min_share,
            "bandit_epsilon": experiment.bandit_epsilon,
        }


class VariantForm(forms.Form):
    key = forms.SlugField(max_length=64)
    name = forms.CharField(max_length=100, required=False)
    weight = forms.IntegerField(min_value=0, max_value=1_000_000, initial=1)
    is_control = forms.BooleanField(required=False, label="Control")
    config = forms.CharField(
        required=False,
        max_length=2000,
        help_text='What the variant serves, as JSON, e.g. {"strategy": "als"}.',
        widget=forms.TextInput(attrs={"placeholder": "{}"}),
    )

    def clean_config(self) -> dict:
        text = (self.cleaned_data.get("config") or "").strip()
        if not text:
            return {}
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError("Not valid JSON.") from exc
        if not isinstance(value, dict):
            raise forms.ValidationError('A JSON object is required, e.g. {"strategy": "als"}.')
        return value


VariantFormSet = forms.formset_factory(VariantForm, extra=0, min_num=2, validate_min=True)


class CampaignExperimentForm(forms.Form):
    """ "Run as experiment" on a campaign's page."""

    allocation = forms.ChoiceField(choices=Allocation.choices, initial="fixed")
    holdout_percent = forms.FloatField(
        min_value=0,
        max_value=99.99,
        initial=0,
        label="Holdout %",
        help_text="Recipients held out of the campaign (no message), the baseline.",
    )
