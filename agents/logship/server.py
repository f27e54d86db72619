"""/healthz, /readyz and /metrics on aiohttp's runner: set up, serve, clean up.

/readyz answers 200 once logship watches its paths, so a native sidecar's startupProbe
holds the app back until no startup line can be missed. Both /healthz and /readyz
answer 503 at once when a task of logship failed (it is about to exit 1 and be
restarted). /metrics is Prometheus text and shows counters and per-file lag only: no
secrets, no file contents.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from agents.logship.pipeline import Stats

if TYPE_CHECKING:
    from aiohttp import web


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
        self._runner: Any = None
        self._web: Any = None

    async def setup(self) -> None:
        import asyncio
        import importlib

        # In a thread: the event loop goes on opening and reading files meanwhile.
        web = await asyncio.to_thread(importlib.import_module, "aiohttp.web")

        self._web = web
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics_handler)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]

    async def cleanup(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, request: web.Request) -> web.Response:
        if self._alive():
            return self._web.Response(text="ok\n")
        return self._web.Response(status=503, text="failed\n")

    async def _readyz(self, request: web.Request) -> web.Response:
        if self._ready():
            return self._web.Response(text="ready\n")
        return self._web.Response(status=503, text="not watching yet\n")

    async def _metrics_handler(self, request: web.Request) -> web.Response:
        return self._web.Response(text=self._metrics(), content_type="text/plain", charset="utf-8")
