import pytest

from marketing.simulation.load import store_simulate
from marketing.simulation.store import StoreConfig
from profiles.models import CustomerFeatures
from profiles.services import features_rebuild


@pytest.fixture
def cluster_store(db) -> int:
    """A small simulated store with its features; returns how many customers have events."""
    store_simulate(config=StoreConfig(customers=300, items=60, days=30, seed=3), reset=True)
    features_rebuild(repair=True)
    return CustomerFeatures.objects.filter(last_seen__isnull=False).count()
