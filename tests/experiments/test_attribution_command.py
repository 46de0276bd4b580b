"""`manage.py attribute` on CSV files, in a subprocess whose DATABASE_URL points nowhere."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
JOURNEYS = (
    "journey_id,timestamp,channel,conversion,value\n"
    "1,2024-05-01T10:00:00Z,email,0,\n"
    "1,2024-05-02T10:00:00Z,direct,0,\n"
    "1,2024-05-03T10:00:00Z,search,1,30\n"
    "2,2024-05-01T10:00:00Z,search,1,10\n"
    "3,2024-05-01T10:00:00Z,email,0,\n"
)


def run_attribute(*args):
    env = {**os.environ, "DATABASE_URL": "postgres://nobody@127.0.0.1:1/nowhere"}
    return subprocess.run(
        [sys.executable, "manage.py", "attribute", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_command_prints_a_table_and_credit_as_json_on_the_last_line(tmp_path):
    path = tmp_path / "journeys.csv"
    path.write_text(JOURNEYS)
    done = run_attribute("--journeys", str(path), "--model", "all", "--json")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith("3 paths, 2 conversions worth 40.00 over 3 channels")
    assert lines[1].split() == [
        "channel",
        "first_touch",
        "last_touch",
        "last_non_direct",
        "linear",
        "time_decay",
        "position_based",
        "markov",
        "shapley",
    ]
    payload = json.loads(lines[-1])
    assert payload["credit"]["first_touch"] == {"direct": 0.0, "email": 30.0, "search": 10.0}
    assert payload["credit"]["linear"] == pytest.approx(
        {"direct": 10.0, "email": 10.0, "search": 20.0}
    )
    assert payload["credit"]["position_based"] == pytest.approx(
        {"direct": 6.0, "email": 12.0, "search": 22.0}
    )
    for model, credit in payload["credit"].items():
        assert sum(credit.values()) == pytest.approx(40.0), model
    assert set(payload["channel_weights"]) == {"markov", "shapley"}
    assert payload["skipped"] == {}


def test_one_model_and_the_direct_channel_option(tmp_path):
    path = tmp_path / "journeys.csv"
    path.write_text(JOURNEYS.replace("search,1,30", "direct,1,30"))
    done = run_attribute("--journeys", str(path), "--model", "last_non_direct", "--json")
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout.strip().splitlines()[-1])
    assert list(payload["credit"]) == ["last_non_direct"]
    assert payload["credit"]["last_non_direct"] == {"direct": 0.0, "email": 30.0, "search": 10.0}


def test_bad_rows_fail_with_their_line_numbers(tmp_path):
    path = tmp_path / "journeys.csv"
    path.write_text(JOURNEYS + "4,not-a-time,email,0,\n5,2024-05-01T10:00:00Z,email,2,\n")
    done = run_attribute("--journeys", str(path), "--json")
    assert done.returncode == 1
    assert "line 7: timestamp 'not-a-time' is neither ISO 8601 nor unix seconds" in done.stderr
    assert "line 8: conversion must be 0 or 1, got '2'" in done.stderr
    assert done.stdout == ""
