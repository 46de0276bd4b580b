"""The offer ranker's algorithms (issue #8), Django-free: hashed features with interactions,
contextual-bandit policies over them, apprentice mode, offline policy evaluation and a
simulated storefront. The Django side (offers, Rank / Reward API, decision log, persistence)
builds on these; benchmarks run them on generated data without a database.
"""

from recommender.contextual.apprentice import ApprenticePolicy
from recommender.contextual.evaluation import (
    Estimate,
    LoggedDecision,
    PolicyEvaluation,
    dr_estimate,
    evaluate_policy,
    evaluate_settings,
    ips_estimate,
    snips_estimate,
)
from recommender.contextual.features import FeatureBatch, FeatureSpec, Featurizer
from recommender.contextual.policies import (
    KINDS,
    LINUCB,
    LOGISTIC,
    THOMPSON,
    Policy,
    PolicyConfig,
    Ranking,
    make_policy,
    policy_from_bytes,
)

__all__ = [
    "KINDS",
    "LINUCB",
    "LOGISTIC",
    "THOMPSON",
    "ApprenticePolicy",
    "Estimate",
    "FeatureBatch",
    "FeatureSpec",
    "Featurizer",
    "LoggedDecision",
    "Policy",
    "PolicyConfig",
    "PolicyEvaluation",
    "Ranking",
    "dr_estimate",
    "evaluate_policy",
    "evaluate_settings",
    "ips_estimate",
    "make_policy",
    "policy_from_bytes",
    "snips_estimate",
]
