"""Offline (counterfactual) evaluation of ranking policies from the decision log.

Each logged decision keeps the raw inputs (context, customer features, candidates), the
chosen (top) candidate, the probability it was chosen with and the reward. Keeping the raw
dicts rather than hashed features is what lets a candidate setting with other features or
interactions be replayed on the same log.

Estimators of a target policy pi's value V = E[r(pi(x))], from n logged events
(x_i, a_i, p_i, r_i) with pi_i = pi(a_i | x_i):
- IPS: mean of pi_i / p_i * r_i. Unbiased when p_i > 0 wherever pi puts mass; high variance.
- self-normalized IPS: sum(w r) / sum(w), w = pi_i / p_i. Slightly biased, far less variance
  when weights are large; standard error by the delta method.
- doubly robust: mean of sum_a pi(a|x_i) rhat(x_i, a) + pi_i / p_i (r_i - rhat(x_i, a_i)),
  with a reward model rhat (the online logistic model). Unbiased if either the propensities
  or the model is right, and lower variance than IPS when the model is decent.
Standard errors are std(terms) / sqrt(n) (i.i.d. events).

`evaluate_settings` replays the log for each candidate `PolicyConfig` (exploration, learning
rate, features/interactions) by progressive validation: on each event the policy, trained on
the events before it only, gives its top-slot distribution, the estimators score it, then it
learns from the logged (chosen action, reward), as Personalizer's offline evaluation does.
The reward model for doubly robust is trained the same way, once, and shared by all settings
so that their estimates differ only by the policies.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from recommender.contextual.features import Action
from recommender.contextual.policies import LOGISTIC, PolicyConfig, make_policy


@dataclass(frozen=True)
class Estimate:
    value: float
    stderr: float
    n: int

    def interval(self, z: float = 1.96) -> tuple[float, float]:
        return self.value - z * self.stderr, self.value + z * self.stderr

    def as_dict(self) -> dict[str, float]:
        return {"value": self.value, "stderr": self.stderr, "n": self.n}


@dataclass(frozen=True)
class LoggedDecision:
    context: Mapping[str, Any]
    customer: Mapping[str, Any]
    actions: Sequence[Action]
    chosen: int  # index into actions of the candidate shown first
    probability: float  # the probability it was chosen with
    reward: float

    def __post_init__(self) -> None:
        if not 0 <= self.chosen < len(self.actions):
            raise ValueError("chosen must index the logged actions")
        if not 0.0 < self.probability <= 1.0:
            raise ValueError("probability must be in (0, 1]")


@dataclass(frozen=True)
class PolicyEvaluation:
    ips: Estimate
    snips: Estimate
    dr: Estimate
    match_rate: float  # mean target probability of the logged action

    def as_dict(self) -> dict[str, Any]:
        return {
            "ips": self.ips.as_dict(),
            "snips": self.snips.as_dict(),
            "dr": self.dr.as_dict(),
            "match_rate": self.match_rate,
        }


def _checked(*arrays: Iterable[float]) -> list[np.ndarray]:
    out = [np.asarray(list(a) if not isinstance(a, np.ndarray) else a, float) for a in arrays]
    n = len(out[0])
    if n == 0 or any(len(a) != n for a in out):
        raise ValueError("need equally long, non-empty inputs")
    if (out[1] <= 0).any():
        raise ValueError("logged propensities must be positive")
    return out


def _mean_estimate(terms: np.ndarray) -> Estimate:
    n = len(terms)
    stderr = float(terms.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    return Estimate(value=float(terms.mean()), stderr=stderr, n=n)


def ips_estimate(
    *,
    rewards: Iterable[float],
    propensities: Iterable[float],
    target_probabilities: Iterable[float],
) -> Estimate:
    """Inverse propensity scoring; `target_probabilities[i]` = pi(logged action i | x_i)."""
    r, p, q = _checked(rewards, propensities, target_probabilities)
    return _mean_estimate(q / p * r)


def snips_estimate(
    *,
    rewards: Iterable[float],
    propensities: Iterable[float],
    target_probabilities: Iterable[float],
) -> Estimate:
    """Self-normalized IPS, with the delta-method standard error of a ratio estimator."""
    r, p, q = _checked(rewards, propensities, target_probabilities)
    w = q / p
    total = w.sum()
    n = len(r)
    if total <= 0:
        return Estimate(value=0.0, stderr=float("nan"), n=n)
    value = float((w * r).sum() / total)
    residual = w * (r - value)
    stderr = float(np.sqrt((residual**2).sum()) / total)
    return Estimate(value=value, stderr=stderr, n=n)


def dr_estimate(
    *,
    rewards: Iterable[float],
    propensities: Iterable[float],
    chosen: Iterable[int],
    target_distributions: Sequence[np.ndarray],
    predicted_rewards: Sequence[np.ndarray],
) -> Estimate:
    """Doubly robust: model value of pi plus the importance-weighted model residual."""
    r, p = _checked(rewards, propensities)
    a = np.asarray(list(chosen), dtype=np.int64)
    if not len(a) == len(target_distributions) == len(predicted_rewards) == len(r):
        raise ValueError("need one chosen action, distribution and prediction per event")
    terms = np.empty(len(r))
    for i, (pi, rhat) in enumerate(zip(target_distributions, predicted_rewards, strict=True)):
        terms[i] = float(pi @ rhat) + pi[a[i]] / p[i] * (r[i] - rhat[a[i]])
    return _mean_estimate(terms)


def reward_model_predictions(
    log: Sequence[LoggedDecision], *, config: PolicyConfig | None = None
) -> list[np.ndarray]:
    """Progressive predictions of a logistic reward model: event i's predictions come from a
    model trained on events 0..i-1 only, so the doubly robust terms stay honest."""
    model = make_policy(config or PolicyConfig(kind=LOGISTIC, learning_rate=0.05))
    out = []
    for event in log:
        batch = model.featurize(
            context=event.context, customer=event.customer, actions=list(event.actions)
        )
        out.append(model.predict(batch))
        model.update(batch, event.chosen, event.reward)
    return out


def evaluate_policy(
    log: Sequence[LoggedDecision],
    config: PolicyConfig,
    *,
    predicted_rewards: Sequence[np.ndarray] | None = None,
    seed: int = 0,
) -> PolicyEvaluation:
    """Value of the policy `config` describes, had it been deployed (learning online) when
    the log was collected, by progressive replay."""
    if not log:
        raise ValueError("the log is empty")
    if predicted_rewards is None:
        predicted_rewards = reward_model_predictions(log)
    policy = make_policy(config, seed=seed)
    distributions = []
    for event in log:
        batch = policy.featurize(
            context=event.context, customer=event.customer, actions=list(event.actions)
        )
        distribution, _ = policy.top_distribution(batch)
        distributions.append(distribution)
        policy.update(batch, event.chosen, event.reward)
    return _evaluation(log, distributions, predicted_rewards)


def _evaluation(
    log: Sequence[LoggedDecision],
    distributions: Sequence[np.ndarray],
    predicted_rewards: Sequence[np.ndarray],
) -> PolicyEvaluation:
    rewards = [e.reward for e in log]
    propensities = [e.probability for e in log]
    chosen = [e.chosen for e in log]
    target = np.array([d[e.chosen] for d, e in zip(distributions, log, strict=True)])
    common: dict[str, Any] = {
        "rewards": rewards,
        "propensities": propensities,
        "target_probabilities": target,
    }
    return PolicyEvaluation(
        ips=ips_estimate(**common),
        snips=snips_estimate(**common),
        dr=dr_estimate(
            rewards=rewards,
            propensities=propensities,
            chosen=chosen,
            target_distributions=distributions,
            predicted_rewards=predicted_rewards,
        ),
        match_rate=float(target.mean()),
    )


def evaluate_logged_policy(log: Sequence[LoggedDecision]) -> Estimate:
    """The policy that produced the log, on-policy: the plain mean reward."""
    return _mean_estimate(np.array([e.reward for e in log], dtype=float))


def evaluate_uniform(
    log: Sequence[LoggedDecision], *, predicted_rewards: Sequence[np.ndarray] | None = None
) -> PolicyEvaluation:
    """Random ranking (uniform top slot): the floor every setting should beat."""
    if predicted_rewards is None:
        predicted_rewards = reward_model_predictions(log)
    distributions = [np.full(len(e.actions), 1.0 / len(e.actions)) for e in log]
    return _evaluation(log, distributions, predicted_rewards)


def evaluate_settings(
    log: Sequence[LoggedDecision],
    settings: Mapping[str, PolicyConfig],
    *,
    reward_model: PolicyConfig | None = None,
    seed: int = 0,
) -> dict[str, PolicyEvaluation]:
    """Offline comparison of candidate settings on one log (plus `uniform` as the floor),
    best first by the doubly robust estimate."""
    if not log:
        raise ValueError("the log is empty")
    predictions = reward_model_predictions(log, config=reward_model)
    results = {
        name: evaluate_policy(log, config, predicted_rewards=predictions, seed=seed)
        for name, config in settings.items()
    }
    results["uniform"] = evaluate_uniform(log, predicted_rewards=predictions)
    return dict(sorted(results.items(), key=lambda item: -item[1].dr.value))
