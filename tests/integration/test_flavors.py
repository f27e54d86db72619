"""logship against every server it ships to: Elasticsearch 7.17, 8 and 9, OpenSearch 1, 2
and 3, each played by the stand-in (`--flavor`, `--version`). What touches the wire runs
against all six: bulk to a plain index and to a data stream, exactly once; the media types
on the wire; the data stream template OpenSearch needs; error answers; `logship check`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from agents.logship.output.elasticsearch import ElasticsearchSender
from agents.testing.elasticsearch import StandIn
from agents.testing.processes import LogshipProcess, StandInProcess
from tests.helpers import exactly_once, wait_for, write_lines

SERVERS = [("elasticsearch", "7"), ("elasticsearch", "8"), ("elasticsearch", "9"),
           ("opensearch", "1"), ("opensearch", "2"), ("opensearch", "3")]  # fmt: skip
IDS = [f"{flavor}-{major}" for flavor, major in SERVERS]
# what each server should be sent: the official client's media types for it
BULK_TYPE = {
    "elasticsearch-7": "application/x-ndjson",
    "elasticsearch-8": "application/vnd.elasticsearch+x-ndjson; compatible-with=8",
    "elasticsearch-9": "application/vnd.elasticsearch+x-ndjson; compatible-with=8",
    "opensearch-1": "application/x-ndjson",
    "opensearch-2": "application/x-ndjson",
    "opensearch-3": "application/x-ndjson",
}


@pytest.fixture(params=SERVERS, ids=IDS)
def server(request: pytest.FixtureRequest) -> Iterator[tuple[str, StandInProcess]]:
    flavor, major = request.param
    with StandInProcess("--flavor", flavor, "--version", major, seed=2) as es:
        yield f"{flavor}-{major}", es


def _bulk_types(es: StandInProcess) -> set[str]:
    return {r["headers"].get("Content-Type", "") for r in es.requests()
            if r["path"].endswith("/_bulk")}  # fmt: skip


@pytest.mark.parametrize("target", ["index", "data-stream"])
def test_every_line_ships_once_to_each_server(
    server: tuple[str, StandInProcess], target: str, tmp_path: Path
) -> None:
    """Lines written before and while logship runs, to a plain index or to the data stream
    logs-app-default; on OpenSearch logship first installs the data stream template it
    lacks (`logship-logs-app-default`), on Elasticsearch the built-in one does."""
    name, es = server
    lines = [f"line {i}" for i in range(300)]
    log = tmp_path / "logs" / "app.log"
    log.parent.mkdir()
    write_lines(log, lines[:150])
    extra = ["--data-stream", "app.default"] if target == "data-stream" else []
    shipper = LogshipProcess(es, tmp_path, *extra).start()
    write_lines(log, lines[150:])
    pattern = "logs-app-default*" if extra else "logship-*"
    wait_for(lambda: es.count(pattern) >= 300, what="every line to arrive")
    assert shipper.stop() == 0
    exactly_once(es.messages(pattern), lines)
    assert _bulk_types(es) == {BULK_TYPE[name]}
    reached = [e for e in shipper.events() if e["message"].endswith(" reached")]
    assert len(reached) == 1 and reached[0]["version"].startswith(name.rsplit("-", 1)[1] + ".")
    assert reached[0]["message"] == ("OpenSearch" if "opensearch" in name else
                                     "Elasticsearch") + " reached"  # fmt: skip
    if target == "data-stream":
        (stream,) = es.get("/_data_stream/logs-app-default")["data_streams"]
        backing = stream["indices"][0]["index_name"]
        if name.startswith("opensearch"):
            assert stream["template"] == "logship-logs-app-default"
            assert backing == ".ds-logs-app-default-000001"
            assert any(e["message"] == "index template installed" for e in shipper.events())
        else:
            assert stream["template"] == "logs"
            assert backing.startswith(".ds-logs-app-default-20")


def test_an_existing_data_stream_template_is_left_alone_on_opensearch(tmp_path: Path) -> None:
    """A template of the user's that makes the name a data stream: used, not replaced."""
    with StandInProcess("--flavor", "opensearch", "--version", "2", seed=2) as es:
        body = json.dumps({"index_patterns": ["logs-*"], "data_stream": {}, "priority": 5})
        import urllib.request

        put = urllib.request.Request(  # noqa: S310 - the stand-in on loopback
            f"{es.url}/_index_template/mine", data=body.encode(), method="PUT",
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(put, timeout=5) as answer:  # noqa: S310 - loopback
            assert answer.status == 200
        (tmp_path / "logs").mkdir()
        write_lines(tmp_path / "logs" / "app.log", ["one", "two"])
        shipper = LogshipProcess(es, tmp_path, "--data-stream", "app.default").start()
        wait_for(lambda: es.count("logs-app-default*") >= 2, what="the lines")
        assert shipper.stop() == 0
        (stream,) = es.get("/_data_stream/logs-app-default")["data_streams"]
        assert stream["template"] == "mine"
        assert not any(r["method"] == "PUT" and "logship-" in r["path"] for r in es.requests())


@pytest.mark.parametrize(("flavor", "major"), SERVERS, ids=IDS)
def test_check_names_the_server_and_what_it_can_ask(
    flavor: str, major: str, tmp_path: Path
) -> None:
    with StandInProcess("--flavor", flavor, "--version", major) as es:
        es.control("security", users={"logship": "pw-0k-4c1d"})
        (tmp_path / "logs").mkdir()
        write_lines(tmp_path / "logs" / "app.log", ["a line"])
        argv = [sys.executable, "-m", "agents.logship", "check", "--path",
                str(tmp_path / "logs" / "*.log"), "--es", es.url, "--data-dir",
                str(tmp_path / "data"), "--username", "logship", "--password", "pw-0k-4c1d",
                "--json"]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        report = json.loads(done.stdout)
        assert done.returncode == 0, report
        connect = next(c for c in report["checks"] if c["check"] == "connect")
        assert connect["flavor"] == flavor and connect["version"].startswith(f"{major}.")
        product = "OpenSearch" if flavor == "opensearch" else "Elasticsearch"
        assert connect["detail"].startswith(f"{product} {major}.")
        privileges = next(c for c in report["checks"] if c["check"] == "privileges")
        if flavor == "opensearch":
            assert "has no _has_privileges API" in privileges["detail"]
        else:
            assert "logship may create documents" in privileges["detail"]
        assert es.count("*") == 0


def test_check_says_when_flavor_names_another_server(tmp_path: Path) -> None:
    with StandInProcess("--flavor", "opensearch", "--version", "2") as es:
        (tmp_path / "logs").mkdir()
        argv = [sys.executable, "-m", "agents.logship", "check", "--path",
                str(tmp_path / "logs" / "*.log"), "--es", es.url, "--data-dir",
                str(tmp_path / "data"), "--flavor", "elasticsearch", "--json"]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    report = json.loads(done.stdout)
    assert (done.returncode, report["failure"]) == (2, "config"), report
    flavor = next(c for c in report["checks"] if c["check"] == "flavor")
    assert "--flavor elasticsearch, but the server is OpenSearch 2." in flavor["detail"]


# -- the sender, in process: when GET / is asked, and what a forbidden one leaves --------


@pytest_asyncio.fixture(params=SERVERS, ids=IDS)
async def standin(request: pytest.FixtureRequest) -> AsyncIterator[StandIn]:
    flavor, major = request.param
    async with StandIn(major, flavor=flavor, seed=4) as es:
        yield es


BODY = b'{"create":{"_index":"app"}}\n{"message":"one"}\n'


@pytest.mark.asyncio
async def test_auto_asks_get_root_once_before_the_first_bulk(standin: StandIn) -> None:
    sender = ElasticsearchSender({"hosts": [standin.url], "flavor": "auto"})
    try:
        for _ in range(3):
            answer = await sender.send(BODY)
            assert answer.status == 200, answer.body
    finally:
        await sender.close()
    assert [(r.method, r.path) for r in standin.requests] == [("GET", "/")] + [
        ("POST", "/_bulk")
    ] * 3
    assert standin.count("app") == 3


@pytest.mark.asyncio
@pytest.mark.parametrize("flavor", ["elasticsearch", "elasticsearch-7", "opensearch"])
async def test_a_named_flavor_ships_without_get_root(flavor: str) -> None:
    """For clusters that forbid GET /: --flavor says what to send, and nothing asks it."""
    server = {"elasticsearch": ("elasticsearch", "8"), "elasticsearch-7": ("elasticsearch", "7"),
              "opensearch": ("opensearch", "2")}[flavor]  # fmt: skip
    async with StandIn(server[1], flavor=server[0], seed=4) as es:
        sender = ElasticsearchSender({"hosts": [es.url], "flavor": flavor})
        try:
            assert (await sender.send(BODY)).status == 200
        finally:
            await sender.close()
        assert [r.path for r in es.requests] == ["/_bulk"]


@pytest.mark.asyncio
async def test_a_forbidden_get_root_leaves_plain_json_that_every_server_takes(
    standin: StandIn,
) -> None:
    standin.fail_requests(403, count=1, scope="all")  # the first request: GET /
    sender = ElasticsearchSender({"hosts": [standin.url], "flavor": "auto"})
    try:
        answer = await sender.send(BODY)
    finally:
        await sender.close()
    assert answer.status == 200 and standin.count("app") == 1
    bulk = standin.bulk_requests()[0]
    assert bulk.headers["Content-Type"] == "application/x-ndjson"


@pytest.mark.asyncio
async def test_error_answers_keep_their_meaning_on_every_server(standin: StandIn) -> None:
    """A mapping conflict is the per-item 400 on every server (mapper_parsing_exception or
    document_parsing_exception, as each names it), a conflict 409, and a 429 a 429."""
    sender = ElasticsearchSender({"hosts": [standin.url]})
    body = (b'{"create":{"_index":"app","_id":"1"}}\n{"n":1}\n'
            b'{"create":{"_index":"app","_id":"2"}}\n{"n":"x"}\n'
            b'{"create":{"_index":"app","_id":"1"}}\n{"n":1}\n')  # fmt: skip
    try:
        answer = await sender.send(body)
        standin.fail_requests(429, count=1)
        busy = await sender.send(body)
    finally:
        await sender.close()
    items: list[Any] = [next(iter(i.values())) for i in answer.body["items"]]
    assert [i["status"] for i in items] == [201, 400, 409]
    expected = ("document_parsing_exception" if not standin.profile.opensearch
                and (standin.major, standin.profile.minor) >= (8, 8)
                else "mapper_parsing_exception")  # fmt: skip
    assert items[1]["error"]["type"] == expected
    assert busy.status == 429


# -- templates: --template-file on every server, and OpenSearch's data stream template --


@pytest.mark.asyncio
async def test_the_template_file_installs_on_every_server(standin: StandIn,
                                                          tmp_path: Path) -> None:  # fmt: skip
    import io

    from agents._log import Logger
    from agents.logship.output.template import install_template, load_template

    path = tmp_path / "logship.json"
    path.write_text(json.dumps({"index_patterns": ["logship-*"], "priority": 300,
                                "template": {"settings": {"number_of_shards": 1}}}))  # fmt: skip
    sender = ElasticsearchSender({"hosts": [standin.url]})
    try:
        await install_template(sender, load_template(path), Logger("t", stream=io.StringIO()))
    finally:
        await sender.close()
    stored = standin.store.templates["logship"]
    assert stored["template"]["settings"] == {"index": {"number_of_shards": "1"}}
    put = next(r for r in standin.requests if r.method == "PUT")
    vnd = not standin.profile.opensearch and standin.major in (8, 9)
    assert put.headers["Content-Type"] == (
        "application/vnd.elasticsearch+json; compatible-with=8" if vnd else "application/json"
    )


async def _ensure(
    es: StandIn, stream: str = "logs-app-default", *, met_then: Any = None
) -> list[dict[str, Any]]:
    """ensure_data_stream_template's log events; `met_then` runs once GET / is answered."""
    import io

    from agents._log import Logger
    from agents.logship.output.template import ensure_data_stream_template

    out = io.StringIO()
    sender = ElasticsearchSender({"hosts": [es.url]})
    if met_then is not None:
        await sender.meet()
        met_then()
    try:
        await ensure_data_stream_template(sender, stream, Logger("t", json_lines=True,
                                                                 stream=out),
                                          retry_base=0.001, retry_cap=0.01)  # fmt: skip
    finally:
        await sender.close()
    return [json.loads(line) for line in out.getvalue().splitlines()]


@pytest.mark.asyncio
async def test_a_matching_template_without_data_stream_is_the_users_choice() -> None:
    async with StandIn("2", flavor="opensearch", seed=1) as es:
        es.store.put_template("plain", {"index_patterns": ["logs-*"], "priority": 1})
        events = await _ensure(es)
        assert [e["message"] for e in events] == [
            "an index template matches the stream without data_stream: its documents go to "
            "a plain index"
        ]
        assert set(es.store.templates) == {"plain"}


@pytest.mark.asyncio
async def test_templates_it_may_not_read_are_said_once_and_shipping_goes_on() -> None:
    async with StandIn("3", flavor="opensearch", seed=1) as es:
        events = await _ensure(es, met_then=lambda: es.fail_requests(403, count=1, scope="all"))
        assert events[-1]["message"].startswith("cannot read the index templates")
        assert not es.store.templates


@pytest.mark.asyncio
async def test_elasticsearch_needs_no_data_stream_template_and_is_not_asked() -> None:
    async with StandIn("8", seed=1) as es:
        assert await _ensure(es) == []
        assert [r.path for r in es.requests] == ["/"]


@pytest.mark.asyncio
async def test_the_data_stream_template_waits_out_an_outage_then_installs() -> None:
    async with StandIn("1", flavor="opensearch", seed=1) as es:
        es.fail_requests(503, count=3, scope="all")
        events = await _ensure(es)
        assert events[-1]["message"] == "index template installed"
        assert es.store.templates["logship-logs-app-default"]["data_stream"] == {}
        warnings = [e for e in events if e["log.level"] == "warning"]
        assert len(warnings) == 1  # said once, not once per retry
