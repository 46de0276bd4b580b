"""Trained models kept on disk, so that work after training (affinity segments) scores
customers with the very model a version serves.

Training writes the model's arrays (`Recommender.to_arrays`) with its index maps (model user
index -> customer pk, model item index -> item external id) as one .npz file under
MEDIA_ROOT/recommender-models/ and records the file's name in `ModelVersion.params
["model_file"]`. The file name carries a random part so that two databases sharing a media
directory (tests, review apps) never overwrite each other's models.

Versions trained before models were kept, or whose file is gone, are fitted again the same
way on the current events of their window (`model_for_version` says which happened).
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings

from recommender.algorithms.base import Recommender
from recommender.algorithms.data import DEFAULT_TYPE_WEIGHTS, InteractionData
from recommender.algorithms.hybrid import model_from_arrays
from recommender.models import ModelVersion

logger = logging.getLogger(__name__)

SUBDIR = "recommender-models"
_PREFIX = "model__"
KEEP_PER_ALGORITHM = 5  # the newest versions of each algorithm keep their files (rollbacks)


@dataclass(frozen=True)
class LoadedModel:
    model: Recommender
    user_ids: np.ndarray  # model user index -> customer pk (as text, as training reads it)
    item_ids: np.ndarray  # model item index -> item external id
    source: str  # "stored" or "refit"


def _directory() -> Path:
    return Path(settings.MEDIA_ROOT) / SUBDIR


def model_file_save(*, version_id: int, model: Recommender, data: InteractionData) -> str:
    """Write the model and its index maps; returns the file name to keep on the version."""
    directory = _directory()
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{version_id}-{uuid.uuid4().hex[:12]}.npz"
    arrays: dict[str, np.ndarray] = {
        f"{_PREFIX}{key}": value for key, value in model.to_arrays().items()
    }
    arrays["model_name"] = np.array(model.name)
    arrays["user_ids"] = np.asarray(data.user_ids, dtype=str)
    arrays["item_ids"] = np.asarray(data.item_ids, dtype=str)
    tmp = directory / f".{name}.tmp"
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)  # type: ignore[arg-type]
    os.replace(tmp, directory / name)
    model_files_prune()
    return name


def model_files_prune(*, keep_per_algorithm: int = KEEP_PER_ALGORITHM) -> int:
    """Delete the files of versions older than the newest `keep_per_algorithm` of their
    algorithm (active versions always keep theirs); such versions are fitted again if ever
    needed. Only files this database's versions name are touched. Returns how many went."""
    seen: dict[str, int] = {}
    removed = 0
    versions = ModelVersion.objects.filter(params__has_key="model_file").order_by("-pk")
    for pk, algorithm, is_active, params in versions.values_list(
        "pk", "algorithm", "is_active", "params"
    ):
        seen[algorithm] = seen.get(algorithm, 0) + 1
        if is_active or seen[algorithm] <= keep_per_algorithm:
            continue
        path = _directory() / Path(str(params["model_file"])).name
        if path.exists():
            path.unlink()
            removed += 1
            logger.info("model file pruned", extra={"version": pk, "file": path.name})
    return removed


def model_file_load(name: str) -> LoadedModel | None:
    """The stored model, or None when the file is missing."""
    path = _directory() / Path(name).name
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as stored:
        arrays = {
            key[len(_PREFIX) :]: stored[key] for key in stored.files if key.startswith(_PREFIX)
        }
        model = model_from_arrays(str(stored["model_name"]), arrays)
        return LoadedModel(
            model=model,
            user_ids=stored["user_ids"],
            item_ids=stored["item_ids"],
            source="stored",
        )


def model_for_version(version: ModelVersion) -> LoadedModel:
    """The version's stored model; fitted again on its window's current events if the file
    is missing (older versions)."""
    name = version.params.get("model_file")
    if name:
        loaded = model_file_load(name)
        if loaded is not None:
            return loaded
        logger.warning("model file missing", extra={"version": version.pk, "file": name})
    from recommender.training import _fit, training_data_load

    loaded_data = training_data_load(
        window_days=int(
            version.params.get("window_days", settings.RECOMMENDER_TRAINING_WINDOW_DAYS)
        )
    )
    half_life = version.params.get("recency_half_life_days")
    data = InteractionData.from_interactions(
        loaded_data.interactions,
        extra_item_ids=loaded_data.items.item_ids,
        type_weights=version.params.get("event_weights") or DEFAULT_TYPE_WEIGHTS,
        half_life_days=float(half_life) if half_life else None,
    )
    model = _fit(version.algorithm, data, loaded_data.items)
    return LoadedModel(
        model=model,
        user_ids=np.asarray(data.user_ids, dtype=str),
        item_ids=np.asarray(data.item_ids, dtype=str),
        source="refit",
    )
