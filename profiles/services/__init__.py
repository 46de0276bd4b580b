"""Every state change of customer data: event ingestion, features, identity, endpoints."""

from profiles.services.customers import (
    AliasConflictError,
    customer_alias_add,
    customer_upsert,
    endpoints_mark_bounced,
    endpoints_update,
)
from profiles.services.events import IngestResult, customers_resolve, events_ingest
from profiles.services.features import (
    FEATURES_BATCH_SIZE,
    FEATURES_LOCK,
    FeaturesRebuildReport,
    FeaturesUpdateResult,
    ItemCategoryLookup,
    feature_config,
    features_backlog_size,
    features_rebuild,
    features_recompute,
    features_update_pending,
    item_category_lookup_register,
)

__all__ = [
    "FEATURES_BATCH_SIZE",
    "FEATURES_LOCK",
    "AliasConflictError",
    "FeaturesRebuildReport",
    "FeaturesUpdateResult",
    "IngestResult",
    "ItemCategoryLookup",
    "customer_alias_add",
    "customer_upsert",
    "customers_resolve",
    "endpoints_mark_bounced",
    "endpoints_update",
    "events_ingest",
    "feature_config",
    "features_backlog_size",
    "features_rebuild",
    "features_recompute",
    "features_update_pending",
    "item_category_lookup_register",
]
