"""More of logship as real processes against the stand-in as a real process: index templates,
a dead-letter index, registry pruning, several nodes, ES 9, auth, `--start-at end`,
`--close-inactive`, outages with deleted files and full queues, the second SIGTERM, a
damaged registry, /metrics and /readyz. Every wait is a poll with a deadline."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agents._log import Logger
from agents.logship import app as app_module
from agents.logship import files as files_module
from agents.logship.config import load_config
from agents.logship.registry import FILENAME, Entry
from agents.testing.processes import LogshipProcess, StandInProcess
from tests.helpers import (
    exactly_once,
    free_port,
    registry,
    registry_entries,
    wait_for,
    write_lines,
)
from tests.integration.http_server import HttpServer, Route

PY = sys.executable
Shippers = Callable[..., LogshipProcess]
SECRET = "s3cr3t-Zq8vX1"  # must never show up in logship's output


# --- helpers ----------------------------------------------------------------------------


def lines(prefix: str, count: int, width: int = 0) -> list[str]:
    return [f"{prefix} {i:06d} " + "x" * width for i in range(count)]


def header(request: dict[str, Any], name: str) -> str | None:
    return next((v for k, v in request["headers"].items() if k.lower() == name.lower()), None)


# --- Elasticsearch: several nodes, ES 9, auth ---------------------------------------------


def test_several_nodes_with_one_down_ship_everything_once(
    es: StandInProcess, tmp: Path, shippers: Shippers, closed_port: int
) -> None:
    log = tmp / "logs" / "app.log"
    expected = lines("line", 2000)
    write_lines(log, expected[:1000])
    dead = f"http://127.0.0.1:{closed_port}"  # nothing listens there
    shipper = shippers(es, tmp, "--es", dead, "--batch-docs", "100").start()
    write_lines(log, expected[1000:])
    assert shipper.stop() == 0
    exactly_once(es.messages(), expected)
    assert shipper.logged("Elasticsearch unreachable"), "the dead node was never tried"


def test_elasticsearch_9_accepts_the_8_client(tmp: Path, shippers: Shippers) -> None:
    es9 = StandInProcess("--version", "9.0.0", seed=1).start()
    try:
        expected = lines("line", 300)
        write_lines(tmp / "logs" / "app.log", expected)
        shipper = shippers(es9, tmp).start()
        assert shipper.stop() == 0
        exactly_once(es9.messages(), expected)
        bulks = [r for r in es9.requests() if r["path"].endswith("/_bulk")]
        assert bulks and all(r["status"] == 200 for r in bulks)
        for request in bulks:
            assert "compatible-with=8" in (header(request, "Accept") or "")
            assert "compatible-with=8" in (header(request, "Content-Type") or "")
    finally:
        es9.stop()


@pytest.mark.parametrize(
    ("kind", "expected_header"),
    [
        ("basic", "Basic " + base64.b64encode(f"shipper:{SECRET}".encode()).decode()),
        ("api-key", f"ApiKey {SECRET}"),
        ("bearer-token", f"Bearer {SECRET}"),
    ],
)
def test_credentials_from_files_reach_elasticsearch_and_never_the_logs(
    es: StandInProcess, tmp: Path, shippers: Shippers, kind: str, expected_header: str
) -> None:
    secret_file = tmp / "secret"
    secret_file.write_text(SECRET + "\n")  # a trailing newline, as `kubectl create secret` makes
    if kind == "basic":
        args = ["--username", "shipper", "--password-file", str(secret_file)]
    else:
        args = [f"--{kind}-file", str(secret_file)]
    write_lines(tmp / "logs" / "app.log", lines("line", 50))
    shipper = shippers(es, tmp, *args, "--log-level", "debug").start()
    metrics = shipper.metrics()
    es.control("down", seconds=1.0)  # failures are logged too: no secret in them either
    write_lines(tmp / "logs" / "app.log", lines("later", 50))
    assert shipper.stop() == 0
    exactly_once(es.messages(), lines("line", 50) + lines("later", 50))
    bulks = [r for r in es.requests() if r["path"].endswith("/_bulk")]
    assert bulks and all(header(r, "Authorization") == expected_header for r in bulks)
    encoded = base64.b64encode(f"shipper:{SECRET}".encode()).decode()
    for text in (shipper.stderr(), metrics):
        assert SECRET not in text and encoded not in text


# --- files --------------------------------------------------------------------------------


def test_start_at_end_skips_what_was_there_but_reads_new_files_whole(
    es: StandInProcess, tmp: Path, shippers: Shippers
) -> None:
    old = tmp / "logs" / "old.log"
    write_lines(old, lines("before start", 200))
    with old.open("a") as fh:
        fh.write("a line being written ")  # its end is not skipped
    shipper = shippers(es, tmp, "--start-at", "end").start()
    with old.open("a") as fh:
        fh.write("as logship starts\n")
    write_lines(old, lines("appended", 30))
    write_lines(tmp / "logs" / "new.log", lines("new file", 40))
    assert shipper.stop() == 0
    exactly_once(
        es.messages(),
        ["a line being written as logship starts", *lines("appended", 30), *lines("new file", 40)],
    )


def test_an_idle_file_is_closed_and_reopened_where_it_stopped(
    es: StandInProcess, tmp: Path, shippers: Shippers
) -> None:
    log = tmp / "logs" / "app.log"
    first = lines("first", 100)
    write_lines(log, first)
    shipper = shippers(es, tmp, "--close-inactive", "1s", "--scan-interval", "200ms").start()
    wait_for(lambda: shipper.logged("file closed", reason="inactive"), what="an inactive close")
    assert es.count() == 100
    time.sleep(1.0)  # it stays closed while it does not grow
    assert len(shipper.logged("file opened")) == 1
    assert shipper.metric("files_open") == 0
    size = log.stat().st_size
    second = lines("second", 100)
    write_lines(log, second)
    wait_for(lambda: len(shipper.logged("file opened")) == 2, what="the file to be reopened")
    assert shipper.logged("file opened")[1]["offset"] == size
    assert shipper.stop() == 0
    exactly_once(es.messages(), first + second)


def test_an_idle_file_with_unacknowledged_lines_stays_open(
    es: StandInProcess, tmp: Path, shippers: Shippers
) -> None:
    log = tmp / "logs" / "app.log"
    shipper = shippers(es, tmp, "--close-inactive", "500ms").start()
    es.control("fail_requests", status=503)  # no bulk request is acknowledged
    first = lines("during the outage", 100)
    write_lines(log, first)
    wait_for(lambda: shipper.metric("lines_read_total") == 100, what="the lines to be read")
    time.sleep(1.5)  # idle for longer than --close-inactive, its lines still unacknowledged
    second = lines("after the pause", 100)
    write_lines(log, second)
    es.control("reset_faults")
    wait_for(lambda: es.count() == 200, what="everything to be shipped")
    assert shipper.stop() == 0
    exactly_once(es.messages(), first + second)
    assert not shipper.logged("internal error")


def test_a_file_deleted_while_elasticsearch_is_down_still_ships(
    es: StandInProcess, tmp: Path, shippers: Shippers
) -> None:
    log = tmp / "logs" / "app.log"
    # A small memory budget: most of the file is still unread when it is deleted.
    shipper = shippers(es, tmp, "--queue-bytes", "64KiB", "--batch-bytes", "16KiB").start()
    es.control("fail_requests", status=503)
    expected = lines("line", 5000, width=100)  # about 600 KiB
    write_lines(log, expected)
    wait_for(lambda: shipper.logged("file opened"), what="the file to be opened")
    wait_for(lambda: shipper.metric("queue_bytes") > 32 * 1024, what="the queue to fill")
    log.unlink()
    es.control("reset_faults")
    wait_for(lambda: shipper.logged("file closed", reason="deleted"), what="the end of the file")
    assert shipper.stop() == 0
    exactly_once(es.messages(), expected)


# --- shutdown and restarts ------------------------------------------------------------------


def test_a_second_sigterm_during_a_stuck_drain_exits_with_only_acknowledged_offsets(
    es: StandInProcess, tmp: Path, shippers: Shippers
) -> None:
    log = tmp / "logs" / "app.log"
    first = lines("acknowledged", 100, width=100)
    write_lines(log, first)
    acknowledged = log.stat().st_size
    args = ("--queue-bytes", "64KiB", "--batch-bytes", "16KiB", "--drain-timeout", "60s")
    shipper = shippers(es, tmp, *args).start()
    wait_for(lambda: es.count() == 100, what="the first lines to be shipped")
    es.control("fail_requests", status=503)  # from now on nothing is acknowledged
    second = lines("unacknowledged", 3000, width=100)  # more than the memory budget
    write_lines(log, second)
    wait_for(lambda: shipper.metric("queue_bytes") > 32 * 1024, what="the queue to fill")
    shipper.signal(signal.SIGTERM)
    wait_for(lambda: shipper.logged("draining"), what="the drain to start")
    time.sleep(0.5)
    shipper.signal(signal.SIGTERM)
    assert shipper.wait(timeout=10) == 0  # at once, not after --drain-timeout
    assert shipper.logged("second signal")
    assert registry(tmp)[str(log)]["offset"] == acknowledged
    es.control("reset_faults")
    again = shippers(es, tmp).start()
    assert again.stop() == 0
    exactly_once(es.messages(), first + second)


def test_a_drain_that_cannot_finish_stops_at_its_deadline(
    es: StandInProcess, tmp: Path, shippers: Shippers
) -> None:
    log = tmp / "logs" / "app.log"
    args = ("--queue-bytes", "64KiB", "--batch-bytes", "16KiB", "--drain-timeout", "1s")
    shipper = shippers(es, tmp, *args).start()
    es.control("fail_requests", status=503)
    expected = lines("line", 3000, width=100)
    write_lines(log, expected)
    wait_for(lambda: shipper.metric("queue_bytes") > 32 * 1024, what="the queue to fill")
    assert shipper.stop(timeout=15) == 0
    (summary,) = shipper.logged("drain deadline passed")
    assert summary["unacknowledged"] > 0
    assert registry(tmp)[str(log)]["offset"] == 0
    es.control("reset_faults")
    again = shippers(es, tmp).start()
    assert again.stop() == 0
    exactly_once(es.messages(), expected)


def test_a_damaged_registry_is_warned_about_and_costs_no_duplicates(
    es: StandInProcess, tmp: Path, shippers: Shippers
) -> None:
    log = tmp / "logs" / "app.log"
    first = lines("first run", 500)
    write_lines(log, first)
    assert shippers(es, tmp).start().stop() == 0
    (tmp / "data" / FILENAME).write_bytes(b"\x00garbage{{{")
    second = lines("second run", 300)
    write_lines(log, second)
    shipper = shippers(es, tmp).start()
    assert shipper.stop() == 0
    (warning,) = shipper.logged("registry")
    assert warning["log.level"] == "warning" and "registry damaged" in warning["error"]
    exactly_once(es.messages(), first + second)
    assert registry(tmp)[str(log)]["offset"] == log.stat().st_size


# --- probes and metrics -----------------------------------------------------------------------


def test_metrics_show_counters_and_lag_but_no_secret_and_no_line(
    es: StandInProcess, tmp: Path, shippers: Shippers
) -> None:
    log = tmp / "logs" / "app.log"
    key_file = tmp / "api-key"
    key_file.write_text(SECRET)
    write_lines(log, [f"confidential-{i}" for i in range(100)])
    args = ("--api-key-file", str(key_file), "--queue-bytes", "64KiB", "--batch-bytes", "16KiB")
    shipper = shippers(es, tmp, *args).start()
    wait_for(lambda: shipper.metric("events_acked_total") == 100, what="100 acknowledged")
    text = shipper.metrics()
    assert f'logship_file_lag_bytes{{path="{log}"}} 0' in text
    for name in ("lines_read_total", "bulk_requests_total", "files_open"):
        assert shipper.metric(name) >= 1
    assert shipper.metric("elasticsearch_reachable") == 1
    # the supervised tasks and this scrape's handler; nothing piles up while idle
    tasks = shipper.metric("asyncio_tasks")
    assert 3 <= tasks <= 30, tasks
    assert shipper.metric("asyncio_tasks") == tasks
    # the oldest request waiting for its answer: none while idle, growing while one waits
    assert shipper.metric("oldest_request_seconds") == 0
    es.control("latency", seconds=3.0)
    write_lines(log, ["one more"])
    wait_for(lambda: shipper.metric("oldest_request_seconds") >= 1.0, what="a request waiting")
    es.control("reset_faults")
    wait_for(lambda: shipper.metric("events_acked_total") == 101, what="101 acknowledged")
    assert shipper.metric("oldest_request_seconds") == 0
    es.control("fail_requests", status=503)
    write_lines(log, [f"confidential-more-{i}" + "x" * 100 for i in range(5000)])
    wait_for(lambda: shipper.metric("retries_total") > 0, what="a retry")
    lag = [x for x in shipper.metrics().splitlines() if x.startswith("logship_file_lag_bytes{")]
    assert lag and float(lag[0].split()[-1]) > 0  # behind: the memory budget is full
    assert shipper.metric("unacknowledged_events") > 0
    text = shipper.metrics()
    assert SECRET not in text and "confidential" not in text
    es.control("reset_faults")
    assert shipper.stop() == 0


# --- the index template ---------------------------------------------------------------------

KEYWORD_HOST = {"properties": {"host": {"properties": {"name": {"type": "keyword"}}}}}


def test_the_template_is_installed_before_anything_is_shipped_even_if_es_starts_later(
    tmp: Path, shippers: Shippers
) -> None:
    template = tmp / "logship-test.json"
    template.write_text(json.dumps({"index_patterns": ["logship-*"], "priority": 200,
                                    "template": {"mappings": KEYWORD_HOST}}))  # fmt: skip
    expected = lines("line", 200)
    write_lines(tmp / "logs" / "app.log", expected)
    port = free_port()
    # Nothing listens yet: logship is ready all the same, and keeps asking.
    shipper = shippers(f"http://127.0.0.1:{port}", tmp, "--template-file", str(template)).start()
    wait_for(lambda: shipper.logged("index template not installed yet"), what="a retry")
    es = StandInProcess(port=port, seed=1).start()
    try:
        wait_for(lambda: es.count() == 200, what="the lines to be shipped")
        assert shipper.stop() == 0
        exactly_once(es.messages(), expected)
        paths = [(r["method"], r["path"]) for r in es.requests()]
        first_bulk = next(i for i, (_, path) in enumerate(paths) if path.endswith("/_bulk"))
        assert ("PUT", "/_index_template/logship-test") in paths[:first_bulk]
        (mapping,) = es.get("/logship-*/_mapping").values()
        assert mapping["mappings"]["properties"]["host"]["properties"]["name"]["type"] == "keyword"
        assert shipper.logged("index template installed", template="logship-test")
    finally:
        es.stop()


def test_a_template_elasticsearch_refuses_exits_2_naming_file_and_reason(
    es: StandInProcess, tmp: Path, shippers: Shippers
) -> None:
    template = tmp / "broken.json"
    template.write_text(json.dumps({"template": {"mappings": KEYWORD_HOST}}))  # no patterns
    write_lines(tmp / "logs" / "app.log", lines("line", 10))
    shipper = shippers(es, tmp, "--template-file", str(template)).start(wait_ready=False)
    assert shipper.wait(timeout=20) == 2
    last = shipper.events()[-1]
    assert last["log.level"] == "error"
    assert str(template) in last["message"] and "index patterns are missing" in last["message"]
    assert "Traceback" not in shipper.stderr()
    assert not [r for r in es.requests() if r["path"].endswith("/_bulk")]


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "cannot read"), ("{not json", "is not JSON"), ("[1, 2]", "must hold a JSON object")],
)
def test_a_template_file_that_is_not_a_template_exits_2(
    tmp: Path, content: str | None, message: str
) -> None:
    template = tmp / "logship.json"
    if content is not None:
        template.write_text(content)
    argv = ["--path", str(tmp / "logs" / "*.log"), "--es", "http://127.0.0.1:9",
            "--data-dir", str(tmp / "data"), "--template-file", str(template)]  # fmt: skip
    result = subprocess.run([PY, "-m", "agents.logship", *argv], capture_output=True,
                            text=True, timeout=30, check=False)  # fmt: skip
    assert result.returncode == 2
    last = json.loads(result.stderr.splitlines()[-1])
    assert "--template-file" in last["message"] and str(template) in last["message"]
    assert message in last["message"]


# --- the dead-letter index ------------------------------------------------------------------

CONFLICTING = ['{"user": "ann", "message": "one"}', '{"user": {"name": "bob"}, "message": "two"}',
               '{"user": "cid", "message": "three"}']  # fmt: skip


@pytest.mark.parametrize("index", ["dead-letters", "logs-deadletter-default"])  # data stream
def test_dead_letters_go_to_an_index_wrapped_so_they_fit(
    es: StandInProcess, tmp: Path, shippers: Shippers, index: str
) -> None:
    log = tmp / "logs" / "app.log"
    write_lines(log, CONFLICTING)
    args = ("--json-lines", "root", "--dead-letter", f"index:{index}")
    shipper = shippers(es, tmp, *args).start()
    assert shipper.stop() == 0
    exactly_once(es.messages(), ["one", "three"])
    (dead,) = es.docs(index)
    assert json.loads(dead["event"]["original"])["user"] == {"name": "bob"}
    assert dead["error"]["type"] == "document_parsing_exception"
    assert dead["error"]["code"] == "400" and "user" in dead["error"]["message"]
    assert dead["log"] == {"file": {"path": str(log)}, "offset": len(CONFLICTING[0]) + 1}
    assert dead["labels"]["target_index"].startswith("logship-") and "@timestamp" in dead
    assert not (tmp / "data" / "dead-letter.ndjson").exists()
    assert shipper.logged("event refused")


def test_dead_letters_the_index_refuses_too_go_to_the_file(
    es: StandInProcess, tmp: Path, shippers: Shippers
) -> None:
    strict = tmp / "dead-letters.json"  # the user's template makes the index refuse them
    mappings = {"dynamic": "strict", "properties": {"note": {"type": "keyword"}}}
    body = {"index_patterns": ["dead-*"], "template": {"mappings": mappings}}
    strict.write_text(json.dumps(body))
    log = tmp / "logs" / "app.log"
    write_lines(log, CONFLICTING)
    args = ("--json-lines", "root", "--dead-letter", "index:dead-letters",
            "--template-file", str(strict))  # fmt: skip
    shipper = shippers(es, tmp, *args).start()
    assert shipper.stop() == 0
    exactly_once(es.messages(), ["one", "three"])
    assert es.count("dead-letters") == 0
    text = (tmp / "data" / "dead-letter.ndjson").read_text()
    (record,) = [json.loads(x) for x in text.splitlines()]
    assert '"bob"' in record["document"] and record["status"] == 400
    assert "strict_dynamic_mapping_exception" in record["dead_letter_index_error"]
    assert shipper.logged("dead-letter index refused the event too")


# --- registry pruning -------------------------------------------------------------------------


def test_rotation_with_deletion_does_not_grow_the_registry(
    es: StandInProcess, tmp: Path, shippers: Shippers
) -> None:
    log = tmp / "logs" / "app.log"
    shipper = shippers(es, tmp, glob="app.log*").start()
    expected: list[str] = []
    for part in range(6):
        batch = lines(f"part {part}", 200)
        write_lines(log, batch)
        expected += batch
        total = len(expected)
        wait_for(lambda: es.count() == total, what=f"part {part} to be shipped")  # noqa: B023
        log.rename(tmp / "logs" / "app.log.1")  # replaces (deletes) the previous app.log.1
    wait_for(lambda: len(shipper.logged("file forgotten", reason="deleted")) == 5,
             what="the deleted files to be forgotten")  # fmt: skip
    wait_for(lambda: len(registry_entries(tmp)) == 1, what="the registry to shrink")
    write_lines(log, ["after the last rotation"])
    assert shipper.stop() == 0
    exactly_once(es.messages(), [*expected, "after the last rotation"])
    assert len(registry_entries(tmp)) == 2  # app.log.1 (rotated, still there) and app.log


def test_entries_of_vanished_files_are_forgotten_but_never_of_files_still_there(
    es: StandInProcess, tmp: Path, shippers: Shippers
) -> None:
    elsewhere = tmp / "rotated-out-of-the-glob.txt"
    elsewhere.write_text("old content\n")
    info = elsewhere.stat()
    long_ago = 1_000_000.0

    def entry(key: str, path: Path, dev: int, ino: int, updated: float) -> dict[str, Any]:
        raw = Entry(key, dev=dev, ino=ino, head="h", path=str(path), offset=12, updated=updated)
        return raw.to_json()

    (tmp / "data").mkdir()
    (tmp / "data" / FILENAME).write_text(json.dumps({"version": 1, "entries": [
        entry("gone", tmp / "logs" / "deleted.log", 1, 99999999, long_ago),
        entry("recent", tmp / "logs" / "just-deleted.log", 1, 99999998, time.time()),
        entry("there", elsewhere, info.st_dev, info.st_ino, long_ago),
    ]}))  # fmt: skip
    write_lines(tmp / "logs" / "app.log", ["a line"])
    shipper = shippers(es, tmp).start()
    wait_for(lambda: shipper.logged("file forgotten", reason="vanished"), what="a forgotten entry")
    assert shipper.stop() == 0
    keys = {e["key"] for e in registry_entries(tmp)}
    assert "gone" not in keys and {"recent", "there"} <= keys
    assert [e["file_id"] for e in shipper.logged("file forgotten")] == ["gone"]
    exactly_once(es.messages(), ["a line"])


# --- /readyz, in process ------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_readyz_answers_503_until_the_first_scan_is_done(
    tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import aiohttp

    gate = threading.Event()
    real_scan = files_module.scan

    def held_scan(*args: Any) -> Any:
        gate.wait(30)  # the first scan takes as long as the test wants
        return real_scan(*args)

    monkeypatch.setattr(files_module, "scan", held_scan)
    port = free_port()
    config = load_config(
        ["--path", str(tmp / "logs" / "*.log"), "--es", f"http://127.0.0.1:{free_port()}",
         "--data-dir", str(tmp / "data"), "--http-host", "127.0.0.1", "--http-port", str(port),
         "--drain-quiet", "100ms"],
        {},
    )  # fmt: skip
    app = app_module.App(config, Logger("logship", stream=io.StringIO()), env={})
    run = asyncio.create_task(app.run())

    async def status(session: aiohttp.ClientSession, path: str) -> int | None:
        try:
            async with session.get(f"http://127.0.0.1:{port}{path}") as response:
                return response.status
        except aiohttp.ClientConnectionError:
            return None

    async def until(session: aiohttp.ClientSession, path: str, wanted: int) -> None:
        deadline = time.monotonic() + 20
        while (got := await status(session, path)) != wanted:
            assert time.monotonic() < deadline, f"{path} answered {got}, not {wanted}"
            await asyncio.sleep(0.02)  # polling: no event to wait on

    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            await until(session, "/healthz", 200)  # the server is up, the first scan is not
            assert await status(session, "/readyz") == 503
            gate.set()
            await until(session, "/readyz", 200)
    finally:
        gate.set()
        app.handle_signal(signal.SIGTERM)
        assert await asyncio.wait_for(run, 30) == 0


def test_the_partial_last_line_of_an_idle_file_ships_at_drain(
    es: StandInProcess, tmp: Path, shippers: Shippers
) -> None:
    log = tmp / "logs" / "app.log"
    log.write_text("complete\nthe app died mid-li")
    args = ("--close-inactive", "500ms", "--scan-interval", "200ms")
    shipper = shippers(es, tmp, *args).start()
    wait_for(lambda: shipper.logged("file closed", reason="inactive"), what="an inactive close")
    wait_for(lambda: es.count() == 1, what="the complete line")
    assert shipper.stop() == 0
    exactly_once(es.messages(), ["complete", "the app died mid-li"])


def test_a_new_file_at_a_rotated_path_is_found_without_waiting_for_the_rescan(
    es: StandInProcess, tmp: Path, shippers: Shippers
) -> None:
    log = tmp / "logs" / "app.log"
    write_lines(log, lines("old", 100))
    # The rotated file is read for --drain-quiet after its rename: meanwhile it still
    # carries the path, and the rescan is far away.
    args = ("--drain-quiet", "10s", "--scan-interval", "60s")
    shipper = shippers(es, tmp, *args, glob="app.log*").start()
    wait_for(lambda: es.count() == 100, what="the old file to be shipped")
    log.rename(tmp / "logs" / "app.log.1")
    time.sleep(0.5)  # the app reopens its log a moment later
    write_lines(log, lines("new", 100))
    wait_for(lambda: es.count() == 200, what="the new file to be shipped")
    shipper.kill()
    exactly_once(es.messages(), lines("old", 100) + lines("new", 100))


def test_a_terminal_gets_text_and_a_pipe_json_unless_told(tmp_path: Path) -> None:
    """--log-format auto (the default): readable lines for a person at a terminal, JSON
    lines for a log pipeline; an explicit --log-format wins either way."""
    import os
    import pty

    def run(*args: str, tty: bool) -> str:
        argv = [sys.executable, "-m", "agents.logship", *args]
        if not tty:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
            return done.stderr
        leader, follower = pty.openpty()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=follower,
                                stderr=follower)  # fmt: skip
        os.close(follower)
        proc.wait(30)
        out = b""
        with contextlib.suppress(OSError):  # EIO once the child side is closed
            while chunk := os.read(leader, 4096):
                out += chunk
        os.close(leader)
        return out.decode()

    assert run(tty=True).lstrip().startswith(tuple("0123456789"))  # a timestamp, then text
    assert "ERROR" in run(tty=True) and "missing required options" in run(tty=True)
    assert run(tty=False).lstrip().startswith("{")
    assert run("--log-format", "json", tty=True).lstrip().startswith("{")
    assert not run("--log-format", "text", tty=False).lstrip().startswith("{")


def test_a_path_that_is_a_directory_or_matches_nothing_is_warned_about(
    es: StandInProcess, tmp_path: Path
) -> None:
    (tmp_path / "logs").mkdir()
    shipper = LogshipProcess(es, tmp_path)
    shipper.args += ["--path", str(tmp_path / "logs")]
    shipper.start()
    assert shipper.stop() == 0
    directory = shipper.logged("--path names a directory, not files", path=str(tmp_path / "logs"))
    assert directory and directory[0]["hint"] == f"--path '{tmp_path / 'logs'}/*.log'"
    assert shipper.logged("--path matches no file yet", path=str(tmp_path / "logs" / "*.log"))


def test_the_cluster_is_named_once_and_progress_is_said_while_shipping(
    es: StandInProcess, tmp_path: Path
) -> None:
    (tmp_path / "logs").mkdir()
    write_lines(tmp_path / "logs" / "app.log", [f"line {i}" for i in range(300)])
    shipper = LogshipProcess(es, tmp_path, "--stats-interval", "300ms").start()
    wait_for(lambda: shipper.logged("shipped"), what="a progress line")
    reached = shipper.logged("Elasticsearch reached")
    assert len(reached) == 1 and reached[0]["version"] == es.get("/")["version"]["number"]
    first = shipper.logged("shipped")[0]
    assert first["events"] == 300 and first["files"] == 1 and first["bytes"] > 300 * 6
    time.sleep(1.0)  # idle: nothing shipped, nothing behind
    said = len(shipper.logged("shipped"))
    time.sleep(1.0)
    assert len(shipper.logged("shipped")) == said, "an idle logship repeats nothing"
    assert shipper.stop() == 0


def not_elasticsearch(web: HttpServer) -> None:
    """A web server at the --es URL: 200 with a page for GET /, 501 for a bulk request."""
    web.routes["/"] = Route(200, b"<html><body>It works!</body></html>",
                            {"Content-Type": "text/html"})  # fmt: skip

    def no_bulk(request: Any) -> tuple[int, dict[str, str], bytes]:
        request.rfile.read(int(request.headers.get("Content-Length", 0)))  # keep-alive intact
        return 501, {"Content-Type": "text/html"}, b"<html>Not Implemented</html>"

    web.routes["/_bulk"] = no_bulk


def test_a_server_that_is_not_elasticsearch_is_named_as_such_once(tmp_path: Path) -> None:
    with HttpServer() as web:
        not_elasticsearch(web)
        (tmp_path / "logs").mkdir()
        write_lines(tmp_path / "logs" / "app.log", ["a line"])
        shipper = LogshipProcess(web.url, tmp_path, "--drain-timeout", "1s").start()
        wait_for(lambda: shipper.logged("the server does not take bulk requests"),
                 what="the 501 to be named")  # fmt: skip
        wait_for(lambda: shipper.logged("the server at --es is not one logship can ship to"),
                 what="GET / to be judged")  # fmt: skip
        said = shipper.logged("the server at --es is not one logship can ship to")[0]
        assert "without version.number" in said["problem"]
        time.sleep(1.0)  # retries meanwhile
        shipper.stop()
        assert len(shipper.logged("the server does not take bulk requests")) == 1
        assert len(shipper.logged("the server at --es is not one logship can ship to")) == 1
