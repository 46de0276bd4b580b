from decimal import Decimal
from pathlib import Path

import pytest

from marketing.common.csv_import import report_rows
from marketing.imports_models import ImportFile, ImportStatus
from marketing.imports_services import import_file_create, import_file_run
from recommender.models import Item


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def _run(path: Path) -> ImportFile:
    import_file = import_file_create(kind="items", source_path=path, schedule=False)
    return import_file_run(import_file_id=import_file.pk)


ITEMS = """ITEM_ID,TITLE,PRICE,GENRES,RELEASE_YEAR,IN_STOCK
1,Snow on Tha Bluff,9.99,Crime|Drama,2010,yes
2,"N Word, The",,Documentary,2004,
3,Bad price,abc,Drama,2001,
,No id,1.00,Drama,2001,
4,,1.00,Drama,2001,
5,Stocky,1.00,,1999,maybe
6,Negative,-1,,1999,
"""


def test_items_import_keeps_good_rows_and_reports_bad_ones(db, tmp_path):
    path = tmp_path / "items.csv"
    path.write_text(ITEMS, encoding="utf-8")
    Item.objects.create(external_id="2", title="Old title", category="old", brand="B", price=5)

    result = _run(path)

    assert result.status == ImportStatus.DONE
    assert (result.rows, result.imported, result.unchanged, result.rejected) == (7, 2, 0, 5)
    assert result.details == {"items_created": 1, "items_updated": 1}
    assert [(r["row"], r["column"], r["reason"]) for r in report_rows(result.report.path)] == [
        ("4", "PRICE", "Must be a number, e.g. 19.99."),
        ("5", "ITEM_ID", "Required."),
        ("6", "TITLE", "Required."),
        ("7", "IN_STOCK", "Must be true or false (yes/no, 1/0)."),
        ("8", "PRICE", "Must be a number from 0 to 9,999,999,999.99."),
    ]
    one = Item.objects.get(external_id="1")
    assert (one.title, one.category, one.price, one.in_stock) == (
        "Snow on Tha Bluff",
        "Crime",
        Decimal("9.99"),
        True,
    )
    assert one.attributes == {"genres": ["Crime", "Drama"], "release_year": 2010}
    two = Item.objects.get(external_id="2")
    # Blank cells (price, in stock) leave stored values alone.
    assert (two.title, two.category, two.brand, two.price) == (
        "N Word, The",
        "Documentary",
        "B",
        Decimal("5.00"),
    )
    assert sorted(Item.objects.values_list("external_id", flat=True)) == ["1", "2"]


def test_reimporting_items_changes_nothing(db, tmp_path):
    path = tmp_path / "items.csv"
    path.write_text(ITEMS, encoding="utf-8")
    _run(path)
    before = sorted(Item.objects.values_list("pk", "updated_at", "attributes"))

    again = _run(path)

    assert (again.rows, again.imported, again.unchanged, again.rejected) == (7, 0, 2, 5)
    assert sorted(Item.objects.values_list("pk", "updated_at", "attributes")) == before


def test_items_category_column_wins_over_genres(db, tmp_path):
    path = tmp_path / "items.csv"
    path.write_text(
        "ITEM_ID,TITLE,GENRES,CATEGORY,BRAND,IMAGE_URL,TAGS\n"
        "9,Boots,Outdoor|Winter,shoes,Acme,https://img.example.com/9.jpg,warm|waterproof\n",
        encoding="utf-8",
    )

    result = _run(path)

    assert (result.imported, result.rejected) == (1, 0)
    item = Item.objects.get()
    assert (item.category, item.brand, item.image_url) == (
        "shoes",
        "Acme",
        "https://img.example.com/9.jpg",
    )
    assert item.attributes == {"genres": ["Outdoor", "Winter"], "tags": ["warm", "waterproof"]}


def test_items_header_without_title_stores_nothing(db, tmp_path):
    path = tmp_path / "items.csv"
    path.write_text("ITEM_ID,GENRES\n1,Drama\n", encoding="utf-8")

    result = _run(path)

    assert result.status == ImportStatus.FAILED
    assert result.error == (
        "The header lacks the required column TITLE; it has ITEM_ID, GENRES. Nothing was imported."
    )
    assert Item.objects.count() == 0


def test_items_description_and_active_columns_update_in_place(db, tmp_path):
    path = tmp_path / "items.csv"
    path.write_text(
        "ITEM_ID,TITLE,DESCRIPTION,ACTIVE\n"
        '1,Boots,"Warm, waterproof",no\n'
        "2,Hat,,\n"
        "3,Scarf,Wool,perhaps\n",
        encoding="utf-8",
    )
    Item.objects.create(external_id="2", title="Hat", description="Kept", is_active=False)

    result = _run(path)

    assert (result.rows, result.imported, result.unchanged, result.rejected) == (3, 1, 1, 1)
    assert [(r["row"], r["column"]) for r in report_rows(result.report.path)] == [("4", "ACTIVE")]
    assert sorted(Item.objects.values_list("external_id", "description", "is_active")) == [
        ("1", "Warm, waterproof", False),
        ("2", "Kept", False),
    ]

    path.write_text("ITEM_ID,TITLE,IS_ACTIVE\n1,Boots,yes\n2,Hat,\n", encoding="utf-8")
    again = _run(path)

    assert (again.imported, again.unchanged) == (1, 1)
    assert sorted(Item.objects.values_list("external_id", "description", "is_active")) == [
        ("1", "Warm, waterproof", True),
        ("2", "Kept", False),
    ]
    assert _run(path).imported == 0


def test_items_without_active_column_are_active(db, tmp_path):
    path = tmp_path / "items.csv"
    path.write_text("ITEM_ID,TITLE\n1,Boots\n", encoding="utf-8")

    _run(path)

    assert list(Item.objects.values_list("description", "is_active")) == [("", True)]
