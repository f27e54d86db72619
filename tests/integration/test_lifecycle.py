"""The `k8s/` manifests run the way the kubelet runs them (tests/kubelet.py): init
containers in order, native sidecars gated on their startupProbe, the app, then
termination — app first and sidecar after it (native sidecar), or both at once
(co-located). Each pattern runs twice: as plain processes, and as containers from our
images (marker `containers`; skipped, saying why, without a Docker engine or the images).

Asserted: waitfor holds the app back until its dependency appears; every line the app
wrote, its startup and shutdown lines included, reaches the Elasticsearch stand-in exactly
once; every container gets SIGTERM and honours it (exit 0 for logship and the app, no
SIGKILL needed); in containers, the program is PID 1, runs as uid 65532 and cannot write
to its root filesystem."""

from __future__ import annotations

import http.server
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from agents import __version__
from agents.testing.processes import StandInProcess
from tests.helpers import exactly_once, free_port, require, wait_for
from tests.kubelet import Binding, Pod

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DEMO_APP = ROOT / "scripts" / "demo_app.py"
WAITFOR = f"pod-agents/waitfor:{__version__}"
LOGSHIP = f"pod-agents/logship:{__version__}"
JOB_LOG = "/var/log/job/report.log"
SECRETS = {"elasticsearch-credentials": {"username": "logship", "password": "s3cret-pw"}}

pytestmark = pytest.mark.integration


def manifest(path: str, name: str | None = None) -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all((ROOT / "k8s" / path).read_text()) if d]
    return next(d for d in docs if name is None or d["metadata"]["name"] == name)


def app(*args: str) -> Binding:
    """The demo app standing in for the user's image (it runs in the logship image,
    which has a Python)."""
    return Binding(
        process=(sys.executable, str(DEMO_APP)), image=LOGSHIP,
        entrypoint=("/opt/pod-agents/bin/python", "/demo/demo_app.py"), args=args,
        mounts={str(DEMO_APP): "/demo/demo_app.py"},
    )  # fmt: skip


def bindings(**apps: Binding) -> dict[str, Binding]:
    return {
        WAITFOR: Binding(process=(str(BIN / "waitfor"),), image=WAITFOR),
        # The labels file is a default path, not an argument: named so process mode maps it.
        LOGSHIP: Binding(
            process=(str(BIN / "logship"),),
            image=LOGSHIP,
            env={"LOGSHIP_LABELS_FILE": "/etc/podinfo/labels"},
        ),
        **apps,
    }


@pytest.fixture(params=["process", pytest.param("docker", marks=pytest.mark.containers)])
def runtime(request: pytest.FixtureRequest) -> str:
    if request.param == "docker":
        require(WAITFOR)
        require(LOGSHIP)
    return str(request.param)


@pytest.fixture
def es() -> Iterator[StandInProcess]:
    """The stand-in on its port, not started: the test starts it when its pod should see
    Elasticsearch come up."""
    server = StandInProcess()
    yield server
    server.stop()


class StartWhen(threading.Thread):
    """Calls `start` once `container` of `pod` has said `said` (waitfor: "not ready") and
    `not_before` seconds have passed: a dependency that appears while its checker waits,
    however long the checker took to start. `met` says whether it said so within
    `timeout`; if not, `start` is called anyway so the pod goes on to fail the test."""

    def __init__(self, pod: Pod, container: str, said: str, start: Any, *,
                 not_before: float = 0.0, timeout: float = 60.0) -> None:  # fmt: skip
        super().__init__(daemon=True)
        self.pod, self.container, self.said, self.start_it = pod, container, said, start
        self.not_before, self.timeout = not_before, timeout
        self.met = False
        self.start()

    def _has_said(self) -> bool:
        try:
            return self.said in self.pod.output(self.container)
        except (KeyError, OSError):  # not started yet
            return False

    def run(self) -> None:
        begun = time.monotonic()
        while not self._has_said():
            if time.monotonic() > begun + self.timeout:
                break
            time.sleep(0.05)
        else:
            self.met = True
        time.sleep(max(0.0, begun + self.not_before - time.monotonic()))
        self.start_it()


def app_traffic(lines: list[str]) -> bool:
    """The demo app has written traffic: it runs, its SIGTERM handler set."""
    return any(line.startswith("GET /items/") for line in lines)


