"""Sequential testing with always-valid p-values: the mixture SPRT (mSPRT) of Johari, Pekelis
and Walsh ("Always valid inference", 2017/2022), as used by Optimizely's Stats Engine.

The test is on the difference theta = treatment - control (of rates or of means), estimated by
theta_hat with variance V = var_c / n_c + var_t / n_t. Under H0 (theta = 0), mixing the
likelihood ratio over theta ~ N(0, tau2) gives

    Lambda = sqrt(V / (V + tau2)) * exp(theta_hat^2 * tau2 / (2 V (V + tau2)))

and the always-valid p-value after look k is min(1, 1 / Lambda_1, ..., 1 / Lambda_k):
P(it ever drops below alpha | H0) <= alpha, however often one looks. The running minimum is
why callers pass the previous look's p-value (`previous_p`) or a whole path of looks.

`tau2` is the prior variance of the effect on the difference scale (e.g. (0.005)^2 for rates
around 5% when lifts of about half a point are plausible). A tau close to the effects one cares
about gives the most power; it must be fixed before the data are seen, not tuned on them.
The normal approximation of theta_hat (plug-in variances) makes the guarantee asymptotic; the
A/A simulation in the tests checks it at realistic sizes.
"""

import math
from dataclasses import dataclass

import numpy as np

from experiments.stats.base import Interval, JsonResult, SampleMoments


@dataclass(frozen=True)
class SequentialResult(JsonResult):
    """One look: the estimate, the log mixture likelihood ratio, the always-valid p-value
    (already the running minimum when `previous_p` was given) and confidence sequence."""

    difference: float
    log_likelihood_ratio: float
    p_value: float
    interval: Interval


def msprt_log_lambda(difference, variance, tau2: float):
    """log Lambda, elementwise over numpy arrays or for scalars; 0 (Lambda = 1, no evidence)
    where the variance is 0, i.e. before there are data on both sides."""
    difference = np.asarray(difference, dtype=np.float64)
    variance = np.asarray(variance, dtype=np.float64)
    if tau2 <= 0:
        raise ValueError("tau2 must be positive")
    safe = np.where(variance > 0, variance, 1.0)
    value = 0.5 * np.log(safe / (safe + tau2)) + difference**2 * tau2 / (2 * safe * (safe + tau2))
    return np.where(variance > 0, value, 0.0)


def always_valid_p_values(differences, variances, tau2: float) -> np.ndarray:
    """Always-valid p-values along the last axis (successive looks at cumulative data):
    the running minimum of min(1, 1 / Lambda). Vectorised over any leading axes."""
    p = np.minimum(1.0, np.exp(-msprt_log_lambda(differences, variances, tau2)))
    return np.minimum.accumulate(p, axis=-1)


def confidence_sequence(difference: float, variance: float, tau2: float, alpha: float) -> Interval:
    """The set of theta the mSPRT does not reject at level alpha at this look:
    |theta_hat - theta| < sqrt(2 V (V + tau2) / tau2 * (log(1/alpha) + log((V + tau2) / V) / 2)).
    Valid simultaneously over looks (callers wanting the running intersection keep it)."""
    if variance <= 0:
        return Interval(difference, -math.inf, math.inf)
    half = math.sqrt(
        2
        * variance
        * (variance + tau2)
        / tau2
        * (math.log(1 / alpha) + 0.5 * math.log((variance + tau2) / variance))
    )
    return Interval(difference, difference - half, difference + half)


def msprt_test(
    control: SampleMoments,
    treatment: SampleMoments,
    *,
    tau2: float,
    alpha: float = 0.05,
    previous_p: float = 1.0,
) -> SequentialResult:
    """One look of the mSPRT on the difference of means (pass `BinomialStats.moments()` for
    rates: the Bernoulli variance with n - 1). `previous_p` is the always-valid p-value of the
    last look (1.0 at the first)."""
    if control.n < 2 or treatment.n < 2:
        return SequentialResult(math.nan, 0.0, previous_p, Interval(math.nan, -math.inf, math.inf))
    difference = treatment.mean - control.mean
    variance = control.variance / control.n + treatment.variance / treatment.n
    log_lambda = float(msprt_log_lambda(difference, variance, tau2))
    p = min(previous_p, 1.0, math.exp(-log_lambda))
    return SequentialResult(
        difference, log_lambda, p, confidence_sequence(difference, variance, tau2, alpha)
    )
