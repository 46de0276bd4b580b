from django import forms

from profiles.segments.clustering import DEFAULT_K_MAX, DEFAULT_K_MIN, FEATURE_GROUPS, MAX_K


class ClusterRunForm(forms.Form):
    """A range of k to choose from by silhouette, or one fixed k."""

    k_min = forms.IntegerField(
        label="Smallest k", min_value=2, max_value=MAX_K, initial=DEFAULT_K_MIN
    )
    k_max = forms.IntegerField(
        label="Largest k", min_value=2, max_value=MAX_K, initial=DEFAULT_K_MAX
    )
    k = forms.IntegerField(
        label="Fixed k",
        min_value=2,
        max_value=MAX_K,
        required=False,
        help_text="Leave empty to choose k by silhouette within the range.",
    )
    groups = forms.MultipleChoiceField(
        label="Cluster on",
        choices=list(FEATURE_GROUPS.items()),
        initial=list(FEATURE_GROUPS),
        widget=forms.CheckboxSelectMultiple,
    )

    def clean(self):
        data = super().clean()
        k_min, k_max = data.get("k_min"), data.get("k_max")
        if data.get("k") is None and k_min is not None and k_max is not None and k_min > k_max:
            self.add_error("k_max", "Must be at least the smallest k.")
        return data


class ClusterSaveForm(forms.Form):
    cluster = forms.IntegerField(min_value=0, widget=forms.HiddenInput)
    name = forms.CharField(label="Segment name", max_length=200)
