""" "The database is ready for my app", not only "the port answers": waitfor logs in to the
real PostgreSQL (password, MD5, SCRAM-SHA-256), MariaDB and Redis the tests start, and
waits for a query's row, a table or a key that the app's migrations create. Each case
waits while the thing is missing, sees it appear, and says why it was not ready; a
wrong password is said and never printed."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.helpers import json_events, ready_after, run_waitfor, usage_error
from tests.integration.servers import (
    HOST,
    MARIADB_APP_PASSWORD,
    MARIADB_APP_USER,
    POSTGRES_LOGINS,
    REDIS_PASSWORD,
    MariaDB,
    Postgres,
    Redis,
)

pytestmark = pytest.mark.integration

FAIL_FAST = ("--timeout", "2s", "--attempt-timeout", "1s", "--interval", "200ms", "--json")
WAIT = ("--timeout", "30s", "--interval", "200ms", "--json")


def events(stderr: str, message: str) -> list[dict[str, Any]]:
    return [e for e in json_events(stderr) if e["message"] == message]


def waits_until(argv: list[str], make_ready: Any, *, missing: str) -> dict[str, Any]:
    return ready_after([*WAIT, *argv], make_ready, missing=missing)[0]


def last_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 124, result.stderr
    (summary,) = events(result.stderr, "summary")
    return str(summary["last_error"])


# --- PostgreSQL -------------------------------------------------------------------------


def pg(server: Postgres, user: str = "postgres", password: str | None = None,
       database: str = "postgres", options: str = "") -> str:  # fmt: skip
    secret = f":{quote(password, safe='')}" if password is not None else ""
    return f"postgres://{user}{secret}@{HOST}:{server.port}/{database}{options}"


@pytest.mark.parametrize("user", sorted(POSTGRES_LOGINS))
def test_postgres_logs_in_by_the_method_the_server_asks_for(
    user: str, postgres_server: Postgres
) -> None:
    """password (cleartext), md5 and scram-sha-256, as pg_hba.conf says for each role."""
    password = POSTGRES_LOGINS[user][2]
    target = pg(postgres_server, user, password, options="#query=SELECT current_user")
    result = run_waitfor(*FAIL_FAST, target)
    assert result.returncode == 0, result.stderr
    (ready,) = events(result.stderr, "ready")
    assert ready["detail"] == "query: 1 row"
    assert password not in result.stderr


@pytest.mark.parametrize("user", sorted(POSTGRES_LOGINS))
def test_postgres_wrong_password_is_not_ready_and_never_printed(
    user: str, postgres_server: Postgres
) -> None:
    target = pg(postgres_server, user, "Wrong-Pw-77", options="#query=SELECT 1")
    result = run_waitfor(*FAIL_FAST, target)
    error = last_error(result)
    assert error.startswith("login refused: password authentication failed for user"), error
    assert "(28P01)" in error
    assert "Wrong-Pw-77" not in result.stderr


def test_postgres_without_a_password_says_to_give_one(postgres_server: Postgres) -> None:
    result = run_waitfor(*FAIL_FAST, pg(postgres_server, "scram_user", options="#table=t"))
    assert last_error(result) == (
        "the server asks user 'scram_user' for a password: give it in the URI or as #password-file="
    )


def test_postgres_password_from_a_file_read_at_each_attempt(
    postgres_server: Postgres, tmp_path: Path
) -> None:
    """A Secret rotated while waitfor waits: the next attempt reads the new password."""
    user = "md5_user"
    secret = tmp_path / "password"
    secret.write_text("stale-password\n")
    target = pg(postgres_server, user, options=f"#query=SELECT 1&password-file={secret}")
    ready = waits_until(
        [target], lambda: secret.write_text(POSTGRES_LOGINS[user][2] + "\n"),
        missing="password authentication failed",
    )  # fmt: skip
    assert ready["detail"] == "query: 1 row"


def test_postgres_waits_for_the_table_the_migrations_create(postgres_server: Postgres) -> None:
    postgres_server.sql("DROP TABLE IF EXISTS shop.orders; CREATE SCHEMA IF NOT EXISTS shop")
    target = pg(postgres_server, options="#table=shop.orders")
    ready = waits_until(
        [target], lambda: postgres_server.sql("CREATE TABLE shop.orders (id int)"),
        missing="table shop.orders returned no rows",
    )  # fmt: skip
    assert ready["detail"] == "table shop.orders: 1 row"


def test_postgres_waits_for_the_query_to_return_a_row(postgres_server: Postgres) -> None:
    """The usual "migrations have run": a version row. A failing query is not ready with
    the server's message; no row is not ready."""
    postgres_server.sql("DROP TABLE IF EXISTS schema_migrations")
    query = quote("SELECT 1 FROM schema_migrations WHERE version = '42'", safe="=' ")
    target = pg(postgres_server, options=f"#query={query}")
    result = run_waitfor(*FAIL_FAST, target)
    assert last_error(result) == (
        'query failed: relation "schema_migrations" does not exist (42P01)'
    )
    postgres_server.sql("CREATE TABLE schema_migrations (version text)")
    ready = waits_until(
        [target],
        lambda: postgres_server.sql("INSERT INTO schema_migrations VALUES ('42')"),
        missing="query returned no rows",
    )
    assert ready["detail"] == "query: 1 row"


