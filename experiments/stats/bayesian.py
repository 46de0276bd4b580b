"""Bayesian comparison of one variant with control.

Rates: Beta-Binomial with a Beta(prior_alpha, prior_beta) prior (default uniform Beta(1, 1)).
`beta_prob_beat` and `beta_expected_loss` are EXACT closed forms (Evan Miller's sum for
P(p_B > p_A) and Chris Stucchio's expression of the loss through it), evaluated in log space
and vectorised over the sum's terms; no Monte Carlo, so the numbers do not move between page
loads. The sum has min(alpha_B, beta_B, ...) terms, chosen through the symmetries of the Beta
distribution; above `EXACT_TERMS_LIMIT` terms the posteriors are indistinguishable from normals
and the normal forms below are used.

Means (revenue per user): normal approximation of each mean's posterior, N(mean, se^2) (a flat
prior; the central limit theorem on hundreds of users), which gives closed forms too.

`beta_prob_best` (probability of being the best of several arms) has no cheap closed form; it is
Monte Carlo with a fixed seed, deterministic for given counts.

Expected loss of choosing B over A = E[max(p_A - p_B, 0)]: what we give up, in the metric's own
units (conversion-rate points or currency per user), if B is in fact worse.
"""

import math

import numpy as np
from scipy import special
from scipy import stats as sps

from experiments.stats.base import BinomialStats, SampleMoments

EXACT_TERMS_LIMIT = 200_000


def _posterior(stats: BinomialStats, prior: tuple[float, float]) -> tuple[float, float]:
    return prior[0] + stats.successes, prior[1] + stats.n - stats.successes


def _prob_greater(a_b: float, b_b: float, a_a: float, b_a: float) -> float:
    """P(X_B > X_A) for X_B ~ Beta(a_b, b_b), X_A ~ Beta(a_a, b_a) independent.

    Miller's sum runs over i < a_b and needs a_b integer; P(X_B > X_A) = P(1-X_A > 1-X_B)
    swaps in b_a as the count, so the shorter integer count is used."""
    candidates = []
    if float(a_b).is_integer():
        candidates.append((a_b, (a_b, b_b, a_a, b_a), False))
    if float(b_a).is_integer():
        candidates.append((b_a, (b_a, a_a, b_b, a_b), False))
    if float(a_a).is_integer():
        candidates.append((a_a, (a_a, b_a, a_b, b_b), True))
    if float(b_b).is_integer():
        candidates.append((b_b, (b_b, a_b, b_a, a_a), True))
    if not candidates:
        raise ValueError("the closed form needs an integer posterior parameter; use integer priors")
    terms, (a1, b1, a2, b2), complement = min(candidates, key=lambda c: c[0])
    if terms > EXACT_TERMS_LIMIT:
        return _normal_prob_greater(a_b, b_b, a_a, b_a)
    i = np.arange(int(terms), dtype=np.float64)
    log_terms = (
        special.betaln(a2 + i, b2 + b1)
        - np.log(b1 + i)
        - special.betaln(1 + i, b1)
        - special.betaln(a2, b2)
    )
    p = float(np.exp(special.logsumexp(log_terms)))
    p = min(max(p, 0.0), 1.0)
    return 1.0 - p if complement else p


def _beta_mean_var(a: float, b: float) -> tuple[float, float]:
    return a / (a + b), a * b / ((a + b) ** 2 * (a + b + 1))


def _normal_prob_greater(a_b: float, b_b: float, a_a: float, b_a: float) -> float:
    (mb, vb), (ma, va) = _beta_mean_var(a_b, b_b), _beta_mean_var(a_a, b_a)
    return normal_prob_beat(ma, math.sqrt(va), mb, math.sqrt(vb))


def beta_prob_beat(
    control: BinomialStats, treatment: BinomialStats, *, prior: tuple[float, float] = (1, 1)
) -> float:
    """P(treatment's true rate > control's true rate | data), exact."""
    a_b, b_b = _posterior(treatment, prior)
    a_a, b_a = _posterior(control, prior)
    return _prob_greater(a_b, b_b, a_a, b_a)


def beta_expected_loss(
    control: BinomialStats, treatment: BinomialStats, *, prior: tuple[float, float] = (1, 1)
) -> float:
    """E[max(p_control - p_treatment, 0) | data]: conversion-rate points lost by shipping
    treatment (swap the arguments for the loss of keeping control). Exact:
    E[p_A 1(p_A > p_B)] = mean_A P(Beta(a_A + 1, b_A) > p_B), likewise for p_B."""
    a_b, b_b = _posterior(treatment, prior)
    a_a, b_a = _posterior(control, prior)
    mean_a, mean_b = a_a / (a_a + b_a), a_b / (a_b + b_b)
    loss = mean_a * _prob_greater(a_a + 1, b_a, a_b, b_b) - mean_b * _prob_greater(
        a_a, b_a, a_b + 1, b_b
    )
    return max(loss, 0.0)


def normal_prob_beat(
    control_mean: float, control_se: float, treatment_mean: float, treatment_se: float
) -> float:
    """P(treatment > control) for independent normal posteriors."""
    s = math.hypot(control_se, treatment_se)
    delta = treatment_mean - control_mean
    if s == 0:
        return 0.5 if delta == 0 else float(delta > 0)
    return float(sps.norm.cdf(delta / s))


def normal_expected_loss(
    control_mean: float, control_se: float, treatment_mean: float, treatment_se: float
) -> float:
    """E[max(control - treatment, 0)] for independent normal posteriors:
    with D = treatment - control ~ N(d, s^2), E[max(-D, 0)] = s phi(d/s) - d Phi(-d/s)."""
    s = math.hypot(control_se, treatment_se)
    d = treatment_mean - control_mean
    if s == 0:
        return max(-d, 0.0)
    return float(s * sps.norm.pdf(d / s) - d * sps.norm.cdf(-d / s))


def means_prob_beat(control: SampleMoments, treatment: SampleMoments) -> float:
    return normal_prob_beat(
        control.mean, control.standard_error, treatment.mean, treatment.standard_error
    )


def means_expected_loss(control: SampleMoments, treatment: SampleMoments) -> float:
    return normal_expected_loss(
        control.mean, control.standard_error, treatment.mean, treatment.standard_error
    )


def beta_prob_best(
    arms: list[BinomialStats],
    *,
    prior: tuple[float, float] = (1, 1),
    draws: int = 100_000,
    seed: int = 0,
) -> np.ndarray:
    """P(each arm has the highest true rate | data), Monte Carlo with `draws` joint posterior
    draws from `seed` (standard error <= 0.5 / sqrt(draws), 0.0016 at the default)."""
    rng = np.random.default_rng(seed)
    a = np.array([prior[0] + s.successes for s in arms], dtype=np.float64)
    b = np.array([prior[1] + s.n - s.successes for s in arms], dtype=np.float64)
    samples = rng.beta(a, b, size=(draws, len(arms)))
    wins = np.bincount(samples.argmax(axis=1), minlength=len(arms))
    return wins / draws
