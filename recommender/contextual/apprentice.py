"""Apprentice mode: serve the existing default until the learned policy is measurably better.

A new ranker knows nothing; switching it on at once would cost clicks while it learns. In
apprentice mode the top slot is the baseline's candidate (the default: the first candidate
in the order the caller gives, or `baseline=` another index) with probability
1 - eps + eps / K, and a uniform candidate otherwise, so the log keeps usable propensities.
The learner trains on every reward meanwhile.

On every reward the wrapper scores both policies on that event with the doubly robust term
(reward model = the learner's own prediction, taken before it learns from the event):
  dr(pi) = rhat(pi(x)) + 1[a = pi(x)] / p (r - rhat(a))
for pi = the learner's greedy choice and for the baseline's choice, and keeps the running
sum and sum of squares of the paired difference. It graduates when, after `min_events`
events, the mean difference minus z standard errors is above 0, i.e. the learner beats the
baseline with ~97.5% one-sided confidence (z = 1.96); from then on it ranks with the learner
(and its own exploration). Graduation is one-way: a model that gets worse is a matter for
monitoring and offline evaluation, not for silent flapping.
"""

import io
import json
import math

import numpy as np

from recommender.contextual.evaluation import Estimate
from recommender.contextual.features import FeatureBatch
from recommender.contextual.policies import Policy, Ranking, baseline_ranking, policy_from_bytes


class ApprenticePolicy:
    def __init__(
        self,
        learner: Policy,
        *,
        epsilon: float | None = None,
        min_events: int = 1000,
        z: float = 1.96,
        seed: int | None = None,
    ) -> None:
        self.learner = learner
        self.epsilon = learner.config.epsilon if epsilon is None else epsilon
        if not 0.0 <= self.epsilon <= 1.0:
            raise ValueError("epsilon must be between 0 and 1")
        self.min_events = min_events
        self.z = z
        self.graduated = False
        self.events = 0
        self.diff_sum = 0.0
        self.diff_squares = 0.0
        self.rng = np.random.default_rng(seed)

    def rank(
        self,
        batch: FeatureBatch,
        *,
        baseline: int = 0,
        epsilon: float | None = None,
        rng: np.random.Generator | None = None,
    ) -> Ranking:
        """The learner's ranking once graduated; before, the baseline's candidate first
        (with eps exploration) and the rest in the given order. `epsilon` overrides the
        exploration share for this call."""
        if self.graduated:
            return self.learner.rank(batch, epsilon=epsilon, rng=rng)
        return baseline_ranking(
            batch.n_actions,
            epsilon=self.epsilon if epsilon is None else epsilon,
            baseline=baseline,
            rng=rng or self.rng,
        )

    def update(
        self,
        batch: FeatureBatch,
        action: int,
        reward: float,
        *,
        probability: float,
        baseline: int = 0,
    ) -> None:
        """Learn from one reward; before graduation also score learner vs baseline on it."""
        if not self.graduated:
            predicted = self.learner.predict(batch)
            learner_choice = int(np.argmax(predicted))
            residual = (reward - predicted[action]) / probability
            learner_dr = predicted[learner_choice] + residual * (action == learner_choice)
            baseline_dr = predicted[baseline] + residual * (action == baseline)
            difference = float(learner_dr - baseline_dr)
            self.events += 1
            self.diff_sum += difference
            self.diff_squares += difference * difference
            if self.events >= self.min_events:
                estimate = self.advantage()
                if estimate.value - self.z * estimate.stderr > 0:
                    self.graduated = True
        self.learner.update(batch, action, reward)

    def advantage(self) -> Estimate:
        """Estimated reward of the learner's greedy policy minus the baseline's, per event."""
        n = self.events
        if n == 0:
            return Estimate(value=0.0, stderr=float("nan"), n=0)
        mean = self.diff_sum / n
        if n < 2:
            return Estimate(value=mean, stderr=float("nan"), n=n)
        variance = max(self.diff_squares - n * mean * mean, 0.0) / (n - 1)
        return Estimate(value=mean, stderr=math.sqrt(variance / n), n=n)

    def to_bytes(self, *, compress: bool = True) -> bytes:
        state = {
            "epsilon": self.epsilon,
            "min_events": self.min_events,
            "z": self.z,
            "graduated": self.graduated,
            "events": self.events,
            "diff_sum": self.diff_sum,
            "diff_squares": self.diff_squares,
        }
        buffer = io.BytesIO()
        np.savez(
            buffer,
            state=np.array(json.dumps(state)),
            learner=np.frombuffer(self.learner.to_bytes(compress=compress), dtype=np.uint8),
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, *, seed: int | None = None) -> "ApprenticePolicy":
        with np.load(io.BytesIO(data), allow_pickle=False) as stored:
            state = json.loads(str(stored["state"]))
            learner = policy_from_bytes(stored["learner"].tobytes(), seed=seed)
        wrapper = cls(
            learner,
            epsilon=state["epsilon"],
            min_events=state["min_events"],
            z=state["z"],
            seed=seed,
        )
        wrapper.graduated = bool(state["graduated"])
        wrapper.events = int(state["events"])
        wrapper.diff_sum = float(state["diff_sum"])
        wrapper.diff_squares = float(state["diff_squares"])
        return wrapper
