"""benchmarks/run_all.py: the quick mode on two cheap benchmarks (no database, no server),
the report's structure, and a failing benchmark recorded without stopping the run."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUN_ALL = ROOT / "benchmarks" / "run_all.py"


def _run_all_module():
    spec = importlib.util.spec_from_file_location("run_all", RUN_ALL)
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_all"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _run_all(*args: str) -> dict:
    done = subprocess.run(
        [sys.executable, str(RUN_ALL), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_quick_run_writes_the_report(tmp_path):
    summary = _run_all("--quick", "--only", "bandit_regret", "--out-dir", str(tmp_path))
    assert summary["ran"] == 1
    # --update runs another one and keeps the first one's entry
    summary = _run_all(
        "--quick", "--update", "--only", "attribution_models", "--out-dir", str(tmp_path)
    )
    assert summary["ran"] == 2
    assert summary["failed"] == []

    report = json.loads((tmp_path / "report.json").read_text())
    assert report["quick"] is True
    machine = report["machine"]
    for name in ("cpu_model", "cores", "ram_gb", "load_average", "git_commit", "date"):
        assert machine[name], name
    assert len(machine["git_commit"]) == 40
    assert len(machine["load_average"]) == 3
    assert [e["benchmark"] for e in report["benchmarks"]] == ["bandit_regret", "attribution_models"]
    for entry in report["benchmarks"]:
        assert entry["status"] == "ok"
        assert entry["target"]
        assert entry["met"] in (True, False)
        assert entry["headline"]
        assert None not in entry["headline"].values(), entry["headline"]
        assert isinstance(entry["result"], dict)
        assert entry["git_commit"] == machine["git_commit"]
    bandit = report["benchmarks"][0]
    assert bandit["args"] == ["--rounds", "5000", "--seeds", "2"]
    assert bandit["result"]["rounds"] == 5000
    assert (
        bandit["headline"]["thompson_reduction_total"]
        == (bandit["result"]["thompson_reduction_total"])
    )
    assert bandit["met"] is bandit["result"]["thompson_at_least_60pct_less"]

    table = (tmp_path / "REPORT.md").read_text()
    assert "| benchmark | key figures | target (at full size) | met at the size run? | s |" in table
    assert "| bandit_regret | thompson_reduction_total " in table
    assert "| attribution_models | all_models_seconds " in table
    assert machine["git_commit"][:12] in table
    assert "quick" in table.splitlines()[0]


def test_a_failing_benchmark_is_recorded_and_the_run_goes_on(tmp_path):
    run_all = _run_all_module()
    broken = run_all.Benchmark(
        "bandit_regret", ("seconds",), "a target", quick=("--no-such-option",)
    )
    entry = run_all.run_one(broken, quick=True, timeout_scale=1.0, env=dict(os.environ))
    assert entry["status"] == "failed"
    assert entry["error"] == "exit code 2"
    assert "unrecognized arguments: --no-such-option" in entry["stderr_tail"]
    assert entry["met"] is None

    slow = run_all.Benchmark(
        "bandit_regret", ("seconds",), quick=("--rounds", "100000000"), quick_timeout=2
    )
    entry = run_all.run_one(slow, quick=True, timeout_scale=1.0, env=dict(os.environ))
    assert entry["status"] == "failed"
    assert entry["error"] == "timed out after 2 s"
    assert entry["seconds"] < 30


def test_registry_names_every_benchmark_script():
    run_all = _run_all_module()
    names = {b.name for b in run_all.REGISTRY}
    # every script has its entry (a new script without one would still run, with its defaults)
    assert names == set(run_all.discover())
    assert {"load_mix", "scale_out", "campaign_throughput", "events_ingest"} <= names
    for bench in run_all.REGISTRY:
        assert bench.headline, bench.name
        assert (bench.met is None) == (bench.target == ""), bench.name


def test_lookup_follows_dotted_keys():
    run_all = _run_all_module()
    data = {"api": {"p99_ms": 3.5}, "ndcg@10": 0.4, "models": {"hybrid": {"ndcg@10_truth": 1}}}
    assert run_all.lookup(data, "api.p99_ms") == 3.5
    assert run_all.lookup(data, "ndcg@10") == 0.4
    assert run_all.lookup(data, "models.hybrid.ndcg@10_truth") == 1
