"""Run every benchmark in benchmarks/ and write one report (`make bench`, `make bench-quick`).

    .venv/bin/python benchmarks/run_all.py [--quick] [--only a,b] [--skip a,b]
        [--out-dir benchmarks] [--timeout-scale 1.0] [--redis-url URL] [--list]
        [--update] [--markdown-only]

Each benchmark is a script that prints JSON on its last line (files starting with _ are
helpers). REGISTRY below says, for each, the arguments of a full run and of a quick smoke
run (small sizes; None: left out of the quick run), the time it may take, which JSON keys are
its headline figures, and its target with the check that says whether it was met. The
benchmarks run one after another, each in its own process group with a time limit; one
that fails, times out or prints no JSON is recorded as failed with the tail of its stderr,
and the run goes on. A benchmark in benchmarks/ missing from REGISTRY runs with its defaults
and is reported with "no registry entry".

Writes `<out-dir>/report.json` (the machine: CPU model, cores, RAM, load average, git
commit, date; then per benchmark its status, headline figures, target, met and its whole
JSON) and `<out-dir>/REPORT.md` (the same as a table). The scratch databases and Redis
databases are the benchmarks' own (see each script); `--redis-url` sets BENCH_REDIS_URL,
which every server benchmark then uses instead of its default Redis database. `--update`
reruns some benchmarks and keeps the others' entries of the existing report.
"""

import argparse
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
STDERR_TAIL = 2000

Check = Callable[[dict], bool]


def key(name: str) -> Check:
    """Met when the benchmark's own boolean `name` is true."""
    return lambda r: bool(lookup(r, name))


@dataclass(frozen=True)
class Benchmark:
    name: str
    headline: tuple[str, ...]  # dotted JSON keys
    target: str = ""  # "" when the benchmark has no target (a measurement)
    met: Check | None = None
    args: tuple[str, ...] = ()
    quick: tuple[str, ...] | None = ()  # None: skipped by --quick
    timeout: int = 900  # seconds, full run
    quick_timeout: int = 300
    env: dict[str, str] = field(default_factory=dict)


