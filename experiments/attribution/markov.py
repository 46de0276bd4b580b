"""First-order Markov chain attribution by removal effect, solved exactly.

States are `start`, one per channel, and the absorbing `conversion` and `null`. Every path
contributes its transitions start -> c1 -> ... -> ck -> conversion (weighted by its
conversions) or -> null (weighted by its non-converting journeys); the transition matrix is
the row-normalised count matrix. Repeated touches of a channel are kept as self-loops: they
change how long a journey stays in a state, not where it is absorbed, so they do not change
any probability below.

The conversion probability from `start` is an absorption probability: with Q the
transitions among transient states (start and channels) and r the transitions into
`conversion`, h = (I - Q)^-1 r and P(conversion) = h[start]. Removing channel c sends every
transition into c to `null`, which is the same system with c's row and column deleted.
removal_effect(c) = 1 - P(conversion without c) / P(conversion). Both are linear solves of
size (channels + 1), exact up to floating point; no random walks are simulated.
"""

from dataclasses import dataclass

import numpy as np

from experiments.attribution.paths import Paths


@dataclass(frozen=True, eq=False)
class MarkovChain:
    """Transition probabilities over [start, *channels, conversion, null] (rows: transient
    states start and channels), the conversion probability and each channel's removal effect."""

    transitions: np.ndarray
    conversion_probability: float
    removal_effects: np.ndarray

    @property
    def weights(self) -> np.ndarray:
        """Removal effects normalised to sum to 1 (all zero when nothing converts)."""
        total = self.removal_effects.sum()
        return self.removal_effects / total if total > 0 else np.zeros_like(self.removal_effects)


def transition_counts(paths: Paths) -> np.ndarray:
    """(K + 1) x (K + 3) journey counts: rows start, channels; columns start, channels,
    conversion, null."""
    k = len(paths.channels)
    conversion, null, width = k + 1, k + 2, k + 3
    journeys = paths.conversions + paths.nulls
    state = paths.touch_channel.astype(np.int64) + 1
    inner = np.ones(paths.n_touches, dtype=bool)
    inner[paths.ends] = False
    frm = np.concatenate(
        [np.zeros(paths.n_paths, np.int64), state[inner], state[paths.ends], state[paths.ends]]
    )
    to = np.concatenate(
        [
            state[paths.starts],
            state[1:][inner[:-1]] if paths.n_touches else state[:0],
            np.full(paths.n_paths, conversion),
            np.full(paths.n_paths, null),
        ]
    )
    weight = np.concatenate(
        [journeys, journeys[paths.touch_path[inner]], paths.conversions, paths.nulls]
    )
    counts = np.bincount(frm * width + to, weight, minlength=(k + 1) * width)
    return counts.reshape(k + 1, width)


def _conversion_probability(q: np.ndarray, r: np.ndarray, keep: np.ndarray) -> float:
    system = np.eye(int(keep.sum())) - q[np.ix_(keep, keep)]
    return float(np.linalg.solve(system, r[keep])[0])


def markov_chain(paths: Paths) -> MarkovChain:
    counts = transition_counts(paths)
    k = len(paths.channels)
    out = counts.sum(axis=1, keepdims=True)
    # A state no journey leaves (a channel seen only on zero-weight paths) is a dead end.
    counts[(out[:, 0] == 0), k + 2] = 1.0
    transitions = counts / counts.sum(axis=1, keepdims=True)
    q, r = transitions[:, : k + 1], transitions[:, k + 1]
    everything = np.ones(k + 1, dtype=bool)
    total = _conversion_probability(q, r, everything) if r.any() else 0.0
    effects = np.zeros(k)
    if total > 0:
        for channel in range(k):
            without = everything.copy()
            without[channel + 1] = False
            effects[channel] = 1.0 - _conversion_probability(q, r, without) / total
    return MarkovChain(
        transitions=transitions,
        conversion_probability=total,
        removal_effects=np.clip(effects, 0.0, None),
    )