@pytest.fixture
def pods() -> Iterator[list[Pod]]:
    made: list[Pod] = []
    yield made
    for pod in made:
        pod.cleanup()


def make_pod(pods: list[Pod], doc: dict[str, Any], runtime: str, tmp_path: Path,
             **kwargs: Any) -> Pod:  # fmt: skip
    pod = Pod(doc, runtime=runtime, workdir=tmp_path, secrets=SECRETS, **kwargs)
    pods.append(pod)
    return pod


def lines_of(path: Path) -> list[str]:
    return path.read_text().splitlines()


def assert_contained(pod: Pod, container: str, program: str) -> None:
    """In a container: the program is PID 1, as uid 65532, on a read-only root."""
    handle = pod.running[container].handle
    if pod.runtime.name != "docker":
        return
    assert program in handle.exec("cat", "/proc/1/cmdline").stdout  # type: ignore[attr-defined]
    assert handle.exec("id", "-u").stdout.strip() == "65532"  # type: ignore[attr-defined]
    touched = handle.exec("touch", "/opt/pod-agents/x")  # type: ignore[attr-defined]
    assert touched.returncode != 0
    assert "Read-only file system" in touched.stderr


def assert_shipped_exactly_once(es: StandInProcess, logfile: Path, pod: Pod) -> None:
    written = lines_of(logfile)
    assert written[0] == "startup: loading module 0"
    assert written[-1] == "shutdown: bye", "the app did not finish its shutdown lines"
    exactly_once(es.messages(), written)
    doc = es.docs()[0]
    assert doc["kubernetes"]["pod"]["name"] == pod.name
    assert doc["kubernetes"]["pod"]["uid"] == pod.uid
    assert doc["kubernetes"]["labels"] == pod.meta["labels"]


def test_init_containers_hold_the_app_until_their_dependencies_answer(
    runtime: str, tmp_path: Path, pods: list[Pod], postgres_factory: Any
) -> None:
    db = postgres_factory()
    api_port = free_port()
    api_up: list[float] = []

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/healthz" else 404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    api = http.server.ThreadingHTTPServer(("127.0.0.1", api_port), Health)

    def start_api() -> None:
        api_up.append(time.monotonic())
        threading.Thread(target=api.serve_forever, daemon=True).start()

    pod = make_pod(
        pods, manifest("02-init-containers/pod.yaml", "simple-webapp"), runtime, tmp_path,
        bindings=bindings(**{"simple-webapp": app("-")}),
        services={"db:5432": f"127.0.0.1:{db.port}", "api:8080": f"127.0.0.1:{api_port}"},
    )  # fmt: skip
    # Each dependency appears once its checker has found it missing (db: not before 1.5 s).
    db_thread = StartWhen(pod, "db-checker", "not ready", db.start, not_before=1.5)
    api_thread = StartWhen(pod, "api-checker", "not ready", start_api)
    try:
        started = time.monotonic()
        pod.start(timeout=90)
        db_thread.join()
        api_thread.join()
        assert db_thread.met, pod.output("db-checker")
        assert api_thread.met, pod.output("api-checker")
        # db-checker held the pod until PostgreSQL answered, api-checker until /healthz did.
        assert pod.when("db-checker", "exited") > started + 1.5
        assert pod.when("api-checker", "started") >= pod.when("db-checker", "exited")
        assert pod.when("api-checker", "exited") > api_up[0]
        assert pod.when("simple-webapp", "started") >= pod.when("api-checker", "exited")
        assert pod.running["db-checker"].exit_code == 0
        assert pod.running["api-checker"].exit_code == 0
        assert "ready" in pod.output("api-checker")
        wait_for(lambda: app_traffic(pod.output("simple-webapp").splitlines()),
                 what="the app to run")  # fmt: skip
        pod.delete()
        assert pod.running["simple-webapp"].exit_code == 0
        assert not pod.running["simple-webapp"].killed
    finally:
        api.shutdown()
        api.server_close()