REGISTRY: tuple[Benchmark, ...] = (
    # No database: algorithms on numpy arrays.
    Benchmark(
        "attribution_models",
        ("all_models_seconds", "build_seconds", "max_rss_mb"),
        "all models on 1,000,000 paths < 60 s",
        lambda r: r["all_models_with_build_seconds"] < r["target_seconds"],
        quick=("--paths", "20000"),
        timeout=600,
    ),
    Benchmark(
        "bandit_regret",
        ("thompson_reduction_total", "thompson_reduction_min", "seconds"),
        "Thompson regret >= 60% below fixed A/B in every setting",
        key("thompson_at_least_60pct_less"),
        quick=("--rounds", "5000", "--seeds", "2"),
        timeout=900,
    ),
    Benchmark(
        "offer_bandit_quality",
        ("winner", "winner_vs_random", "winner_vs_oracle", "rank_cpu_20_candidates.mean_us"),
        "best ranker >= 1.5x random and >= 75% of oracle",
        lambda r: r["at_least_1_5x_random"] and r["within_25pct_of_oracle"],
        quick=("--rounds", "4000", "--ope-rounds", "1000", "--customers", "500"),
        timeout=1200,
    ),
    Benchmark(
        "segment_affinity_quality",
        ("mean.affinity.recall", "mean.past_buyers_segment.recall", "train_seconds"),
        "affinity segments recall more than past-buyers segments",
        key("affinity_beats_past_buyers"),
        quick=("--customers", "600", "--items", "120", "--days", "30"),
        timeout=600,
    ),
    Benchmark(
        "recommender_movielens",
        ("best", "best_ndcg@10", "best_over_als_default", "seconds"),
        "best NDCG@10 > BiVAE anchor 0.475 and >= 1.10x ALS default",
        key("ok"),
        quick=None,
        timeout=600,
    ),
    Benchmark(
        "recommender_train_1m",
        ("production_train_seconds", "models.hybrid.ndcg@10_truth", "seconds"),
        "every model trains on 1M interactions < 60 s",
        key("ok"),
        quick=None,
        timeout=900,
    ),
    # In-process against a scratch database.
    Benchmark(
        "simulate_store",
        ("events", "seconds", "events_per_s"),
        ">= 1,000,000 events generated and loaded < 60 s",
        key("ok"),
        quick=("--customers", "1000", "--items", "200", "--days", "14", "--events-target", "1"),
        env={"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/marketing_bench_simulate"},
    ),
    Benchmark(
        "import_interactions",
        ("rows", "seconds", "rows_per_s"),
        "1,000,000 rows imported < 120 s, second run imports nothing",
        key("ok"),
        quick=("--rows", "20000", "--users", "2000", "--items", "500"),
    ),
    Benchmark(
        "segment_import",
        ("ids.seconds", "emails.seconds", "ids.members"),
        "100,000-row CSV resolved < 20 s each",
        key("ok"),
        quick=("--rows", "5000", "--customers", "20000"),
    ),
    Benchmark(
        "segment_builder_latency",
        ("rules.profile.max_ms", "rules.purchase_2x_in_30_days.max_ms", "rules.nested_mix.max_ms"),
        "every live preview < 1,000 ms",
        key("ok"),
        quick=("--customers", "3000", "--items", "300", "--days", "30", "--repeat", "2"),
        timeout=1800,
    ),
    Benchmark(
        "segment_count",
        ("customers", "events", "orm.first_s", "orm.warm_median_s", "realtime_p99_ms"),
        "3-condition count over 1M customers / 20M events < 3 s",
        key("ok"),
        args=("--runs", "3"),
        quick=(
            "--customers",
            "20000",
            "--events",
            "200000",
            "--runs",
            "2",
            "--realtime",
            "20",
            "--append",
            "5000",
            "--reload",
        ),  # fmt: skip
        timeout=3600,
    ),
    Benchmark(
        "segment_clusters",
        ("customers_clustered", "k", "silhouette", "clustering_seconds"),
        quick=("--customers", "3000", "--items", "300", "--days", "14", "--k", "4"),
        timeout=1800,
    ),
    Benchmark(
        "dashboard_latency",
        ("events", "worst_p95_ms", "raw_count_30d.median_warm_ms"),
        "dashboard p95 < 300 ms with 20M events",
        key("target_met"),
        quick=("--customers", "20000", "--events", "200000", "--requests", "5", "--reload"),
        timeout=3600,
    ),
    Benchmark(
        "messages_rollup",
        ("messages", "minute_pass_ms", "hourly_recount_ms", "former_day_recount_ms"),
        quick=("--messages", "30000", "--days", "5", "--reload"),
        timeout=1200,
    ),
    Benchmark(
        "experiment_results",
        ("exposures", "events", "first_seconds", "median_seconds", "cuped_variance_reduction"),
        args=("--runs", "3"),
        quick=("--customers", "5000", "--events-per", "5", "--runs", "2", "--reload"),
        timeout=1800,
    ),
    Benchmark(
        "brand_health",
        (
            "mentions",
            "brand_health_7d_ms",
            "brand_health_30d_ms",
            "brand_health_90d_ms",
            "dashboard_panel_30d_ms",
        ),
        quick=("--posts", "20000", "--days", "30", "--reload"),
        timeout=1800,
    ),
    Benchmark(
        "attribution_report_db",
        ("events", "rows", "paths", "us_per_row"),
        quick=("--customers", "5000", "--events", "100000", "--runs", "1", "--reload"),
        timeout=1800,
    ),
    Benchmark(
        "template_render",
        ("contexts_per_s", "renders_per_s", "contexts_and_renders_per_s"),
        quick=("--customers", "1000", "--items", "300", "--batch", "500"),
    ),
    Benchmark(
        "tracking_endpoints",
        ("open_first_ms_median_p95", "click_ms_median_p95", "webhook_1000_events_ms"),
        quick=("--customers", "1500", "--requests", "100"),
    ),
    Benchmark(
        "social_ingest",
        ("posts_per_s", "repeat_posts_per_s", "cpu_us_per_post_python", "cpu_us_per_post_postgres"),
        ">= 5,000 posts/s scored (mentions, sentiment, aspects) and stored",
        key("ok"),
        quick=("--posts", "5000", "--customers", "2000"),
    ),
    # Servers (gunicorn, Celery workers, provider stand-ins) over loopback.
    Benchmark(
        "events_ingest",
        (
            "events_per_s",
            "features_lag_after_last_event_s",
            "http_errors",
            "ratio_endpoint_to_copy",
        ),
        ">= 20,000 events/s through the API, features within 5 s",
        key("ok"),
        quick=("--events", "20000", "--customers", "5000", "--items", "500", "--workers", "2"),
    ),
    Benchmark(
        "recommendations_latency",
        ("api.achieved_rps", "api.p50_ms", "api.p99_ms", "api.non_200"),
        "p99 < 25 ms at 300 req/s",
        key("ok"),
        quick=(
            "--customers",
            "2000",
            "--items",
            "300",
            "--days",
            "14",
            "--seconds",
            "5",
            "--rate",
            "100",
            "--workers",
            "2",
        ),  # fmt: skip
    ),
    Benchmark(
        "offer_rank_latency",
        ("rank.achieved_rps", "rank.p50_ms", "rank.p99_ms", "rank.non_200"),
        "p99 < 30 ms at 200 req/s, 20 candidates",
        key("ok"),
        quick=(
            "--customers",
            "2000",
            "--requests",
            "500",
            "--rate",
            "100",
            "--train-rounds",
            "2000",
            "--workers",
            "2",
        ),  # fmt: skip
    ),
    Benchmark(
        "offer_api_learning",
        (
            "learned_x_random",
            "learned_of_oracle",
            "learned_of_customer_oracle",
            "x_random",
            "api_ms.rank_p99",
        ),
        "learned ranking >= 1.5x random and >= 75% of the per-request oracle",
        key("ok"),
        quick=(
            "--rounds",
            "3000",
            "--learn-every",
            "1000",
            "--window",
            "1000",
            "--customers",
            "500",
        ),  # fmt: skip
        timeout=1800,
    ),
    Benchmark(
        "experiment_assign_latency",
        ("assign.achieved_rps", "assign.p50_ms", "assign.p99_ms", "assign.non_200"),
        "p99 < 5 ms at 200 req/s",
        key("ok"),
        args=("--requests", "20000", "--rate", "200"),
        quick=("--customers", "2000", "--requests", "1000", "--rate", "100", "--workers", "2"),
    ),
    Benchmark(
        "provider_throughput",
        (
            "sendgrid_client_batched.emails_per_s",
            "sendgrid_client.emails_per_s",
            "keep_alive_http_client.emails_per_s",
        ),
        ">= 1,000 emails/s handed to SendGrid (as dispatch sends: batched)",
        key("ok"),
        quick=("--emails", "500"),
    ),
    Benchmark(
        "campaign_throughput",
        ("emails_per_s", "emails_per_s_if_2_cores_idle", "duplicates", "failed"),
        ">= 1,000 personalized emails/s, no duplicate",
        lambda r: r["emails_per_s"] >= r["target_emails_per_s"] and r["duplicates"] == 0,
        quick=("--recipients", "2000"),
    ),
    Benchmark(
        "campaign_crash",
        ("recipients", "unique_delivered", "lost", "duplicates"),
        "worker SIGKILLed mid-send: 0 lost, 0 sent twice",
        lambda r: r["lost"] == 0 and r["duplicates"] == 0,
        quick=("--recipients", "3000"),
        timeout=1800,
    ),
    Benchmark(
        "load_mix",
        ("rps", "events_per_s", "p50_ms", "p99_ms", "error_rate"),
        "mixed storefront + marketer load: no errors",
        lambda r: r["failures"] == 0 and r["requests"] > 0,
        quick=(
            "--users",
            "6",
            "--seconds",
            "10",
            "--customers",
            "1000",
            "--items",
            "200",
            "--days",
            "14",
        ),  # fmt: skip
        timeout=900,
    ),
    Benchmark(
        "scale_out",
        (
            "web.speedup",
            "web.rps_1",
            "web.rps_2",
            "worker.speedup",
            "worker.emails_per_s_1",
            "worker.emails_per_s_2",
        ),  # fmt: skip
        "1 -> 2 processes: speedup > 1 (web and Celery)",
        lambda r: r["web"]["speedup"] > 1 and r["worker"]["speedup"] > 1,
        quick=("--quick",),
        timeout=1800,
        quick_timeout=600,
    ),
)


