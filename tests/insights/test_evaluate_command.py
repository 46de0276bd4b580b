import csv
import json

import pytest
from django.core.management import CommandError, call_command

POSITIVE = ["I love it", "great, thanks!", "wonderful day :)", "so happy", "best ever"]
NEGATIVE = ["I hate it", "awful, no thanks", "terrible day :(", "so sad", "worst ever"]
NEUTRAL = ["it is a box", "the shop opens at 9", "order 12", "a blue chair", "see you"]


def _write(path, rows, header=("text", "label")):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def test_prints_both_models_and_json_on_the_last_line(tmp_path, capsys):
    rows = []
    for i in range(4):
        rows += [(f"{t} {i}", "positive") for t in POSITIVE]
        rows += [(f"{t} {i}", "negative") for t in NEGATIVE]
        rows += [(f"{t} {i}", "neutral") for t in NEUTRAL]
    rows.append(("", "positive"))  # skipped: no text
    path = tmp_path / "labelled.csv"
    _write(path, rows)
    call_command("evaluate_sentiment", "--csv", str(path), "--json", "--folds", "3")
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "60 labelled rows (1 skipped): negative 20, neutral 20, positive 20"
    result = json.loads(lines[-1])
    assert result["rows"] == 60
    assert result["skipped"] == 1
    assert result["vader"]["n"] == result["sklearn"]["n"] == 60
    assert "3-fold stratified cross-validation" in result["sklearn"]["method"]
    for name in ("vader", "sklearn"):
        assert 0 <= result[name]["accuracy"] <= 1
        assert 0 <= result[name]["macro_f1"] <= 1
    assert result["best"] in ("vader", "sklearn")
    # VADER gets these easy rows right.
    assert result["vader"]["accuracy"] >= 0.9


def test_numeric_ratings_and_other_column_names(tmp_path, capsys):
    rows = [(t, "2.5") for t in POSITIVE] + [(t, "-3") for t in NEGATIVE]
    rows += [(t, "0.2") for t in NEUTRAL]
    path = tmp_path / "rated.csv"
    _write(path, rows, header=("tweet", "rating"))
    call_command(
        "evaluate_sentiment",
        "--csv",
        str(path),
        "--text-column",
        "tweet",
        "--label-column",
        "rating",
        "--json",
    )
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["labels"] == {"negative": 5, "neutral": 5, "positive": 5}


def test_a_missing_column_is_an_error(tmp_path):
    path = tmp_path / "x.csv"
    _write(path, [("a", "positive")], header=("body", "label"))
    with pytest.raises(CommandError, match="no column text"):
        call_command("evaluate_sentiment", "--csv", str(path))


@pytest.mark.django_db
def test_train_command_stores_the_model_and_reports_the_comparison(tmp_path, capsys):
    from insights.models import SentimentModel

    rows = []
    for i in range(5):
        rows += [(f"{t} {i}", "positive") for t in POSITIVE]
        rows += [(f"{t} {i}", "negative") for t in NEGATIVE]
        rows += [(f"{t} {i}", "neutral") for t in NEUTRAL]
    path = tmp_path / "labelled.csv"
    _write(path, rows)
    call_command("train_sentiment", "--csv", str(path), "--name", "mine", "--json")
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    model = SentimentModel.objects.get()
    assert (model.name, result["model"]) == ("mine", "mine")
    assert result["baseline"]["name"] == "vader"
    assert model.is_active == result["activated"]
    assert result["activated"] == (result["candidate"]["macro_f1"] > result["baseline"]["macro_f1"])


@pytest.mark.django_db
def test_train_command_reports_a_class_with_one_example_as_an_error(tmp_path):
    from insights.models import SentimentModel

    rows = [(f"{t} {i}", "positive") for i in range(4) for t in POSITIVE]
    rows.append(("I hate it", "negative"))
    path = tmp_path / "labelled.csv"
    _write(path, rows)
    with pytest.raises(CommandError, match=r"at least 2 labelled posts of each class"):
        call_command("train_sentiment", "--csv", str(path), "--seed", "0")
    assert not SentimentModel.objects.exists()
