"""Multi-touch attribution, Django-free: paths in, credit per channel (and campaign) out.

`paths` builds the columnar `Paths` (from touchpoint rows with a lookback window, or from
aggregated sequences); `heuristic` holds the path-level models, `markov` the removal-effect
model and `shapley` the data-driven one; `models.attribute` / `attribute_all` run them and
check that credit sums to the conversion value; `readers` parses CSV files. The CSV command
(`manage.py attribute`), the benchmark and the database-backed reports all call these.
"""

from experiments.attribution.markov import MarkovChain, markov_chain
from experiments.attribution.models import (
    DATA_DRIVEN,
    MODELS,
    Attribution,
    AttributionError,
    AttributionSettings,
    attribute,
    attribute_all,
    channel_weighted_touch_weights,
    format_table,
)
from experiments.attribution.paths import (
    DEFAULT_LOOKBACK_DAYS,
    Paths,
    paths_from_sequences,
    paths_from_touchpoints,
)
from experiments.attribution.readers import JourneyFileError, read_paths_file
from experiments.attribution.shapley import shapley_values, shapley_weights

__all__ = [
    "DATA_DRIVEN",
    "DEFAULT_LOOKBACK_DAYS",
    "MODELS",
    "Attribution",
    "AttributionError",
    "AttributionSettings",
    "JourneyFileError",
    "MarkovChain",
    "Paths",
    "attribute",
    "attribute_all",
    "channel_weighted_touch_weights",
    "format_table",
    "markov_chain",
    "paths_from_sequences",
    "paths_from_touchpoints",
    "read_paths_file",
    "shapley_values",
    "shapley_weights",
]