def lookup(data: Any, dotted: str) -> Any:
    """data["a"]["b"] for "a.b"; a key may itself hold dots ("ndcg@10" does not, but
    "best_ndcg@10" would), so the longest matching key wins at each level."""
    if not dotted:
        return data
    if isinstance(data, dict):
        if dotted in data:
            return data[dotted]
        parts = dotted.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            head = ".".join(parts[:cut])
            if head in data:
                return lookup(data[head], ".".join(parts[cut:]))
    raise KeyError(dotted)


def discover() -> list[str]:
    return sorted(
        p.stem for p in HERE.glob("*.py") if not p.name.startswith("_") and p.stem != "run_all"
    )


def machine() -> dict:
    """What the figures were measured on."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip()

    return {
        "cpu_model": cpu or platform.processor(),
        "cores": os.cpu_count(),
        "ram_gb": ram_gb,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "date": datetime.now(tz=UTC).isoformat(timespec="seconds"),
    }


def _descendants(pid: int) -> list[int]:
    """Every process below `pid` (servers the benchmark started in their own sessions too)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the benchmark, its process group and every process it started, then SIGKILL
    whatever is left after 10 s."""
    pids = [proc.pid, *_descendants(proc.pid)]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, sig) if pid == proc.pid else os.kill(pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        if sig == signal.SIGTERM:
            time.sleep(1)


def run_one(bench: Benchmark, *, quick: bool, timeout_scale: float, env: dict) -> dict:
    args = list(bench.quick if quick and bench.quick is not None else bench.args)
    timeout = (bench.quick_timeout if quick else bench.timeout) * timeout_scale
    command = [sys.executable, str(HERE / f"{bench.name}.py"), *args]
    entry: dict[str, Any] = {
        "benchmark": bench.name,
        "args": args,
        "target": bench.target,
        "timeout_seconds": round(timeout),
        "quick": quick,
        "date": datetime.now(tz=UTC).isoformat(timespec="seconds"),
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
    }
    started = time.monotonic()
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**env, **bench.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        _stop(proc)
        stdout, stderr = proc.communicate()
        timed_out = True
    entry["seconds"] = round(time.monotonic() - started, 1)
    entry["returncode"] = proc.returncode
    result = None
    lines = [line for line in (stdout or "").splitlines() if line.strip()]
    if lines:
        try:
            result = json.loads(lines[-1])
        except json.JSONDecodeError:
            result = None
    if timed_out:
        entry["status"], entry["error"] = "failed", f"timed out after {timeout:.0f} s"
    elif proc.returncode != 0:
        entry["status"], entry["error"] = "failed", f"exit code {proc.returncode}"
    elif not isinstance(result, dict):
        entry["status"], entry["error"] = "failed", "no JSON object on the last line"
    else:
        entry["status"] = "ok"
    if entry["status"] == "failed":
        entry["stderr_tail"] = (stderr or "")[-STDERR_TAIL:]
        entry["stdout_tail"] = "\n".join(lines[-5:])[-STDERR_TAIL:]
        entry["met"] = None
        entry["headline"] = {}
        return entry
    entry["result"] = result
    _judge(entry, bench)
    return entry


def _judge(entry: dict, bench: Benchmark) -> None:
    """The entry's headline figures, target and whether it was met, from its JSON."""
    entry["headline"] = headline_figures(bench, entry["result"])
    entry["target"] = bench.target
    entry.pop("met_error", None)
    try:
        entry["met"] = bool(bench.met(entry["result"])) if bench.met else None
    except (KeyError, TypeError, ZeroDivisionError) as error:
        entry["met"] = None
        entry["met_error"] = f"{type(error).__name__}: {error}"


