"""Shared by the demo steps that replay the simulated store's hidden tastes."""

from django.core.management.base import CommandError

from marketing.simulation.store import StoreConfig, StoreTruth, generate_truth
from profiles.models import Customer


def store_arguments_add(parser) -> None:
    """--customers, --items and --seed: those `simulate_store` was given."""
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--items", type=int, default=400)
    parser.add_argument("--seed", type=int, default=42)


def store_truth_for(options: dict) -> StoreTruth:
    """The hidden tastes of the store those options describe; CommandError when the
    options are invalid or that store is not loaded."""
    try:
        config = StoreConfig(
            customers=options["customers"], items=options["items"], seed=options["seed"]
        )
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    truth = generate_truth(config)
    last = truth.customer_external_ids[-1]
    if not Customer.objects.filter(external_id=last).exists():
        raise CommandError(
            f"No simulated customer {last}: run simulate_store with --customers "
            f"{config.customers} first."
        )
    return truth
