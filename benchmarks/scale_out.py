"""Scale-out on this machine: throughput with 1 and then 2 processes, for the web tier and
for a Celery worker.

    .venv/bin/python benchmarks/scale_out.py [--seconds 30 --users 8 --recipients 10000]
        [--rounds 1] [--quick]

- Web: benchmarks/load_mix.py closed loop (no think time, `--users` users) against gunicorn
  with 1 sync worker, then 2, on the same scratch store (the second run reuses it): total
  requests/s of the whole mix.
- Worker: benchmarks/campaign_throughput.py (a campaign of `--recipients` personalized emails
  rendered and handed to the SendGrid stand-in) with a Celery worker of 1 pool process, then
  2: emails/s, and the CPU per email.

With `--rounds 2` or more the order alternates (1, 2, then 2, 1, ...) and the median of each
is reported, which evens out the drift of a machine other work is loading. The load
average before each run is recorded: on 2 cores the second process only helps while a core
is idle, so the speedup measured here is a floor. JSON on the last line.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
WEB_DB = "marketing_bench_scale_out_web"
WORKER_DB = "marketing_bench_scale_out_worker"


def _run(script: str, args: list[str], timeout: float) -> dict:
    load = [round(x, 2) for x in os.getloadavg()]
    done = subprocess.run(
        [sys.executable, str(HERE / script), *args],
        cwd=HERE.parent,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 or not lines:
        sys.stderr.write(done.stderr[-3000:])
        raise SystemExit(f"{script} {' '.join(args)} failed with exit code {done.returncode}")
    result = json.loads(lines[-1])
    result["load_average_before"] = load
    return result


def _order(rounds: int) -> list[int]:
    out: list[int] = []
    for r in range(rounds):
        out += [1, 2] if r % 2 == 0 else [2, 1]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=30, help="each web run")
    parser.add_argument("--users", type=int, default=8, help="locust users, closed loop")
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.users, args.customers, args.recipients = 8, 4, 1000, 1500

    web_runs: dict[int, list[dict]] = {1: [], 2: []}
    loaded = False
    for workers in _order(args.rounds):
        run_args = [
            "--workers", str(workers), "--users", str(args.users), "--think", "0",
            "--seconds", str(args.seconds), "--customers", str(args.customers),
            "--items", "300" if args.quick else "500", "--days", "14" if args.quick else "30",
            "--db", WEB_DB,
        ]  # fmt: skip
        if loaded:
            run_args.append("--keep")
        web_runs[workers].append(_run("load_mix.py", run_args, timeout=args.seconds + 900))
        loaded = True

    worker_runs: dict[int, list[dict]] = {1: [], 2: []}
    for workers in _order(args.rounds):
        run_args = ["--workers", str(workers), "--recipients", str(args.recipients)]
        run_args += ["--db", WORKER_DB]
        worker_runs[workers].append(_run("campaign_throughput.py", run_args, timeout=1200))

    def median(runs: list[dict], name: str) -> float:
        return round(statistics.median(r[name] for r in runs), 1)

    web = {f"rps_{n}": median(web_runs[n], "rps") for n in (1, 2)}
    web |= {f"p99_ms_{n}": median(web_runs[n], "p99_ms") for n in (1, 2)}
    web |= {
        f"server_cpu_ms_per_request_{n}": median(web_runs[n], "server_cpu_ms_per_request")
        for n in (1, 2)
    }
    web["speedup"] = round(web["rps_2"] / max(web["rps_1"], 1e-9), 2)
    web["failures"] = sum(r["failures"] for runs in web_runs.values() for r in runs)
    web["runs"] = {
        n: [
            {
                k: r[k]
                for k in ("rps", "p50_ms", "p99_ms", "failures", "server_cpu_ms_per_request")
                + ("load_average_before",)
            }
            for r in web_runs[n]
        ]
        for n in (1, 2)
    }
    worker = {f"emails_per_s_{n}": median(worker_runs[n], "emails_per_s") for n in (1, 2)}
    worker["speedup"] = round(worker["emails_per_s_2"] / max(worker["emails_per_s_1"], 1e-9), 2)
    worker["duplicates"] = sum(r["duplicates"] for runs in worker_runs.values() for r in runs)
    worker["runs"] = {
        n: [
            {
                k: r[k]
                for k in ("emails_per_s", "seconds", "cpu_ms_per_email", "load_average_before")
            }
            for r in worker_runs[n]
        ]
        for n in (1, 2)
    }
    result = {
        "benchmark": "scale_out",
        "quick": args.quick,
        "rounds": args.rounds,
        "web": {"job": f"load_mix, {args.users} users, no think time, {args.seconds} s", **web},
        "worker": {"job": f"campaign_throughput, {args.recipients} emails", **worker},
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result))  # noqa: T201 - a benchmark reports on stdout


if __name__ == "__main__":
    main()
