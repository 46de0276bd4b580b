"""Writing what serving reads: precomputed lists (by COPY) and version activation."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import orjson
import psycopg
from django.db import connection, transaction

from recommender.errors import ModelVersionNotReadyError, NoPreviousVersionError
from recommender.models import MAX_LIST_LENGTH, ModelStatus, ModelVersion
from recommender.selectors import modelversion_qs_for_update
from recommender.serving_cache import serving_cache_invalidate

logger = logging.getLogger(__name__)

ListRow = tuple[int, Sequence[str], Sequence[float]]

_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS recommender_list_stage (
    owner_id bigint, item_ids jsonb, scores jsonb
) ON COMMIT DELETE ROWS
"""
_UPSERT = """
INSERT INTO {table} (model_version_id, {owner}, item_ids, scores)
SELECT DISTINCT ON (owner_id) %(version)s, owner_id, item_ids, scores
FROM recommender_list_stage
ORDER BY owner_id
ON CONFLICT (model_version_id, {owner}) DO UPDATE
SET item_ids = EXCLUDED.item_ids, scores = EXCLUDED.scores
"""


def _lists_store(
    *, table: str, owner: str, version: ModelVersion | int, rows: Iterable[ListRow]
) -> int:
    version_id = version if isinstance(version, int) else version.pk
    with transaction.atomic():
        connection.ensure_connection()
        with psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(_STAGE)
            cursor.execute("TRUNCATE recommender_list_stage")
            with cursor.copy(
                "COPY recommender_list_stage (owner_id, item_ids, scores) FROM STDIN"
            ) as copy:
                for owner_id, item_ids, scores in rows:
                    ids = [str(i) for i in item_ids[:MAX_LIST_LENGTH]]
                    values = [round(float(s), 6) for s in scores[:MAX_LIST_LENGTH]]
                    copy.write_row(
                        (int(owner_id), orjson.dumps(ids).decode(), orjson.dumps(values).decode())
                    )
            cursor.execute(
                _UPSERT.format(table=table, owner=owner).encode(), {"version": version_id}
            )
            stored = cursor.rowcount
    logger.info("lists stored", extra={"table": table, "version": version_id, "rows": stored})
    return stored


def recommendation_lists_store(*, version: ModelVersion | int, rows: Iterable[ListRow]) -> int:
    """Store (customer pk, item external ids best first, scores) per customer for `version`;
    a customer's list is replaced if it exists (re-running a training step is harmless).
    Lists are cut to MAX_LIST_LENGTH. Returns the number of rows written."""
    return _lists_store(
        table="recommender_recommendationlist", owner="customer_id", version=version, rows=rows
    )


def similar_lists_store(*, version: ModelVersion | int, rows: Iterable[ListRow]) -> int:
    """Store (item pk, related item external ids best first, scores) per item for `version`."""
    return _lists_store(
        table="recommender_similaritemlist", owner="item_id", version=version, rows=rows
    )


def modelversion_activate(*, version: ModelVersion | int) -> ModelVersion:
    """Serve `version`: the other active version of its algorithm is deactivated in the same
    transaction and every serving cache is invalidated once it commits."""
    version_id = version if isinstance(version, int) else version.pk
    with transaction.atomic():
        target = modelversion_qs_for_update().get(pk=version_id)
        # Lock every version of the algorithm: two activations at once run one after the other.
        list(modelversion_qs_for_update().filter(algorithm=target.algorithm))
        if target.status != ModelStatus.READY:
            raise ModelVersionNotReadyError(
                f"Version {target.pk} is {target.status}; only a ready version can be served.",
                extra={"version": target.pk, "status": target.status},
            )
        if not target.is_active:
            # Deactivate first: the partial unique index allows one active row per algorithm.
            ModelVersion.objects.filter(algorithm=target.algorithm, is_active=True).update(
                is_active=False
            )
            ModelVersion.objects.filter(pk=target.pk).update(is_active=True)
            target.is_active = True
        transaction.on_commit(serving_cache_invalidate)
    logger.info(
        "model version activated", extra={"version": target.pk, "algorithm": target.algorithm}
    )
    return target


def modelversion_rollback(*, algorithm: str) -> ModelVersion:
    """Serve the ready version of `algorithm` trained before the active one again."""
    with transaction.atomic():
        versions = list(modelversion_qs_for_update().filter(algorithm=algorithm))
        active = next((v for v in versions if v.is_active), None)
        candidates = [
            v
            for v in versions
            if v.status == ModelStatus.READY
            and not v.is_active
            and (active is None or v.pk < active.pk)
        ]
        if not candidates:
            raise NoPreviousVersionError(
                f"No ready {algorithm} version before the active one.",
                extra={"algorithm": algorithm},
            )
        return modelversion_activate(version=candidates[-1].pk)
