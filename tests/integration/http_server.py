"""A controllable HTTP(S) server on a loopback port, in a thread: real sockets, real TLS."""

from __future__ import annotations

import http.server
import json
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Handler = Callable[["http.server.BaseHTTPRequestHandler"], tuple[int, dict[str, str], bytes]]


@dataclass
class Route:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)


class HttpServer:
    """Routes map a path to a Route or a function of the request handler."""

    def __init__(self, tls: ssl.SSLContext | None = None, host: str = "127.0.0.1") -> None:
        self.routes: dict[str, Route | Handler] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        owner = self

        class RequestHandler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                owner.requests.append((self.command, self.path, dict(self.headers.items())))
                route = owner.routes.get(self.path.split("?")[0])
                if route is None:
                    status, headers, body = 404, {}, b"not found"
                elif isinstance(route, Route):
                    status, headers, body = route.status, route.headers, route.body
                else:
                    status, headers, body = route(self)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_POST = do_HEAD = do_PUT = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer((host, 0), RequestHandler)
        self.httpd.daemon_threads = True
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.scheme = "https" if tls else "http"
        self.url = (
            f"{self.scheme}://localhost:{self.port}" if tls else (f"http://127.0.0.1:{self.port}")
        )
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def json(self, path: str, document: object, status: int = 200) -> None:
        body = json.dumps(document).encode()
        self.routes[path] = Route(status, body, {"Content-Type": "application/json"})

    def __enter__(self) -> HttpServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)
