"""/healthz, /readyz and /metrics: set up, serve, clean up.

/readyz answers 200 once logship watches its paths, so a native sidecar's startupProbe
holds the app back until no startup line can be missed. Both /healthz and /readyz
answer 503 at once when a task of logship failed (it is about to exit 1 and be
restarted). /metrics is Prometheus text and shows counters and per-file lag only: no
secrets, no file contents.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from agents.logship.pipeline import Stats


def render_metrics(stats: Stats, lag: dict[str, int], extra: dict[str, float]) -> str:
    """Prometheus text exposition of the pipeline's counters and each file's lag."""
    rows: list[tuple[str, str, str, float]] = [
        ("lines_read_total", "counter", "Events read from files.", stats.events_in),
        ("events_acked_total", "counter", "Events acknowledged.", stats.events_acked),
        ("bytes_acked_total", "counter", "Document bytes acknowledged.", stats.bytes_acked),
        ("bulk_requests_total", "counter", "Bulk requests sent.", stats.bulk_requests),
        ("retries_total", "counter", "Retried requests or item sets.", stats.retries),
        ("dead_lettered_total", "counter", "Events sent to the dead letter.", stats.dead_lettered),
        ("queue_bytes", "gauge", "Bytes of unacknowledged events held.", stats.queue_bytes),
        ("elasticsearch_reachable", "gauge", "1 when the last bulk request got an answer.",
         1 if stats.es_reachable else 0),
    ]  # fmt: skip
    rows += [
        (name, "gauge", name.replace("_", " ").capitalize() + ".", v) for name, v in extra.items()
    ]
    lines: list[str] = []
    for name, kind, text, value in rows:
        lines += [f"# HELP logship_{name} {text}", f"# TYPE logship_{name} {kind}",
                  f"logship_{name} {value}"]  # fmt: skip
    lines += [
        "# HELP logship_file_lag_bytes Bytes written but not yet read, per file.",
        "# TYPE logship_file_lag_bytes gauge",
    ]
    for path, behind in sorted(lag.items()):
        label = path.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        lines.append(f'logship_file_lag_bytes{{path="{label}"}} {behind}')
    return "\n".join(lines) + "\n"


class StatusServer:
    """A small HTTP/1.1 server on asyncio streams: GET (or HEAD) of three paths, one answer
    per connection (`Connection: close`), which is what kubelet probes and Prometheus
    scrapes ask. `setup()` listens, `cleanup()` closes it and every open connection."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        ready: Callable[[], bool],
        metrics: Callable[[], str],
        alive: Callable[[], bool] = lambda: True,
    ) -> None:
        self.host, self.port = host, port
        self._ready, self._metrics, self._alive = ready, metrics, alive
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()

    async def setup(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port,
                                                  limit=MAX_REQUEST_HEAD)  # fmt: skip
        self.port = self._server.sockets[0].getsockname()[1]

    async def cleanup(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._open):
                writer.close()
            await self._server.wait_closed()
            self._server = None

    def answer(self, method: str, path: str) -> tuple[int, str, str]:
        """(status, content type, body) for a request: the whole routing table."""
        if path not in ("/healthz", "/readyz", "/metrics"):
            return 404, TEXT, "not found: /healthz, /readyz and /metrics are served\n"
        if method not in ("GET", "HEAD"):
            return 405, TEXT, "method not allowed: GET or HEAD\n"
        if path == "/healthz":
            return (200, TEXT, "ok\n") if self._alive() else (503, TEXT, "failed\n")
        if path == "/readyz":
            return (200, TEXT, "ready\n") if self._ready() else (503, TEXT, "not watching yet\n")
        return 200, PROMETHEUS, self._metrics()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._open.add(writer)
        try:
            try:
                async with asyncio.timeout(READ_TIMEOUT):
                    head = await reader.readuntil(b"\r\n\r\n")
                method, path = _request_line(head)
            except (ValueError, asyncio.LimitOverrunError):
                method, path, status, kind, body = "GET", "", 400, TEXT, "bad request\n"
            else:
                status, kind, body = self.answer(method, path)
            data = body.encode("utf-8")
            writer.write(
                f"HTTP/1.1 {status} {REASONS[status]}\r\ncontent-type: {kind}\r\n"
                f"content-length: {len(data)}\r\nconnection: close\r\n\r\n".encode("ascii")
                + (b"" if method == "HEAD" else data)
            )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass  # a client that went away or never asked: nothing to answer
        finally:
            self._open.discard(writer)
            writer.close()


def _request_line(head: bytes) -> tuple[str, str]:
    parts = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise ValueError("not an HTTP/1 request line")
    return parts[0], parts[1].split("?", 1)[0]


MAX_REQUEST_HEAD = 16 * 1024
READ_TIMEOUT = 10.0  # for the request's head: a connection that says nothing is closed
TEXT = "text/plain; charset=utf-8"
PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
           503: "Service Unavailable"}  # fmt: skip
