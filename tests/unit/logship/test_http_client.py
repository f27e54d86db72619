"""logship's HTTP client against real sockets: servers on loopback that answer the ways
HTTP/1.1 servers and proxies do (lengths, chunks, an answer ended by closing, gzip,
interim answers, keep-alive closed while idle, garbage, silence), and its node pool's
rules, which are the official transport's (round robin, a node that did not answer rests
for 1, 2, 4 … 30 s, the first to wake is asked when all rest)."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio

from agents.logship.output.http import Client, NoAnswer, parse_nodes
from tests.unit.logship.loopback import Server, answer

pytestmark = pytest.mark.asyncio


def client(*urls: str, timeout: float = 5.0, clock: Callable[[], float] | None = None) -> Client:
    if clock is None:
        return Client(parse_nodes(list(urls)), timeout=timeout)
    return Client(parse_nodes(list(urls)), timeout=timeout, clock=clock)


@pytest_asyncio.fixture
async def echo() -> AsyncIterator[Server]:
    """Keep-alive: answers every request on a connection with its body's length."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            body = await srv.read_request(reader)
            wire = answer(200, b'{"got":%d}' % len(body), "content-type: application/json")
            if srv.heads[-1].startswith(b"HEAD "):  # the head of the answer, without its body
                wire = wire[: wire.index(b"\r\n\r\n") + 4]
            writer.write(wire)
            await writer.drain()

    async with Server(handler) as srv:
        yield srv


async def test_requests_share_one_keep_alive_connection(echo: Server) -> None:
    c = client(echo.url)
    for size in (0, 10, 100_000):
        response = await c.request("POST", "/_bulk", {"x-a": "1"}, b"x" * size)
        assert response.status == 200 and response.body == b'{"got":%d}' % size
    assert echo.connections == 1
    head = echo.heads[0].decode()
    assert head.startswith("POST /_bulk HTTP/1.1\r\n")
    assert "host: 127.0.0.1:" in head and "x-a: 1" in head and "content-length: 0" in head
    await c.close()


async def test_a_connection_the_server_closed_while_idle_is_replaced_not_an_error() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await srv.read_request(reader)
        writer.write(answer(200, b"{}"))  # keep-alive by HTTP/1.1's default ...
        await writer.drain()  # ... but the server closes it (an idle timeout)

    async with Server(handler) as srv:
        c = client(srv.url)
        for _ in range(3):
            assert (await c.request("POST", "/_bulk", {}, b"{}")).status == 200
            await asyncio.sleep(0.05)
        assert srv.connections == 3
        await c.close()


async def test_a_reused_connection_reset_before_any_answer_is_tried_once_more() -> None:
    """The close races with the next request: the request is written into a connection
    the server is closing. Bulk requests are idempotent (create with an _id)."""
    served = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        await srv.read_request(reader)
        served += 1
        writer.write(answer(200, b"{}"))
        await writer.drain()
        if served == 1:
            await srv.read_request(reader)  # the second request arrives ...
            return  # ... and the connection closes without an answer

    async with Server(handler) as srv:
        c = client(srv.url)
        assert (await c.request("POST", "/_bulk", {}, b"1")).status == 200
        assert (await c.request("POST", "/_bulk", {}, b"2")).status == 200
        assert srv.connections == 2 and served == 2
        await c.close()


@pytest.mark.parametrize(
    ("wire", "body"),
    [
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
            b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: 1\r\n\r\n",
            b"hello world",
        ),
        (b"HTTP/1.0 200 OK\r\n\r\nto the end", b"to the end"),
        (b"HTTP/1.1 100 Continue\r\n\r\n" + answer(201, b"after"), b"after"),
        (answer(200, gzip.compress(b'{"ok":1}'), "content-encoding: gzip"), b'{"ok":1}'),
    ],
    ids=["chunked", "ended-by-close", "interim-100", "gzip"],
)
async def test_answers_in_every_framing(wire: bytes, body: bytes) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await srv.read_request(reader)
        writer.write(wire)
        await writer.drain()

    async with Server(handler) as srv:
        c = client(srv.url)
        assert (await c.request("POST", "/_bulk", {}, b"{}")).body == body
        await c.close()


async def test_head_and_204_have_no_body_and_keep_the_connection() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await srv.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 512\r\n\r\n")  # HEAD: no body
        await srv.read_request(reader)
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await srv.read_request(reader)
        writer.write(answer(200, b"third"))
        await writer.drain()

    async with Server(handler) as srv:
        c = client(srv.url)
        assert (await c.request("HEAD", "/", {})).body == b""
        assert (await c.request("PUT", "/x", {}, b"{}")).status == 204
        assert (await c.request("GET", "/", {})).body == b"third"
        assert srv.connections == 1
        await c.close()


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", "not an HTTP answer from 127.0.0.1:"),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort", "after 5 bytes of the answer"),
        (b"", "before answering"),
        (b"HTTP/1.1 200 OK\r\n" + b"x-big: " + b"y" * 70_000 + b"\r\n\r\n", "over 65536 bytes"),
    ],
    ids=["not-http", "cut-short", "closed", "huge-head"],
)
async def test_no_answer_is_one_line_naming_the_node(wire: bytes, reason: str) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await srv.read_request(reader)
        writer.write(wire)
        await writer.drain()

    async with Server(handler) as srv:
        c = client(srv.url.replace("http://", "http://elastic:s3cret@"))
        with pytest.raises(NoAnswer, match=reason) as caught:
            await c.request("POST", "/_bulk", {}, b"{}")
        assert "s3cret" not in str(caught.value) and "\n" not in str(caught.value)
        await c.close()


