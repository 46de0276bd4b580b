"""CSV import of catalog items (Amazon Personalize's items file).

ITEM_ID and TITLE are required; GENRES (pipe-separated) become attributes["genres"] and,
unless a CATEGORY column says otherwise, the first genre is the category. PRICE, BRAND,
CATEGORY, DESCRIPTION, IMAGE_URL, DEEP_LINK, IN_STOCK and ACTIVE (or IS_ACTIVE) fill their
fields; every other column becomes an attribute. Items are upserted by ITEM_ID and only rows
whose values differ are updated, so re-importing a file changes nothing. Blank cells never
overwrite a stored value.
"""

from __future__ import annotations

import logging
from decimal import Decimal, InvalidOperation
from pathlib import Path

import orjson
import psycopg
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import connection, transaction
from django.utils import timezone

from marketing.common.csv_import import (
    KINDS,
    PIPE,
    ImportCounts,
    ImportReport,
    RowInvalid,
    attribute_key,
    attribute_value,
    boolean,
    chunked,
    csv_open,
    importer_register,
    text,
)
from recommender.serving_cache import serving_cache_invalidate

logger = logging.getLogger(__name__)

ITEMS_CHUNK = 10_000
MAX_PRICE = Decimal("1e10")
TEXT_FIELDS = {
    "TITLE": 300,
    "DESCRIPTION": 20_000,
    "CATEGORY": 100,
    "BRAND": 100,
    "DEEP_LINK": 500,
}
ACTIVE_COLUMNS = ("ACTIVE", "IS_ACTIVE")
_url = URLValidator()

_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS recommender_item_stage (
    external_id text, title text, category text, brand text, price numeric, in_stock boolean,
    image_url text, deep_link text, description text, is_active boolean, attributes jsonb
) ON COMMIT DELETE ROWS
"""
_INSERT = """
INSERT INTO recommender_item (external_id, title, category, brand, price, in_stock, image_url,
    deep_link, description, is_active, attributes, created_at, updated_at)
SELECT external_id, title, coalesce(category, ''), coalesce(brand, ''), price,
    coalesce(in_stock, true), coalesce(image_url, ''), coalesce(deep_link, ''),
    coalesce(description, ''), coalesce(is_active, true), attributes, %(now)s, %(now)s
FROM recommender_item_stage
ON CONFLICT (external_id) DO NOTHING
"""
# The items that existed already: update those whose values differ (NULL = not given).
_UPDATE = """
UPDATE recommender_item i SET
    title = s.title, category = coalesce(s.category, i.category),
    brand = coalesce(s.brand, i.brand), price = coalesce(s.price, i.price),
    in_stock = coalesce(s.in_stock, i.in_stock), image_url = coalesce(s.image_url, i.image_url),
    deep_link = coalesce(s.deep_link, i.deep_link),
    description = coalesce(s.description, i.description),
    is_active = coalesce(s.is_active, i.is_active), attributes = i.attributes || s.attributes,
    updated_at = %(now)s