def test_native_sidecar_ships_startup_and_shutdown_lines_and_stops_last(
    runtime: str, tmp_path: Path, pods: list[Pod], es: StandInProcess
) -> None:
    pod = make_pod(
        pods, manifest("03-native-sidecar/pod.yaml"), runtime, tmp_path,
        bindings=bindings(**{"simple-webapp": app("/var/log/app/app.log")}),
        services={"elasticsearch:9200": f"127.0.0.1:{es.port}"},
    )  # fmt: skip
    es_thread = StartWhen(pod, "wait-for-es", "not ready", es.start, not_before=1.5)
    pod.start(timeout=90)
    es_thread.join()
    assert es_thread.met, pod.output("wait-for-es")
    # wait-for-es held logship until Elasticsearch answered; the startupProbe held the app.
    assert pod.when("wait-for-es", "exited") > es.launched_at > 0
    assert pod.running["wait-for-es"].exit_code == 0
    assert pod.when("logshipper", "started") >= pod.when("wait-for-es", "exited")
    assert pod.when("simple-webapp", "started") >= pod.when("logshipper", "ready")
    assert_contained(pod, "logshipper", "logship")
    # The app runs and logship ships its traffic (a fixed sleep raced with slow starts).
    wait_for(lambda: app_traffic(list(es.messages())), what="the app's traffic to ship")
    pod.delete()
    # The kubelet's order for a native sidecar: the app stops first, then logship.
    assert pod.when("simple-webapp", "exited") <= pod.when("logshipper", "sigterm")
    for name in ("simple-webapp", "logshipper"):
        assert pod.running[name].exit_code == 0, pod.output(name)[-3000:]
        assert not pod.running[name].killed
    assert_shipped_exactly_once(es, pod.volume("app-logs") / "app.log", pod)


@pytest.mark.parametrize(
    ("path", "app_name", "agent", "volume", "logfile", "service"),
    [
        ("01-colocated-sidecar/pod.yaml", "simple-webapp", "log-agent", "app-logs",
         "/var/log/app/app.log", "elasticsearch:9200"),
        ("04-event-simulator/pod.yaml", "kodekloud/event-simulator", "sidecar", "log-volume",
         "/log/app.log", "elasticsearch.elastic-stack:9200"),
    ],
    ids=["01-colocated-sidecar", "04-event-simulator"],
)  # fmt: skip
def test_colocated_sidecar_gets_sigterm_with_the_app_and_still_ships_everything(
    runtime: str, tmp_path: Path, pods: list[Pod], es: StandInProcess,
    path: str, app_name: str, agent: str, volume: str, logfile: str, service: str,
) -> None:  # fmt: skip
    es.start()
    pod = make_pod(
        pods, manifest(path), runtime, tmp_path,
        bindings=bindings(**{app_name: app(logfile)}),
        services={service: f"127.0.0.1:{es.port}"},
    )  # fmt: skip
    pod.start(timeout=60)
    app_container = next(c["name"] for c in pod.spec["containers"] if c["image"] == app_name)
    assert_contained(pod, agent, "logship")
    # The app runs and logship ships its traffic (a fixed sleep raced with slow starts).
    wait_for(lambda: app_traffic(list(es.messages())), what="the app's traffic to ship")
    pod.delete()
    # Co-located: both at once; logship reads the shutdown lines written after its SIGTERM.
    assert abs(pod.when(agent, "sigterm") - pod.when(app_container, "sigterm")) < 1.0
    assert pod.when(agent, "sigterm") < pod.when(app_container, "exited")
    for name in (app_container, agent):
        assert pod.running[name].exit_code == 0, pod.output(name)[-3000:]
        assert not pod.running[name].killed
    assert_shipped_exactly_once(es, pod.volume(volume) / Path(logfile).name, pod)


def test_job_with_a_native_sidecar_completes_and_its_logs_ship(
    runtime: str, tmp_path: Path, pods: list[Pod], es: StandInProcess
) -> None:
    es.start()
    pod = make_pod(
        pods, manifest("05-job-native-sidecar/job.yaml"), runtime, tmp_path,
        bindings=bindings(**{"nightly-report": app(JOB_LOG, "--exit-after", "400")}),
        services={"elasticsearch:9200": f"127.0.0.1:{es.port}"},
    )  # fmt: skip
    pod.start(timeout=60)
    pod.run_to_completion(timeout=60)
    # The job's container finished by itself; only then did the kubelet stop logship.
    assert pod.when("report", "exited") <= pod.when("logshipper", "sigterm")
    assert pod.phase() == "Succeeded"
    assert pod.running["logshipper"].exit_code == 0
    assert not pod.running["logshipper"].killed
    written = lines_of(pod.volume("job-logs") / "report.log")
    assert len(written) == 20 + 400 + 31
    assert_shipped_exactly_once(es, pod.volume("job-logs") / "report.log", pod)
