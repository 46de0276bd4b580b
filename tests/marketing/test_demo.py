"""What `make demo` chooses for PostgreSQL and Redis, and the probes it decides with."""

import ast
import io
import socket
from pathlib import Path

import environ
import psycopg
import pytest
from django.core.management import call_command

from marketing import demo_env
from marketing.demo_env import Choice, Source

ROOT = Path(__file__).resolve().parents[2]


def _must_not_probe():
    raise AssertionError("probed although the environment names a URL")


def test_database_from_env_is_used_without_probing():
    choice = demo_env.choose_database(
        environ={"DATABASE_URL": "postgres://u:p@db.example:6543/shop"},
        probe_local=_must_not_probe,
    )
    assert choice == Choice(
        Source.ENV, "postgres://u:p@db.example:6543/shop", "DATABASE_URL is set"
    )


def test_database_on_localhost_uses_the_user_that_logged_in():
    choice = demo_env.choose_database(
        environ={"DATABASE_URL": "  "}, probe_local=lambda: "postgres"
    )
    assert choice == Choice(
        Source.LOCAL,
        "postgres://postgres@127.0.0.1:5432/marketing",
        "PostgreSQL answers on 127.0.0.1:5432 (user postgres)",
    )


def test_database_on_a_probed_port_other_than_5432():
    choice = demo_env.choose_database(environ={}, probe_local=lambda: "alice", port=5999)
    assert choice.source == Source.LOCAL
    assert choice.url == "postgres://alice@127.0.0.1:5999/marketing"


def test_database_is_embedded_when_nothing_answers():
    choice = demo_env.choose_database(environ={}, probe_local=lambda: None)
    assert choice == Choice(Source.EMBEDDED, "", "nothing answers on 127.0.0.1:5432")


def test_redis_from_env_is_used_without_probing():
    choice = demo_env.choose_redis(
        environ={"REDIS_URL": "redis://cache:6379/3"}, probe_local=_must_not_probe
    )
    assert choice == Choice(Source.ENV, "redis://cache:6379/3", "REDIS_URL is set")


def test_redis_on_localhost_when_it_answers_ping():
    choice = demo_env.choose_redis(environ={}, probe_local=lambda: True)
    assert choice == Choice(
        Source.LOCAL, "redis://127.0.0.1:6379/0", "Redis answers PING on 127.0.0.1:6379"
    )


def test_redis_is_embedded_when_nothing_answers():
    choice = demo_env.choose_redis(environ={"REDIS_URL": ""}, probe_local=lambda: False, port=6999)
    assert choice == Choice(Source.EMBEDDED, "", "nothing answers PING on 127.0.0.1:6999")


def test_socket_url_parses_to_a_host_option_as_settings_reads_it():
    url = demo_env.socket_database_url(
        socket_dir="/work/main/.data/pgdata", port=5432, user="postgres", dbname="marketing"
    )
    assert url == "postgres://postgres@/marketing?host=%2Fwork%2Fmain%2F.data%2Fpgdata"
    config = environ.Env.db_url_config(url)
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert config["NAME"] == "marketing"
    assert config["HOST"] == ""
    assert config["OPTIONS"] == {"host": "/work/main/.data/pgdata"}
    assert demo_env.psycopg_params(url) == {
        "dbname": "marketing",
        "user": "postgres",
        "host": "/work/main/.data/pgdata",
    }


def test_socket_url_names_a_port_other_than_5432():
    url = demo_env.socket_database_url(socket_dir="/s", port=5433, user="pg", dbname="m")
    assert url == "postgres://pg@/m?host=%2Fs&port=5433"
    assert demo_env.psycopg_params(url) == {"dbname": "m", "user": "pg", "host": "/s", "port": 5433}


def test_psycopg_params_of_a_tcp_url_keep_password_and_options():
    params = demo_env.psycopg_params(
        "postgres://u:p%40x@127.0.0.1:5432/shop?sslmode=disable", dbname="postgres"
    )
    assert params == {
        "dbname": "postgres",
        "user": "u",
        "password": "p@x",
        "host": "127.0.0.1",
        "port": 5432,
        "sslmode": "disable",
    }