def test_postgres_database_not_created_yet_is_not_ready(postgres_server: Postgres) -> None:
    postgres_server.sql("DROP DATABASE IF EXISTS shopdb")
    target = pg(postgres_server, database="shopdb", options="#table=pg_class")
    ready = waits_until(
        [target], lambda: postgres_server.sql("CREATE DATABASE shopdb"),
        missing='cannot log in: database \\"shopdb\\" does not exist (3D000)',
    )  # fmt: skip
    assert ready["detail"] == "table pg_class: 1 row"


def test_postgres_without_a_query_keeps_pg_isready_rule(postgres_server: Postgres) -> None:
    """No query: no login (a wrong password does not matter), as pg_isready."""
    result = run_waitfor(*FAIL_FAST, pg(postgres_server, "scram_user", "wrong"))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ("#query=SELECT 1&table=t", "give #query= or #table=, not both"),
        ("#query=", "option query: empty"),
        ("#table=%20", "option table: empty"),
        ("#querry=SELECT 1", "unknown option 'querry'"),
    ],
)
def test_postgres_bad_options_are_usage_errors(options: str, problem: str) -> None:
    assert problem in usage_error(f"postgres://{HOST}:5432/db{options}")


# --- MariaDB (mysql://, mariadb://) ------------------------------------------------------


def my(server: MariaDB, password: str | None = MARIADB_APP_PASSWORD, database: str = "",
       options: str = "", scheme: str = "mysql") -> str:  # fmt: skip
    secret = f":{quote(password, safe='')}" if password is not None else ""
    path = f"/{database}" if database else ""
    return f"{scheme}://{MARIADB_APP_USER}{secret}@{HOST}:{server.port}{path}{options}"


def test_mariadb_waits_for_the_table_the_migrations_create(mariadb_server: MariaDB) -> None:
    mariadb_server.sql("DROP DATABASE IF EXISTS shop; CREATE DATABASE shop")
    target = my(mariadb_server, database="shop", options="#table=orders")
    ready = waits_until(
        [target], lambda: mariadb_server.sql("CREATE TABLE shop.orders (id int)"),
        missing="table orders returned no rows",
    )  # fmt: skip
    assert ready["detail"] == "table orders: 1 row"


def test_mariadb_table_names_its_database_or_takes_the_uris(mariadb_server: MariaDB) -> None:
    mariadb_server.sql("CREATE DATABASE IF NOT EXISTS billing; "
                       "CREATE TABLE IF NOT EXISTS billing.invoices (id int)")  # fmt: skip
    result = run_waitfor(*FAIL_FAST, my(mariadb_server, options="#table=billing.invoices",
                                        scheme="mariadb"))  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_mariadb_waits_for_the_query_to_return_a_row(mariadb_server: MariaDB) -> None:
    mariadb_server.sql("DROP DATABASE IF EXISTS mig; CREATE DATABASE mig")
    query = quote("SELECT version FROM schema_migrations WHERE version = '42'", safe="=' ")
    target = my(mariadb_server, database="mig", options=f"#query={query}")
    result = run_waitfor(*FAIL_FAST, target)
    assert last_error(result) == "query failed: Table 'mig.schema_migrations' doesn't exist (1146)"
    mariadb_server.sql("CREATE TABLE mig.schema_migrations (version varchar(20))")
    ready = waits_until(
        [target],
        lambda: mariadb_server.sql("INSERT INTO mig.schema_migrations VALUES ('41'), ('42')"),
        missing="query returned no rows",
    )
    assert ready["detail"] == "query: 1 row"


