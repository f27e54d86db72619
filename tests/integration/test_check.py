"""`logship check`, as an operator runs it before shipping: against the stand-in with and
without security, and each failure with its own exit code and a line that says what to
do. Nothing is written to Elasticsearch by a check."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agents.testing.processes import StandInProcess
from tests.helpers import kubelet_secret, write_lines
from tests.integration.http_server import HttpServer, Route

pytestmark = pytest.mark.integration


def check(tmp_path: Path, es: str, *extra: str, as_json: bool = True) -> tuple[int, Any]:
    (tmp_path / "logs").mkdir(exist_ok=True)
    write_lines(tmp_path / "logs" / "app.log", ["a line"])
    argv = [sys.executable, "-m", "agents.logship", "check", "--path",
            str(tmp_path / "logs" / "*.log"), "--es", es, "--data-dir", str(tmp_path / "data"),
            "--request-timeout", "3s", *extra, *(["--json"] if as_json else [])]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    return done.returncode, (json.loads(done.stdout) if as_json else done.stdout)


def test_a_check_against_the_stand_in_passes_and_writes_nothing(tmp_path: Path) -> None:
    with StandInProcess() as es:
        code, text = check(tmp_path, es.url, as_json=False)
        assert code == 0, text
        assert "ok   connect" in text and "Elasticsearch 8" in text and "ready to ship" in text
        assert "security is off" in text
        assert es.count() == 0 and not any(r["path"].endswith("_bulk") for r in es.requests())


def test_with_security_the_credentials_and_the_privilege_are_checked(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    kubelet_secret(secret, {"password": "pw-0k-4c1d"})
    with StandInProcess() as es:
        es.control("security", users={"logship": "pw-0k-4c1d", "viewer": "pw-0k-4c1d"},
                   read_only=["viewer"])  # fmt: skip
        auth = ["--password-file", str(secret / "password")]
        code, report = check(tmp_path, es.url, "--username", "logship", *auth)
        assert code == 0, report
        privileges = next(c for c in report["checks"] if c["check"] == "privileges")
        assert (
            privileges["ok"] and "logship may create documents in logship-" in privileges["detail"]
        )

        code, report = check(tmp_path, es.url, "--username", "viewer", *auth)
        assert (code, report["failure"]) == (6, "privileges"), report
        assert "grant create_doc" in json.dumps(report)

        kubelet_secret(secret, {"password": "pw-W4ong-9e"})
        code, report = check(tmp_path, es.url, "--username", "logship", *auth)
        assert (code, report["failure"]) == (4, "credentials"), report
        assert "unable to authenticate user [logship]" in json.dumps(report)
        assert "pw-W4ong-9e" not in json.dumps(report)
        assert es.count() == 0


def test_a_bad_option_and_an_unreachable_url_have_their_own_codes(
    tmp_path: Path, closed_port: int
) -> None:
    code, report = check(tmp_path, "http://127.0.0.1:9200", "--batch-docs", "0")
    assert (code, report["failure"]) == (2, "config")
    assert "--batch-docs: must be at least 1" in json.dumps(report)
    code, report = check(tmp_path, f"http://127.0.0.1:{closed_port}")
    assert (code, report["failure"]) == (3, "unreachable")
    assert f"connection refused by 127.0.0.1:{closed_port}" in json.dumps(report)


def test_a_server_that_is_not_elasticsearch_is_named(tmp_path: Path) -> None:
    with HttpServer() as web:
        web.routes["/"] = Route(200, b"<html>It works!</html>", {"Content-Type": "text/html"})
        code, report = check(tmp_path, web.url)
    assert (code, report["failure"]) == (5, "not-elasticsearch"), report
    assert "without version.number" in json.dumps(report)
