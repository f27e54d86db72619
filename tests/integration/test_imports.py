"""waitfor imports only what its targets need: start-up time and memory depend on it."""

import json
import socket
import subprocess
import sys

PROBE = """
import json, sys
from agents.waitfor.cli import main
code = main(sys.argv[1:], {})
heavy = ["asyncio", "aiohttp", "dns", "elastic_transport", "elasticsearch", "watchdog", "yaml"]
print(json.dumps({"code": code, "loaded": [m for m in heavy if m in sys.modules]}))
"""


def modules_loaded_for(*targets: str) -> dict:  # type: ignore[type-arg]
    result = subprocess.run(
        [sys.executable, "-c", PROBE, "--quiet", "--timeout", "1s", *targets],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    return json.loads(result.stdout)


def test_dependencies_already_up_are_confirmed_without_an_event_loop() -> None:
    with socket.create_server(("127.0.0.1", 0)) as srv:
        port = srv.getsockname()[1]
        report = modules_loaded_for(f"tcp://127.0.0.1:{port}", "file:///")
    assert report == {"code": 0, "loaded": []}


def test_plain_targets_load_no_http_or_dns_library() -> None:
    with socket.create_server(("127.0.0.1", 0)) as srv:
        port = srv.getsockname()[1]
        report = modules_loaded_for(f"tcp://127.0.0.1:{port}", "file:///", "exec:true")
    assert report == {"code": 0, "loaded": ["asyncio"]}


def test_http_target_loads_no_http_library() -> None:
    with socket.create_server(("127.0.0.1", 0)) as srv:
        report = modules_loaded_for(f"http://127.0.0.1:{srv.getsockname()[1]}/")
    assert report["loaded"] == ["asyncio"]


def test_dns_target_loads_no_dns_library() -> None:
    report = modules_loaded_for("dns://localhost#server=127.0.0.1:1")
    assert report["loaded"] == ["asyncio"]
