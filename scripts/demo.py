"""`make demo`: waitfor holding an "app" back until its dependencies come up.

Starts nothing but loopback servers of its own: a TCP port and an HTTP health endpoint
that appear 1.5 s after the start and a file written after 1 s, then runs waitfor the
way an init container would, exec'ing the app when all are ready. Then shows the failure
a user sees in `kubectl logs` when a dependency never comes.
"""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

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


def main() -> int:
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
    ok = ready == 0 and failed == 124
    banner("demo " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