def headline_figures(bench: Benchmark, result: dict) -> dict:
    figures = {}
    for name in bench.headline:
        try:
            figures[name] = lookup(result, name)
        except (KeyError, TypeError):
            figures[name] = None
    return figures


def _refresh_headlines(report: dict, registry: dict[str, Benchmark]) -> None:
    """Judge kept entries again from their JSON with the current registry (headline figures,
    target, met): a registry change applies without rerunning them."""
    for entry in report["benchmarks"]:
        if entry.get("result") and entry["benchmark"] in registry:
            _judge(entry, registry[entry["benchmark"]])


def _format(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, dict | list):
        text = json.dumps(value, separators=(",", ":"))
        return text if len(text) <= 120 else text[:117] + "..."
    return str(value)


def _commits_line(report: dict) -> list[str]:
    """Which commit each entry ran on, when an --update mixed several."""
    by_commit: dict[str, list[str]] = {}
    for entry in report["benchmarks"]:
        commit = (entry.get("git_commit") or "")[:12] or "not recorded"
        by_commit.setdefault(commit, []).append(entry["benchmark"])
    if len(by_commit) < 2:
        return []
    return [
        "- Commits: "
        + "; ".join(f"`{commit}`: {', '.join(names)}" for commit, names in by_commit.items())
    ]