@pytest.mark.parametrize(
    ("redis_url", "broker"),
    [
        ("redis://127.0.0.1:6379/0", None),
        ("rediss://cache:6380/1", None),
        ("unix:///tmp/redis.sock?db=2", "redis+socket:///tmp/redis.sock?virtual_host=2"),
        ("unix:///tmp/redis.sock", "redis+socket:///tmp/redis.sock?virtual_host=0"),
    ],
)
def test_celery_broker_url_only_for_unix_sockets(redis_url, broker):
    assert demo_env.celery_broker_url(redis_url) == broker


def _listening_socket():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_probe_postgres_finds_the_machines_server_and_skips_unknown_roles():
    user = demo_env.probe_postgres(
        host="127.0.0.1", port=5432, users=["no_such_role_demo_h3", "postgres"]
    )
    assert user == "postgres"


def test_probe_postgres_on_a_port_where_nothing_listens():
    assert (
        demo_env.probe_postgres(host="127.0.0.1", port=_closed_port(), users=["postgres"]) is None
    )


def test_probe_postgres_on_a_port_that_is_not_postgres():
    with _listening_socket() as sock:
        port = sock.getsockname()[1]
        sock.settimeout(0.1)
        assert demo_env.probe_postgres(host="127.0.0.1", port=port, users=["postgres"]) is None


def test_probe_redis_answers_on_the_machines_server():
    assert demo_env.probe_redis(host="127.0.0.1", port=6379) is True


def test_probe_redis_on_a_port_where_nothing_listens():
    assert demo_env.probe_redis(host="127.0.0.1", port=_closed_port()) is False


def test_free_port_skips_a_port_in_use():
    with _listening_socket() as sock:
        taken = sock.getsockname()[1]
        assert demo_env.port_is_free(taken) is False
        port = demo_env.free_port(taken)
    assert port > taken
    assert demo_env.port_is_free(port) is True


@pytest.fixture
def scratch_database_url():
    url = "postgres://postgres@127.0.0.1:5432/marketing_h3_demo_ensure"
    yield url
    with psycopg.connect(
        host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True
    ) as conn:
        conn.execute("DROP DATABASE IF EXISTS marketing_h3_demo_ensure")


def test_database_ensure_creates_a_missing_database_once(scratch_database_url):
    assert demo_env.database_ensure(scratch_database_url) is True
    assert demo_env.database_ensure(scratch_database_url) is False
    with psycopg.connect(**demo_env.psycopg_params(scratch_database_url)) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("marketing_h3_demo_ensure",)


def _settings_variables() -> set[str]:
    """Names passed to env(...), env.int(...) etc. in marketing/settings.py."""
    tree = ast.parse((ROOT / "marketing" / "settings.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        is_env = (isinstance(func, ast.Name) and func.id == "env") or (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id == "env"
        )
        first = node.args[0]
        if is_env and isinstance(first, ast.Constant) and isinstance(first.value, str):
            names.add(first.value)
    return names


def test_env_example_lists_every_variable_settings_reads():
    lines = (ROOT / ".env.example").read_text().splitlines()
    listed = {line.split("=", 1)[0] for line in lines if line and not line.startswith("#")}
    assert sorted(_settings_variables() - listed) == []
    assert "DATABASE_URL" in listed


def test_demo_admin_creates_the_three_logins_and_updates_them_on_a_rerun(db, django_user_model):
    call_command("demo_admin", password="first-pass-123", stdout=io.StringIO())
    out = io.StringIO()
    call_command("demo_admin", password="second-pass-456", stdout=out)

    users = {u.username: u for u in django_user_model.objects.prefetch_related("groups")}
    assert sorted(users) == ["admin", "analyst", "marketer"]
    assert [g.name for g in users["admin"].groups.all()] == ["Admin"]
    assert [g.name for g in users["marketer"].groups.all()] == ["Marketer"]
    assert [g.name for g in users["analyst"].groups.all()] == ["Analyst"]
    assert (users["admin"].is_superuser, users["admin"].is_staff) == (True, True)
    assert (users["marketer"].is_superuser, users["analyst"].is_superuser) == (False, False)
    assert all(u.check_password("second-pass-456") for u in users.values())
    assert "admin     / second-pass-456   (superuser, group Admin)" in out.getvalue()
