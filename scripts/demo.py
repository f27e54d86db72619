"""`make demo`: the pod patterns end to end, on loopback, against the Elasticsearch stand-in.

1. waitfor holds an "app" back until a TCP port, an HTTP health check and a file are
   ready, then execs it; then the failure a user sees when a dependency never comes.
2. A pod's life with logship: waitfor waits for Elasticsearch (the stand-in, or a real
   one given as ELASTICSEARCH_URL), logship starts and is probed on /readyz like a
   native sidecar's startupProbe, an app writes startup lines and traffic, idles, and —
   after SIGTERM — logs its shutdown over 3 s, as a server waiting for its requests does;
   both get SIGTERM at once (a co-located sidecar: the harder case), logship sees the app
   and waits for it, and what was written is compared with what was indexed.
"""

from __future__ import annotations

import http.server
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from agents.testing.processes import StandInProcess

WAITFOR = [sys.executable, "-m", "agents.waitfor"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"status":"green"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def start_later(delay: float, port: int, marker: Path) -> None:
    def run() -> None:
        time.sleep(delay - 0.5)
        marker.write_text("migrations done\n")
        time.sleep(0.5)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Health)
        print(f"demo: dependency is up on 127.0.0.1:{port}", flush=True)
        server.serve_forever()

    threading.Thread(target=run, daemon=True).start()


def banner(text: str) -> None:
    print(f"\n=== {text}", flush=True)


def waitfor_demo() -> bool:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        marker = Path(tmp) / "migrated"
        start_later(1.5, port, marker)
        banner("waitfor holds the app until its dependencies are ready (they appear in 1.5 s)")
        cmd = [
            *WAITFOR,
            "--timeout",
            "20s",
            f"tcp://localhost:{port}",
            f"http://127.0.0.1:{port}/_cluster/health#status=200&json=status:green,yellow",
            f"file://{marker}#nonempty",
            "--",
            "sh",
            "-c",
            'echo "app: started as PID $$ with its dependencies ready"',
        ]
        print("$ waitfor " + " ".join(cmd[3:]), flush=True)
        ready = subprocess.run(cmd, check=False).returncode
        print(f"exit code {ready}", flush=True)

        banner("a dependency that never comes: waitfor times out with exit 124 and says why")
        cmd = [*WAITFOR, "--timeout", "2s", f"tcp://127.0.0.1:{free_port()}"]
        print("$ waitfor " + " ".join(cmd[3:]), flush=True)
        failed = subprocess.run(cmd, check=False).returncode
        print(f"exit code {failed}", flush=True)
    return ready == 0 and failed == 124


APP = str(Path(__file__).with_name("demo_app.py"))


def http_json(url: str) -> dict:  # type: ignore[type-arg]
    import json
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
        return json.loads(response.read())


def logship_demo() -> bool:
    import json

    es_url = os.environ.get("ELASTICSEARCH_URL")
    standin = None
    if not es_url:  # launched, not waited for: waiting is waitfor's part of the demo
        standin = StandInProcess().start(wait_ready=False)
        es_url = standin.url
    with tempfile.TemporaryDirectory() as tmp:
        logs, data = Path(tmp) / "log-volume", Path(tmp) / "log-volume" / ".logship"
        logs.mkdir()
        log = logs / "app.log"
        http = free_port()
        try:
            banner("init container: waitfor waits for Elasticsearch to be ready for writes")
            target = f"{es_url}/_cluster/health#json=status:green,yellow"
            subprocess.run([*WAITFOR, "--timeout", "30s", target], check=True)

            banner("native sidecar: logship starts; the pod waits for its /readyz")
            shipper = subprocess.Popen(
                [sys.executable, "-m", "agents.logship", "--path", str(logs / "*.log"),
                 "--es", es_url, "--data-dir", str(data), "--http-port", str(http),
                 "--http-host", "127.0.0.1", "--log-format", "text", "--index", "demo-logs"],
            )  # fmt: skip
            subprocess.run([*WAITFOR, "--quiet", "--timeout", "30s",
                            f"http://127.0.0.1:{http}/readyz"], check=True)  # fmt: skip

            banner("the app runs: startup lines, traffic, then it idles (its file quiet)")
            app = subprocess.Popen([sys.executable, APP, str(log), "--idle-after", "200",
                                    "--shutdown-delay", "3"])  # fmt: skip
            time.sleep(3.5)
            banner("pod termination: SIGTERM to the app and to logship at the same moment; "
                   "the app logs its shutdown over 3 s")  # fmt: skip
            app.send_signal(signal.SIGTERM)
            shipper.send_signal(signal.SIGTERM)
            app.wait(timeout=30)
            app_exited = time.monotonic()
            code = shipper.wait(timeout=60)
            drain_cost = time.monotonic() - app_exited

            written = log.read_text().splitlines()
            docs = http_json(f"{es_url}/demo-logs/_search?size=10000")["hits"]["hits"]
            indexed = [d["_source"]["message"] for d in docs]
            missing = set(written) - set(indexed)
            doubled = len(indexed) - len(set(indexed))
            banner("written vs indexed")
            rows = [
                ("lines written by the app", len(written)),
                ("  of them startup lines", sum(w.startswith("startup") for w in written)),
                ("  of them shutdown lines (after SIGTERM)",
                 sum(w.startswith("shutdown") for w in written)),
                ("documents indexed", len(indexed)),
                ("missing", len(missing)),
                ("duplicated", doubled),
                ("logship exit code", code),
                ("logship exited after the app (s)", f"{drain_cost:.2f}"),
            ]  # fmt: skip
            for label, value in rows:
                print(f"  {label:<42} {value}")
            print("  last line indexed:", json.dumps(indexed[-1] if indexed else None))
            return code == 0 and not missing and doubled == 0 and len(indexed) == len(written)
        finally:
            if standin is not None:
                standin.stop()


def main() -> int:
    ok = waitfor_demo()
    ok = logship_demo() and ok
    banner("demo " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
