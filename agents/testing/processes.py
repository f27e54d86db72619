"""logship and the Elasticsearch stand-in as real processes, the way users run them:
`StandInProcess` is `python -m agents.testing.elasticsearch` on a free port, looked at and
given faults over its `/_standin/` API; `LogshipProcess` is `python -m agents.logship` on a
work directory, probed on `/readyz`, its JSON events read back from its stderr.

Only the standard library is imported here: each program pays its imports in its own
process. Waits are polls with a deadline; a program that exits while it is waited for
fails the wait at once, with what it wrote on stderr.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

__all__ = ["LogshipProcess", "StandInProcess"]

_LOGSHIP_INDICES = "logship-*"  # logship's default index, one per day


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _poll(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1).close()  # noqa: S310 - loopback
    except OSError:
        return False
    return True


class StandInProcess:
    """The Elasticsearch stand-in as its own process on 127.0.0.1.

        with StandInProcess(seed=1) as es:       # started; stopped (SIGTERM) at the end
            ...                                  # point logship at es.url
            es.control("fail_requests", status=503)
            assert es.count() == 10

    The port is chosen when the object is made, so a test can hand `.url` out before
    `start()`. `extra` goes to the stand-in's command line (`--version 9.0.0`). `docs`,
    `messages` and `count` look at logship's indices unless given another pattern.
    `prefix` runs it under another command (`ip netns exec NAME`, on another test host);
    `host` is the address `.url` names there (give `--host` among `extra` to listen on it).
    """

    def __init__(
        self, *extra: str, port: int | None = None, seed: int | None = None,
        prefix: Sequence[str] = (), host: str = "127.0.0.1",
    ) -> None:  # fmt: skip
        self.port = port or _free_port()
        self.url = f"http://{host}:{self.port}"
        seeded = ["--seed", str(seed)] if seed is not None else []
        self.args = [
            *prefix, sys.executable, "-m", "agents.testing.elasticsearch", "--port", str(self.port),
            *seeded, *extra,
        ]  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None
        self.launched_at = 0.0  # time.monotonic() just before the launch (see start)
        self._stderr: IO[bytes] | None = None
        self._stderr_text = ""

    def start(self, *, wait_ready: bool = True, timeout: float = 20.0) -> StandInProcess:
        """Launch it; unless told not to, wait until it answers `GET /`."""
        if self.proc is not None:
            raise RuntimeError("the stand-in is already started")
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        # Taken before the launch: it cannot answer earlier, and a client polling faster
        # than start() may see it answer before start() returns.
        self.launched_at = time.monotonic()
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=self._stderr)
        if wait_ready:
            _poll(self.ready, timeout, f"the stand-in to answer on {self.url}")
        return self

    def ready(self) -> bool:
        """It answers `GET /`; raises if its process has exited."""
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(
                f"the stand-in exited with {self.proc.returncode}:\n{self.stderr()[-3000:]}"
            )
        return _answers(self.url)

    def get(self, path: str, *, timeout: float = 5.0) -> Any:
        """`GET path` (with its query), its JSON answer."""
        with urllib.request.urlopen(self.url + path, timeout=timeout) as response:  # noqa: S310
            return json.loads(response.read())

    def control(self, op: str, **args: object) -> None:
        """`POST /_standin/<op>`: a fault (`down`, `fail_requests`, ...) or `reset_faults`."""
        request = urllib.request.Request(  # noqa: S310 - loopback
            f"{self.url}/_standin/{op}", data=json.dumps(args).encode(), method="POST",
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        urllib.request.urlopen(request, timeout=5).close()  # noqa: S310

    def docs(self, index: str = _LOGSHIP_INDICES, *, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The stored documents of `index` (a pattern), in write order per index."""
        return self.get(f"/_standin/docs?index={index}", timeout=timeout)["docs"]

    def messages(self, index: str = _LOGSHIP_INDICES, *, timeout: float = 5.0) -> Counter[str]:
        """How many times each `message` is stored: what exactly-once checks compare."""
        return Counter(d["message"] for d in self.docs(index, timeout=timeout))

    def count(self, index: str = _LOGSHIP_INDICES) -> int:
        return self.get(f"/_standin/count?index={index}")["count"]

    def requests(self) -> list[dict[str, Any]]:
        """Every Elasticsearch request it saw (`RecordedRequest.to_json()`), in order."""
        return self.get("/_standin/requests")["requests"]

    def stderr(self) -> str:
        """What it wrote on stderr so far (its JSON log lines)."""
        if self._stderr is None:
            return self._stderr_text
        fd = self._stderr.fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM and wait (killed if it outlasts `timeout`); its exit code. Safe twice."""
        proc = self.proc
        try:
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
                    raise
        finally:
            self._close_stderr()
        return None if proc is None else proc.returncode

    def _close_stderr(self) -> None:
        if self._stderr is not None:
            self._stderr_text = self.stderr()
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> StandInProcess:
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class LogshipProcess:
    """logship as its own process, shipping `workdir/logs/<glob>` to `es` with its data dir
    at `workdir/data` and its status server on a free loopback port (`.http`).

        shipper = LogshipProcess(es, tmp_path, "--batch-docs", "500").start()
        ...
        assert shipper.stop() == 0                 # SIGTERM: drain, exit code
        assert shipper.logged("drained")

    `es` is a `StandInProcess` or any Elasticsearch URL. A short `--flush-interval` and
    `--drain-quiet` keep tests quick; `extra` options come after them and win. `.args`
    is the command line, for a test to change before `start()`. stderr goes to a file in
    `workdir`, so `events()` can be read while logship runs. `prefix` runs it under
    another command (`ip netns exec NAME`, on another test host), its status server on
    `http_host` there.
    """

    def __init__(
        self, es: StandInProcess | str, workdir: Path, *extra: str, glob: str = "*.log",
        prefix: Sequence[str] = (), http_host: str = "127.0.0.1",
    ) -> None:  # fmt: skip
        self.http = _free_port()
        self.http_host = http_host
        self.workdir = workdir
        url = es if isinstance(es, str) else es.url
        self.args = [
            *prefix, sys.executable, "-m", "agents.logship", "--path", str(workdir / "logs" / glob),
            "--es", url, "--data-dir", str(workdir / "data"), "--http-port", str(self.http),
            "--http-host", http_host, "--flush-interval", "100ms", "--drain-quiet", "500ms",
            *extra,
        ]  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None
        self.stderr_path = workdir / f"logship-{self.http}.stderr"

    def start(self, *, wait_ready: bool = True, timeout: float = 20.0) -> LogshipProcess:
        """Launch it; unless told not to, wait until `/readyz` answers 200."""
        if self.proc is not None:
            raise RuntimeError("this logship is already started")
        with self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=err)
        if wait_ready:
            _poll(self.ready, timeout, "logship to be ready")
        return self

    def ready(self) -> bool:
        """`/readyz` answers 200; raises if logship has exited."""
        proc = self._started()
        if _answers(self.url("/readyz")):
            return True
        if proc.poll() is not None:
            raise RuntimeError(f"logship exited with {proc.returncode}:\n{self.stderr()[-3000:]}")
        return False

    def url(self, path: str) -> str:
        """The URL of `path` on its status server (`/healthz`, `/readyz`, `/metrics`)."""
        return f"http://{self.http_host}:{self.http}{path}"

    def metrics(self) -> str:
        with urllib.request.urlopen(self.url("/metrics"), timeout=5) as response:  # noqa: S310
            return response.read().decode()

    def metric(self, name: str) -> float:
        """The value of `logship_<name>` (a metric without labels)."""
        for line in self.metrics().splitlines():
            if line.startswith(f"logship_{name} "):
                return float(line.split()[-1])
        raise AssertionError(f"no metric logship_{name}")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def events(self) -> list[dict[str, Any]]:
        """Its JSON log events so far."""
        return [json.loads(x) for x in self.stderr().splitlines() if x.startswith("{")]

    def logged(self, message: str, **fields: object) -> list[dict[str, Any]]:
        """The events whose message starts with `message` and that carry these fields."""
        return [
            e for e in self.events()
            if e["message"].startswith(message) and all(e.get(k) == v for k, v in fields.items())
        ]  # fmt: skip

    def signal(self, sig: int = signal.SIGTERM) -> None:
        self._started().send_signal(sig)

    def wait(self, timeout: float = 30) -> int:
        """Wait for it to exit; its exit code."""
        return self._started().wait(timeout=timeout)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then wait for the drain and the exit; its exit code."""
        self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> None:
        """SIGKILL if it still runs: no drain, no registry save. Safe when never started."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def _started(self) -> subprocess.Popen[bytes]:
        if self.proc is None:
            raise RuntimeError("logship is not started")
        return self.proc
