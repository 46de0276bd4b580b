"""A deterministic simulated store: hidden tastes (the truth) and the events drawn from them.

`store` and `events` are pure numpy; `load` and `demo_objects` are the Django side.
"""

from marketing.simulation.events import (
    EVENT_CHANNELS,
    EVENT_TYPES,
    EventChunk,
    estimate_events,
    generate_events,
)
from marketing.simulation.store import StoreConfig, StoreTruth, generate_truth, save_truth

__all__ = [
    "EVENT_CHANNELS",
    "EVENT_TYPES",
    "EventChunk",
    "StoreConfig",
    "StoreTruth",
    "estimate_events",
    "generate_events",
    "generate_truth",
    "save_truth",
]
