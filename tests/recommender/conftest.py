import pytest

from marketing.simulation.load import store_simulate
from marketing.simulation.store import StoreConfig
from recommender.models import Algorithm
from recommender.training import model_train

SMALL_STORE = StoreConfig(customers=300, items=60, days=30, seed=11)


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    """Trained models are written under MEDIA_ROOT (recommender.model_files): keep each
    test's files in its own directory."""
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def small_store(db):
    store_simulate(config=SMALL_STORE, reset=True)


@pytest.fixture
def hybrid(small_store):
    """A served hybrid model trained on the small simulated store."""
    return model_train(algorithm=Algorithm.HYBRID)


@pytest.fixture(autouse=True)
def _offer_ranker_caches():
    """The rank path keeps the catalog and the served policy in process memory; every test
    starts without them (Redis is flushed by the cache fixture)."""
    from recommender.offers_catalog import cached_catalog
    from recommender.offers_policy import served_ranker
    from recommender.offers_serving import stamps_forget

    for forget in (cached_catalog.clear, served_ranker.clear, stamps_forget):
        forget()
    yield
    for forget in (cached_catalog.clear, served_ranker.clear, stamps_forget):
        forget()