def test_mariadb_unknown_database_and_wrong_password_are_not_ready(
    mariadb_server: MariaDB,
) -> None:
    mariadb_server.sql("DROP DATABASE IF EXISTS later")
    later = my(mariadb_server, database="later", options="#query=SELECT 1")
    result = run_waitfor(*FAIL_FAST, later)
    assert last_error(result) == "login refused: Unknown database 'later' (1049)"
    result = run_waitfor(*FAIL_FAST, my(mariadb_server, "Wrong-Pw-55", options="#query=SELECT 1"))
    error = last_error(result)
    assert error.startswith("login refused: Access denied for user 'app'@"), error
    assert error.endswith("(1045)") and "Wrong-Pw-55" not in result.stderr


def test_mariadb_password_from_a_file(mariadb_server: MariaDB, tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text(MARIADB_APP_PASSWORD + "\n")
    target = my(mariadb_server, None, options=f"#query=SELECT 1&password-file={secret}")
    result = run_waitfor(*FAIL_FAST, target)
    assert result.returncode == 0, result.stderr
    assert events(result.stderr, "ready")[0]["detail"] == "query: 1 row"


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ("#table=orders", "option table: which database? mysql://host/DB#table=NAME"),
        ("/shop#table=or'ders", 'option table: "or\'ders": NAME or DB.NAME'),
        ("/shop#table=a.b.c", "NAME or DB.NAME"),
        ("#query=SELECT 1&table=t", "give #query= or #table=, not both"),
    ],
)
def test_mariadb_bad_options_are_usage_errors(options: str, problem: str) -> None:
    assert problem in usage_error(f"mysql://{HOST}:3306{options}")


# --- Redis ------------------------------------------------------------------------------


def test_redis_waits_for_a_key(redis_server: Redis) -> None:
    redis_server.cli("DEL", "app:migrated")
    target = f"redis://{HOST}:{redis_server.port}#key=app:migrated"
    ready = waits_until([target], lambda: redis_server.cli("SET", "app:migrated", "1"),
                        missing="key app:migrated does not exist")  # fmt: skip
    assert ready["detail"] == "key app:migrated exists"


def test_redis_waits_for_a_value_that_matches(redis_server: Redis) -> None:
    """#value=REGEX: the string value must match; the value is never printed (a key may
    hold a token), its length is."""
    redis_server.cli("-n", "3", "SET", "schema:version", "41-secret-ish")
    target = f"redis://{HOST}:{redis_server.port}/3#key=schema:version&value=^4[2-9]"
    result = run_waitfor(*FAIL_FAST, target)
    assert last_error(result) == "key schema:version does not match '^4[2-9]' (13 bytes)"
    assert "secret-ish" not in result.stderr
    ready = waits_until(
        [target], lambda: redis_server.cli("-n", "3", "SET", "schema:version", "42"),
        missing="does not match",
    )  # fmt: skip
    assert ready["detail"] == "key schema:version matches '^4[2-9]'"


def test_redis_key_of_another_type_and_in_another_database(redis_server: Redis) -> None:
    redis_server.cli("DEL", "jobs")
    redis_server.cli("RPUSH", "jobs", "a")
    port = redis_server.port
    result = run_waitfor(*FAIL_FAST, f"redis://{HOST}:{port}#key=jobs&value=a")
    assert last_error(result).startswith("GET jobs answered WRONGTYPE"), result.stderr
    result = run_waitfor(*FAIL_FAST, f"redis://{HOST}:{port}/5#key=jobs")  # db 0 has it
    assert last_error(result) == "key jobs does not exist"
    assert run_waitfor(*FAIL_FAST, f"redis://{HOST}:{port}/0#key=jobs").returncode == 0


def test_redis_key_after_auth(redis_auth_server: Redis) -> None:
    redis_auth_server.cli("SET", "ready", "yes")
    secret = quote(REDIS_PASSWORD, safe="")
    target = f"redis://:{secret}@{HOST}:{redis_auth_server.port}#key=ready&value=yes"
    result = run_waitfor(*FAIL_FAST, target)
    assert result.returncode == 0, result.stderr
    assert REDIS_PASSWORD not in result.stderr


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        ("redis://h:6379#value=x", "option value: matches the value of #key=NAME"),
        ("redis://h:6379#key=a&value=(", "option value: not a regular expression"),
        ("redis://h:6379/two#key=a", "the database is a number"),
        ("redis://h:6379#key=", "option key: empty"),
    ],
)
def test_redis_bad_options_are_usage_errors(target: str, problem: str) -> None:
    assert problem in usage_error(target)
