"""The status server on a real port, asked as kubelet probes and Prometheus ask (and as
a stray client might): one answer per connection, then closed."""

from __future__ import annotations

import asyncio

import pytest

from agents.logship.server import StatusServer

pytestmark = pytest.mark.asyncio


async def ask(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 5)  # the server closes after one answer
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


async def test_probes_metrics_and_what_is_not_served() -> None:
    state = {"ready": False, "alive": True}
    server = StatusServer(
        "127.0.0.1", 0, ready=lambda: state["ready"], alive=lambda: state["alive"],
        metrics=lambda: "logship_x 1\n",
    )  # fmt: skip
    await server.setup()
    port = server.port
    assert port != 0
    try:
        get = b"GET %s HTTP/1.1\r\nHost: x\r\nUser-Agent: kube-probe/1.29\r\n\r\n"
        assert (await ask(port, get % b"/healthz"))[0] == 200
        assert (await ask(port, get % b"/readyz"))[0] == 503
        state["ready"] = True
        status, headers, body = await ask(port, get % b"/readyz?verbose")
        assert (status, body) == (200, b"ready\n")
        assert headers["content-length"] == "6" and headers["connection"] == "close"
        status, headers, body = await ask(port, get % b"/metrics")
        assert (status, body) == (200, b"logship_x 1\n")
        assert headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
        status, headers, body = await ask(port, b"HEAD /metrics HTTP/1.1\r\n\r\n")
        assert (status, headers["content-length"], body) == (200, "12", b"")
        assert (await ask(port, get % b"/"))[0] == 404
        assert (await ask(port, b"POST /readyz HTTP/1.1\r\nContent-Length: 0\r\n\r\n"))[0] == 405
        assert (await ask(port, b"hello\r\n\r\n"))[0] == 400
        state["alive"] = False
        assert (await ask(port, get % b"/healthz"))[0] == 503
    finally:
        await server.cleanup()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)


async def test_a_client_that_never_asks_does_not_hold_cleanup_up() -> None:
    server = StatusServer("127.0.0.1", 0, ready=lambda: True, metrics=lambda: "")
    await server.setup()
    _, silent = await asyncio.open_connection("127.0.0.1", server.port)
    await asyncio.sleep(0.05)
    await asyncio.wait_for(server.cleanup(), 5)
    silent.close()