async def test_a_server_that_never_answers_ends_at_the_timeout() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await srv.read_request(reader)
        await asyncio.sleep(60)

    async with Server(handler) as srv:
        c = client(srv.url, timeout=0.3)
        reason = r"^timed out: no answer from 127\.0\.0\.1:\d+ within 0\.3s$"
        with pytest.raises(NoAnswer, match=reason):
            await c.request("POST", "/_bulk", {}, b"{}")
        await c.close()


async def test_the_oldest_request_is_timed_from_its_start_until_it_is_let_go() -> None:
    """The gauge behind logship_oldest_request_seconds: a request waiting for its answer
    counts, connecting included; an answered or timed-out one no longer does."""
    now = [100.0]
    answering = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = srv.connections == 1
        await srv.read_request(reader)
        await answering.wait()
        if not first:
            await asyncio.sleep(60)  # the second is never answered
        writer.write(answer(200, b"{}"))
        await writer.drain()
        await asyncio.sleep(60)

    async with Server(handler) as srv:
        c = client(srv.url, clock=lambda: now[0])
        assert c.oldest_request() == 0.0
        first = asyncio.ensure_future(c.request("POST", "/_bulk", {}, b"{}"))
        await wait_until(lambda: srv.heads)
        now[0] += 3.0
        second = asyncio.ensure_future(c.request("POST", "/_bulk", {}, b"{}"))
        await asyncio.sleep(0.05)
        now[0] += 1.5
        assert c.oldest_request() == 4.5  # the first: the second is younger
        answering.set()
        assert (await first).status == 200
        await wait_until(lambda: len(srv.heads) == 2)
        assert c.oldest_request() == 1.5
        second.cancel()
        with pytest.raises(asyncio.CancelledError):
            await second
        assert c.oldest_request() == 0.0
        await c.close()


async def wait_until(condition: Callable[[], object], within: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + within
    while not condition():
        assert loop.time() < end, "not within 5 s"
        await asyncio.sleep(0.01)


async def test_refused_and_unresolvable_name_the_node() -> None:
    async with Server(lambda r, w: asyncio.sleep(0)) as srv:
        url = srv.url
    c = client(url)
    with pytest.raises(NoAnswer, match=r"connection refused by 127\.0\.0\.1:\d+"):
        await c.request("HEAD", "/", {})
    c = client("http://no-such-host.invalid:9200")
    with pytest.raises(NoAnswer, match=r"cannot connect to no-such-host\.invalid:9200: "):
        await c.request("HEAD", "/", {})


async def test_credentials_of_a_url_go_to_its_node_only_and_path_prefixes_are_kept(
    echo: Server,
) -> None:
    c = client(echo.url.replace("http://", "http://u%40x:p%3Aw@") + "/es/", echo.url)
    await c.request("HEAD", "/", {})
    await c.request("HEAD", "/", {})
    with_auth = [h for h in echo.heads if b"authorization: Basic dUB4OnA6dw==" in h]
    assert len(with_auth) == 1 and with_auth[0].startswith(b"HEAD /es/ HTTP/1.1")
    # a header of the request wins over the URL's credentials
    await c.request("HEAD", "/", {"authorization": "ApiKey k"})
    await c.request("HEAD", "/", {"authorization": "ApiKey k"})
    assert all(b"Basic" not in h for h in echo.heads[2:])
    await c.close()


async def test_round_robin_over_the_nodes_not_resting() -> None:
    now = [1000.0]
    c = client("http://a:9200", "http://b:9200", "http://c:9200", clock=lambda: now[0])
    a, b, c_ = c.nodes
    assert [c.pick() for _ in range(6)] == [a, b, c_, a, b, c_]
    b.resting_until = 1005.0
    assert {c.pick() for _ in range(6)} == {a, c_}  # b rests
    a.resting_until, c_.resting_until = 1010.0, 1003.0
    assert {c.pick() for _ in range(3)} == {c_}  # all rest: the first to wake (c) is asked
    now[0] = 1005.0
    assert {c.pick() for _ in range(4)} == {b, c_}  # b and c are awake again


async def test_a_node_that_does_not_answer_rests_longer_each_time() -> None:
    async with Server(lambda r, w: asyncio.sleep(0)) as gone:
        down = gone.url  # refuses from now on
    now = [1000.0]
    c = client(down, clock=lambda: now[0])
    (node,) = c.nodes
    rests = []
    for _ in range(7):
        with pytest.raises(NoAnswer):
            await c.request("HEAD", "/", {})  # the only node: asked even while it rests
        rests.append(node.resting_until - now[0])
        now[0] += 0.5
    assert rests == [1, 2, 4, 8, 16, 30, 30]  # the official transport's backoff


async def test_an_answer_makes_a_resting_node_live_again(echo: Server) -> None:
    c = client(echo.url)
    (node,) = c.nodes
    node.failures, node.resting_until = 3, c.clock() + 60  # the only node: asked anyway
    assert (await c.request("HEAD", "/", {})).status == 200
    assert (node.failures, node.resting_until) == (0, 0.0)
    await c.close()


async def test_close_closes_the_idle_connections(echo: Server) -> None:
    c = client(echo.url)
    await c.request("HEAD", "/", {})
    (conn,) = c.nodes[0].idle
    await c.close()
    assert conn.writer.is_closing() and c.nodes[0].idle == []
