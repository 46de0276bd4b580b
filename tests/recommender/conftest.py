import pytest


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    """Trained models are written under MEDIA_ROOT (recommender.model_files): keep each
    test's files in its own directory."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
