"""Bulk writes into the catalog with PostgreSQL COPY; see profiles.bulk for the format."""

from collections.abc import Iterable, Sequence

import numpy as np

from profiles.bulk import (
    Column,
    bool_column,
    constant,
    copy_columns,
    decimal_column,
    int_column,
    json_column,
    reserve_ids,
    text_column,
    timestamp_column,
)


def items_copy(
    *,
    external_ids: Sequence[str],
    titles: Column,
    created_at_us: Column,
    categories: Column | None = None,
    brands: Column | None = None,
    prices: Column | None = None,
    in_stock: Column | None = None,
    image_urls: Column | None = None,
    deep_links: Column | None = None,
    attributes: Column | None = None,
) -> np.ndarray:
    """Insert catalog items (`created_at` = release time); returns their pks in input order."""
    n = len(external_ids)
    ids = reserve_ids("recommender_item", n)
    created = timestamp_column(created_at_us)

    def optional(values: Column | None) -> Iterable[str]:
        return constant("", n) if values is None else text_column(values)

    copy_columns(
        "recommender_item",
        {
            "id": int_column(ids),
            "external_id": text_column(external_ids),
            "title": text_column(titles),
            "category": optional(categories),
            "brand": optional(brands),
            "price": constant("\\N", n) if prices is None else decimal_column(prices),
            "in_stock": constant("t", n) if in_stock is None else bool_column(in_stock),
            "image_url": optional(image_urls),
            "deep_link": optional(deep_links),
            "attributes": json_column(attributes, n),
            "created_at": created,
            "updated_at": created,
        },
        n=n,
    )
    return ids
