from datetime import timedelta

from django import forms
from django.http import QueryDict
from django.utils import timezone

from experiments.attribution import AttributionSettings
from experiments.attribution_reports import AttributionQuery
from profiles.models import EventType

PERIODS = [("7", "Last 7 days"), ("30", "Last 30 days"), ("90", "Last 90 days")]
# The period ends on a 5-minute boundary so the page, its reloads and the CSV export of the
# next minutes ask for the same report (and find it in the cache).
PERIOD_ROUND_SECONDS = 300


class AttributionForm(forms.Form):
    period = forms.ChoiceField(choices=PERIODS, required=False, initial="30")
    goal = forms.ChoiceField(
        choices=EventType.choices, required=False, initial="purchase", label="Conversion event"
    )
    lookback_days = forms.IntegerField(
        min_value=1, max_value=90, required=False, initial=30, label="Lookback (days)"
    )
    half_life_days = forms.FloatField(
        min_value=0.1, max_value=90, required=False, initial=7, label="Time-decay half-life (days)"
    )

    @classmethod
    def from_params(cls, params: QueryDict) -> "AttributionForm":
        """Bound to the request's parameters, the defaults filling in those it lacks (so the
        first visit shows, and the form submits, the values the report used)."""
        data = {name: field.initial for name, field in cls.base_fields.items()}
        data.update({k: v for k, v in params.items() if v != ""})
        return cls(data)

    def query(self) -> AttributionQuery:
        data = self.cleaned_data
        now = timezone.now()
        until = now - timedelta(seconds=now.timestamp() % PERIOD_ROUND_SECONDS)
        until = until.replace(microsecond=0)
        return AttributionQuery(
            since=until - timedelta(days=int(data.get("period") or 30)),
            until=until,
            goal_types=(data.get("goal") or "purchase",),
            lookback_days=float(data.get("lookback_days") or 30),
            settings=AttributionSettings(half_life_days=data.get("half_life_days") or 7.0),
        )