FROM recommender_item_stage s
WHERE i.external_id = s.external_id AND (
    s.title, coalesce(s.category, i.category), coalesce(s.brand, i.brand),
    coalesce(s.price, i.price), coalesce(s.in_stock, i.in_stock),
    coalesce(s.image_url, i.image_url), coalesce(s.deep_link, i.deep_link),
    coalesce(s.description, i.description), coalesce(s.is_active, i.is_active),
    i.attributes || s.attributes
) IS DISTINCT FROM (
    i.title, i.category, i.brand, i.price, i.in_stock, i.image_url, i.deep_link, i.description,
    i.is_active, i.attributes
)
"""
_COLUMNS = (
    "title",
    "category",
    "brand",
    "price",
    "in_stock",
    "image_url",
    "deep_link",
    "description",
    "is_active",
)


def _price(raw: str, column: str) -> Decimal:
    try:
        value = Decimal(raw.strip())
    except InvalidOperation:
        raise RowInvalid(column, "Must be a number, e.g. 19.99.", raw) from None
    if not value.is_finite() or value < 0 or value >= MAX_PRICE:
        raise RowInvalid(column, "Must be a number from 0 to 9,999,999,999.99.", raw)
    return value.quantize(Decimal("0.01"))


def _image_url(raw: str, column: str) -> str:
    value = text(raw, column, max_length=500)
    try:
        _url(value)
    except ValidationError:
        raise RowInvalid(column, "Not a valid URL.", raw) from None
    return value


def _item_parser(header):
    names = header.names
    item_column = header.index("ITEM_ID")
    fields: list[tuple[int, str, str]] = []  # (index, key, header name)
    genres_column = header.index("GENRES")
    attributes: list[tuple[int, str]] = []
    known = {"ITEM_ID", "GENRES", "PRICE", "IN_STOCK", "IMAGE_URL", *ACTIVE_COLUMNS, *TEXT_FIELDS}
    for index, (key, name) in enumerate(zip(header.keys, names, strict=True)):
        if key in known:
            if key not in ("ITEM_ID", "GENRES"):
                fields.append((index, key, name))
        else:
            attributes.append((index, attribute_key(name)))

    def parse(row: list[str]) -> tuple[str, dict, dict]:
        cell = row[item_column].strip()
        if not cell:
            raise RowInvalid(names[item_column], "Required.")
        external_id = text(cell, names[item_column], max_length=128)
        values: dict = {}
        attrs: dict = {}
        if genres_column is not None and (genres := row[genres_column].strip()):
            listed = [g.strip() for g in genres.split(PIPE) if g.strip()]
            attrs["genres"] = listed
            if listed:
                values["category"] = text(listed[0], names[genres_column], max_length=100)
        for index, key, name in fields:
            raw = row[index]
            if not raw.strip():
                continue
            if key == "PRICE":
                values["price"] = _price(raw, name)
            elif key == "IN_STOCK":
                values["in_stock"] = boolean(raw, name)
            elif key in ACTIVE_COLUMNS:
                values["is_active"] = boolean(raw, name)
            elif key == "IMAGE_URL":
                values["image_url"] = _image_url(raw, name)
            else:
                values[key.lower()] = text(raw, name, max_length=TEXT_FIELDS[key])
        if not values.get("title"):
            raise RowInvalid(header.names[header.index("TITLE")], "Required.")
        for index, key in attributes:
            if cell := row[index].strip():
                attrs[key] = attribute_value(cell)
        return external_id, values, attrs

    return parse


def items_import(
    *, path: Path, report: ImportReport, progress, chunk_size: int = ITEMS_CHUNK
) -> ImportCounts:
    source = csv_open(path, required=KINDS["items"].required, errors=report)
    parse = _item_parser(source.header)
    good = created = updated = 0
    try:
        for chunk in chunked(source.rows, chunk_size):
            merged: dict[str, tuple[dict, dict]] = {}
            for number, row in chunk:
                try:
                    external_id, values, attrs = parse(row)
                except RowInvalid as exc:
                    report.reject(number, exc)
                    continue
                good += 1
                if external_id in merged:  # the same item twice in a chunk: later wins
                    merged[external_id][0].update(values)
                    merged[external_id][1].update(attrs)
                else:
                    merged[external_id] = (values, attrs)
            if merged:
                c, u = _items_upsert(merged)
                created += c
                updated += u
            progress(good + report.rejected)
    finally:
        source.close()
    return ImportCounts(
        rows=good + report.rejected,
        imported=created + updated,
        unchanged=good - created - updated,
        rejected=report.rejected,
        details={"items_created": created, "items_updated": updated},
    )


def _items_upsert(merged: dict[str, tuple[dict, dict]]) -> tuple[int, int]:
    now = timezone.now()
    with transaction.atomic():
        connection.ensure_connection()
        with psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(_STAGE)
            cursor.execute("TRUNCATE recommender_item_stage")
            with cursor.copy(
                "COPY recommender_item_stage (external_id, "
                + ", ".join(_COLUMNS)
                + ", attributes) FROM STDIN"
            ) as copy:
                for external_id, (values, attrs) in merged.items():
                    copy.write_row(
                        (
                            external_id,
                            *(values.get(name) for name in _COLUMNS),
                            orjson.dumps(attrs).decode(),
                        )
                    )
            cursor.execute(_INSERT, {"now": now})
            created = cursor.rowcount
            cursor.execute(_UPDATE, {"now": now})
            updated = cursor.rowcount
        if created or updated:
            transaction.on_commit(serving_cache_invalidate)
    return created, updated


importer_register("items", items_import)