def markdown(report: dict) -> str:
    m = report["machine"]
    quick = [e["benchmark"] for e in report["benchmarks"] if e.get("quick", report["quick"])]
    mixed = bool(quick) and len(quick) < len(report["benchmarks"])
    if mixed:
        mode = "mixed run (the entries marked (quick) ran at small sizes)"
    else:
        mode = "quick run (small sizes, a smoke test)" if quick else "full run"
    lines = [
        f"# Benchmark report: {mode}",
        "",
        f"- Date: {m['date']}; git commit `{m['git_commit'][:12]}`"
        + (" (with uncommitted changes)" if m["git_dirty"] else ""),
        f"- Machine: {m['cpu_model']}, {m['cores']} cores, {m['ram_gb']} GB RAM; "
        f"Python {m['python']}",
        f"- Load average at start (1/5/15 min): {', '.join(map(str, m['load_average']))}; "
        f"at the end: {', '.join(map(str, report['load_average_at_end']))}",
        f"- {report['summary']}",
        *(
            [
                f"- Updated (--update) from a report of {report['updated_from']}: each entry's "
                "date and load average are in report.json"
            ]
            if report.get("updated_from")
            else []
        ),
        *_commits_line(report),
        "",
        "| benchmark | key figures | target | met? | s |"
        if not quick
        else "| benchmark | key figures | target (at full size) | met at the size run? | s |",
        "|---|---|---|---|---|",
    ]
    for entry in report["benchmarks"]:
        if entry["status"] == "failed":
            figures = f"**failed**: {entry['error']}"
            met = "failed"
        else:
            figures = "; ".join(f"{k} {_format(v)}" for k, v in entry["headline"].items())
            met = {True: "yes", False: "**no**", None: "–"}[entry["met"]]
        target = entry["target"] or "(measurement)"
        name = entry["benchmark"] + (" (quick)" if mixed and entry["benchmark"] in quick else "")
        lines.append(
            f"| {name} | {figures.replace('|', '/')} | {target} | {met} | {entry['seconds']:.0f} |"
        )
    lines += ["", "Full figures: report.json beside this file (`make bench` rewrites both).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    parser.add_argument("--skip", default="", help="comma-separated benchmark names")
    parser.add_argument("--out-dir", type=Path, default=HERE)
    parser.add_argument("--timeout-scale", type=float, default=1.0)
    parser.add_argument("--redis-url", default="", help="BENCH_REDIS_URL for the benchmarks")
    parser.add_argument("--list", action="store_true", help="print the registry and stop")
    parser.add_argument(
        "--update",
        action="store_true",
        help="keep the other benchmarks of the existing report.json, replace those run now",
    )
    parser.add_argument(
        "--markdown-only",
        action="store_true",
        help="rewrite REPORT.md (and the headline figures) from report.json",
    )
    args = parser.parse_args(argv)
    registry = {b.name: b for b in REGISTRY}
    if args.markdown_only:
        report = json.loads((args.out_dir / "report.json").read_text())
        _refresh_headlines(report, registry)
        (args.out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        (args.out_dir / "REPORT.md").write_text(markdown(report))
        return 0

    for name in discover():
        registry.setdefault(
            name, Benchmark(name, (), "no registry entry: run with its defaults", quick=None)
        )
    only = [n for n in args.only.split(",") if n]
    skip = {n for n in args.skip.split(",") if n}
    unknown = sorted((set(only) | skip) - set(registry))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(registry)}")
    chosen = [registry[n] for n in (only or registry) if n not in skip]
    if args.quick and not only:
        chosen = [b for b in chosen if b.quick is not None]
    if args.list:
        for b in chosen:
            print(f"{b.name:<28} {b.target or '(measurement)'}")  # noqa: T201
        return 0

    env = dict(os.environ)
    if args.redis_url:
        env["BENCH_REDIS_URL"] = args.redis_url
    env.setdefault("PYTHONUNBUFFERED", "1")
    report: dict[str, Any] = {"quick": args.quick, "machine": machine(), "benchmarks": []}
    existing = args.out_dir / "report.json"
    if args.update and existing.exists():
        # keep the other entries of the previous report; those run now replace theirs
        previous = json.loads(existing.read_text())
        rerun = {b.name for b in chosen}
        report["benchmarks"] = [e for e in previous["benchmarks"] if e["benchmark"] not in rerun]
        report["updated_from"] = previous.get("machine", {}).get("date")
        report["quick"] = args.quick and previous.get("quick", False)
        _refresh_headlines(report, registry)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for bench in chosen:
        sys.stderr.write(f"[run_all] {bench.name} ...\n")
        entry = run_one(bench, quick=args.quick, timeout_scale=args.timeout_scale, env=env)
        sys.stderr.write(
            f"[run_all] {bench.name}: {entry['status']} in {entry['seconds']} s"
            + (f" ({entry['error']})" if entry["status"] == "failed" else "")
            + "\n"
        )
        entry["git_commit"] = report["machine"]["git_commit"]
        report["benchmarks"].append(entry)
        _write(report, args.out_dir)  # after each one, so an interrupted run keeps its figures
    _write(report, args.out_dir)
    failed = [e["benchmark"] for e in report["benchmarks"] if e["status"] == "failed"]
    print(json.dumps({"report": str(args.out_dir / "report.json"), **_counts(report)}))  # noqa: T201
    return 1 if failed else 0


def _counts(report: dict) -> dict:
    entries = report["benchmarks"]
    return {
        "ran": len(entries),
        "failed": [e["benchmark"] for e in entries if e["status"] == "failed"],
        "targets_met": sum(1 for e in entries if e["met"] is True),
        "targets_missed": [e["benchmark"] for e in entries if e["met"] is False],
    }


def _write(report: dict, out_dir: Path) -> None:
    counts = _counts(report)
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report["finished_at"] = datetime.now(tz=UTC).isoformat(timespec="seconds")
    report["summary"] = (
        f"{counts['ran']} benchmarks, {len(counts['failed'])} failed, "
        f"{counts['targets_met']} targets met, {len(counts['targets_missed'])} missed"
    )
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / "REPORT.md").write_text(markdown(report))


if __name__ == "__main__":
    sys.exit(main())
