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
import json
import os
import re
import subprocess
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
from tests.helpers import exactly_once, free_port, kustomize, require, wait_for
from tests.integration.servers import REDIS_PASSWORD
from tests.kubelet import SUFFIX_CHARS, Binding, Pod, PodFailed, as_pod

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DEMO_APP = ROOT / "scripts" / "demo_app.py"
WAITFOR = f"pod-agents/waitfor:{__version__}"
LOGSHIP = f"pod-agents/logship:{__version__}"
JOB_LOG = "/var/log/job/report.log"
FIXTURES = ROOT / "tests" / "fixtures" / "inject"
SECRETS = {"elasticsearch-credentials": {"username": "logship", "password": "s3cret-pw"}}

pytestmark = pytest.mark.integration


def manifest(path: str, name: str | None = None) -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all((ROOT / "k8s" / path).read_text()) if d]
    return next(d for d in docs if name is None or d["metadata"]["name"] == name)


def app(*args: str, stands_in: bool = False) -> Binding:
    """The demo app standing in for the user's image (it runs in the logship image,
    which has a Python); `stands_in`: in place of the manifest's own command and args."""
    return Binding(
        process=(sys.executable, str(DEMO_APP)), image=LOGSHIP,
        entrypoint=("/opt/pod-agents/bin/python", "/demo/demo_app.py"), args=args,
        mounts={str(DEMO_APP): "/demo/demo_app.py"}, stands_in=stands_in,
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
    kwargs.setdefault("secrets", SECRETS)
    pod = Pod(doc, runtime=runtime, workdir=tmp_path, **kwargs)
    pods.append(pod)
    return pod


def lines_of(path: Path) -> list[str]:
    return path.read_text().splitlines()


def assert_contained(pod: Pod, container: str, program: str) -> None:
    """In a container: the program is PID 1 (or runs beside the pause process, with
    shareProcessNamespace), as uid 65532, on a read-only root."""
    handle = pod.running[container].handle
    if pod.runtime.name != "docker":
        return
    pid1 = handle.exec("cat", "/proc/1/cmdline").stdout  # type: ignore[attr-defined]
    if pod.spec.get("shareProcessNamespace"):  # the pause process is PID 1, as on a node
        assert pid1.startswith("sleep\0infinity"), pid1
        seen = handle.exec("sh", "-c", "cat /proc/[0-9]*/cmdline")  # type: ignore[attr-defined]
        assert program in seen.stdout
    else:
        assert program in pid1
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


# Apps that log their shutdown late: the pattern, its manifest, the app's container and
# image, logship's container, the log volume and file, the Elasticsearch service address,
# and the Kubernetes version whose termination order the harness follows.
LATE = {
    "01-colocated-sidecar": ("01-colocated-sidecar/pod.yaml", "simple-webapp", "simple-webapp",
                             "log-agent", "app-logs", "/var/log/app/app.log",
                             "elasticsearch:9200", (1, 29)),
    "04-event-simulator": ("04-event-simulator/pod.yaml", "app", "kodekloud/event-simulator",
                           "sidecar", "log-volume", "/log/app.log",
                           "elasticsearch.elastic-stack:9200", (1, 29)),
    "03-native-sidecar": ("03-native-sidecar/pod.yaml", "simple-webapp", "simple-webapp",
                          "logshipper", "app-logs", "/var/log/app/app.log",
                          "elasticsearch:9200", (1, 29)),
    "03-native-sidecar-k8s-1.28": ("03-native-sidecar/pod.yaml", "simple-webapp",
                                   "simple-webapp", "logshipper", "app-logs",
                                   "/var/log/app/app.log", "elasticsearch:9200", (1, 28)),
    "05-job-native-sidecar": ("05-job-native-sidecar/job.yaml", "report", "nightly-report",
                              "logshipper", "job-logs", JOB_LOG, "elasticsearch:9200", (1, 29)),
}  # fmt: skip


def late_cases() -> list[Any]:
    cases = []
    for pattern in LATE:
        for delay in (0.5, 3.0, 10.0):
            cases.append(pytest.param(pattern, delay, "process", id=f"{pattern}-{delay}s-process"))
            cases.append(pytest.param(pattern, delay, "docker", id=f"{pattern}-{delay}s-docker",
                                      marks=pytest.mark.containers))  # fmt: skip
    return cases


@pytest.mark.parametrize(("pattern", "delay", "runtime_name"), late_cases())
def test_an_app_idle_before_the_stop_and_slow_to_shut_down_has_every_line_shipped(
    tmp_path: Path, pods: list[Pod], es: StandInProcess,
    pattern: str, delay: float, runtime_name: str,
) -> None:  # fmt: skip
    """Issue 12: the app's file is quiet for seconds before the pod is deleted, and the
    app logs its shutdown over `delay` seconds after SIGTERM (a server waiting for its
    in-flight requests). Whatever order the kubelet signals in — co-located, native on
    1.29, native on 1.28 (together), a Job — every line ships exactly once."""
    path, app_container, image, agent, volume, logfile, service, version = LATE[pattern]
    if runtime_name == "docker":
        require(WAITFOR)
        require(LOGSHIP)
    es.start()
    job = pattern.startswith("05")
    shape = ["--exit-after", "200"] if job else ["--idle-after", "50"]
    pod = make_pod(
        pods, manifest(path), runtime_name, tmp_path,
        bindings=bindings(**{image: app(logfile, *shape, "--shutdown-delay", str(delay))}),
        services={service: f"127.0.0.1:{es.port}"}, kube_version=version,
    )  # fmt: skip
    pod.start(timeout=90)
    if job:
        pod.run_to_completion(timeout=60)
    else:
        wait_for(lambda: "GET /items/49 200 3ms" in es.messages(), what="the traffic to ship")
        time.sleep(2.0)  # the app idles, its file quiet: part of the scenario
        pod.delete()
    if job or (pattern.startswith("03") and version >= (1, 29)):  # the app first
        assert pod.when(app_container, "exited") <= pod.when(agent, "sigterm")
    else:  # together: logship drains while the app still writes, and waits for it
        assert abs(pod.when(agent, "sigterm") - pod.when(app_container, "sigterm")) < 1.0
        assert pod.when(agent, "sigterm") < pod.when(app_container, "exited")
        assert "drain: waiting for the processes writing the files" in pod.output(agent)
    for name in (app_container, agent):
        assert pod.running[name].exit_code == 0, pod.output(name)[-3000:]
        assert not pod.running[name].killed
    assert_shipped_exactly_once(es, pod.volume(volume) / Path(logfile).name, pod)
    assert "shutdown: waiting for in-flight requests" in es.messages()


def test_without_a_shared_process_namespace_the_drain_runs_blind_and_says_why(
    tmp_path: Path, pods: list[Pod], es: StandInProcess
) -> None:
    """The co-located pattern without shareProcessNamespace: logship cannot see the app,
    says so once at start and at the drain, and stops once no file grew for --drain-quiet
    (1 s) after the signal: a shutdown line 0.5 s after SIGTERM still ships."""
    doc = manifest("01-colocated-sidecar/pod.yaml")
    doc["spec"].pop("shareProcessNamespace", None)
    es.start()
    pod = make_pod(
        pods, doc, "process", tmp_path,
        bindings=bindings(**{"simple-webapp": app("/var/log/app/app.log", "--idle-after", "50",
                                                  "--shutdown-delay", "0.5")}),
        services={"elasticsearch:9200": f"127.0.0.1:{es.port}"},
    )  # fmt: skip
    if pod.pid_namespaces != "pod":
        pytest.skip("process namespaces need root and util-linux's unshare here")
    pod.start(timeout=60)
    wait_for(lambda: "GET /items/49 200 3ms" in es.messages(), what="the traffic to ship")
    time.sleep(2.0)
    pod.delete()
    said = pod.output("log-agent")
    assert "cannot be seen (yet)" in said and "no other process is visible" in said
    assert "drain: the processes writing the files cannot be seen" in said
    assert pod.running["log-agent"].exit_code == 0
    assert_shipped_exactly_once(es, pod.volume("app-logs") / "app.log", pod)


@pytest.mark.parametrize("directory", sorted(
    p.parent.name for p in (ROOT / "k8s").glob("*/kustomization.yaml")
))  # fmt: skip
def test_every_kustomization_renders_with_kustomize_5(directory: str) -> None:
    kinds = [d["kind"] for d in kustomize(directory)]
    assert {"Pod", "Job", "Deployment"} & set(kinds), kinds
    assert "Secret" not in kinds, "applying an example must never overwrite a real Secret"


@pytest.mark.skipif(os.geteuid() != 0, reason="volume owners are modelled when run as root")
def test_the_harness_makes_volumes_as_the_kubelet_does(tmp_path: Path, pods: list[Pod]) -> None:
    """An emptyDir is 0777 and, with fsGroup, group-owned by it and setgid; a hostPath
    the kubelet creates (DirectoryOrCreate) is root:root 0755 — fsGroup does not apply."""
    doc = next(d for d in kustomize("04-event-simulator-hostpath") if d["kind"] == "Pod")
    empty = manifest("04-event-simulator/pod.yaml")
    host = Pod(doc, runtime="process", workdir=tmp_path / "h", bindings=bindings(),
               secrets=SECRETS)  # fmt: skip
    pod = Pod(empty, runtime="process", workdir=tmp_path / "e", bindings=bindings(),
              secrets=SECRETS)  # fmt: skip
    pods += [host, pod]
    info = host.volume("log-volume").stat()
    assert (info.st_uid, info.st_gid, info.st_mode & 0o7777) == (0, 0, 0o755)
    info = pod.volume("log-volume").stat()
    assert (info.st_gid, info.st_mode & 0o7777) == (65532, 0o2777)


RECORDED = ROOT / "tests" / "fixtures" / "k8s-api"


def recorded_pod(path: str) -> dict[str, Any]:
    """A pod as a real API server answered it (recorded: tests/fixtures/k8s-api/README.md)."""
    if path.endswith(".ndjson"):
        return json.loads((RECORDED / path).read_text().splitlines()[0])["object"]
    return json.loads((RECORDED / path).read_text())["response"]["body"]["items"][0]


@pytest.mark.parametrize(("kind", "path"), [
    ("Deployment", "watch/pod-deleted.ndjson"),
    ("Job", "jobs/pods-of-complete-job.json"),
])  # fmt: skip
def test_the_harness_names_and_labels_pods_as_their_controllers_did(kind: str, path: str) -> None:
    """A Deployment's and a Job's pod, made by the harness from the workload a real
    cluster made them from: the same name shape and the same labels."""
    real = recorded_pod(path)["metadata"]
    own = {"app": real["labels"]["app"]}
    name = real["labels"].get("job-name") or real["name"].rsplit("-", 2)[0]
    workload = {"apiVersion": "v1", "kind": kind, "metadata": {"name": name},
                "spec": {"template": {"metadata": {"labels": own}, "spec": {}}}}  # fmt: skip
    made = as_pod(workload)["metadata"]
    assert sorted(made["labels"]) == sorted(real["labels"])
    shape = {"Deployment": rf"{name}-[a-z0-9]{{8,10}}-[{SUFFIX_CHARS}]{{5}}",
             "Job": rf"{name}-[{SUFFIX_CHARS}]{{5}}"}[kind]  # fmt: skip
    for pod_name in (real["name"], made["name"]):
        assert re.fullmatch(shape, pod_name), (shape, pod_name)
    if kind == "Deployment":
        assert made["name"].startswith(f"{name}-{made['labels']['pod-template-hash']}-")
    else:
        labels = made["labels"]
        assert labels["controller-uid"] == labels["batch.kubernetes.io/controller-uid"]


def test_a_statefulset_pod_gets_its_ordinal_and_its_claims() -> None:
    """As the StatefulSet controller documents: pod NAME-ORDINAL, its pod-name and
    pod-index labels, and each volumeClaimTemplate as the claim TEMPLATE-POD."""
    docs = [d for d in yaml.safe_load_all((FIXTURES / "statefulset-postgres.yaml").read_text())]
    made = as_pod(docs[0], ordinal=2)
    assert made["metadata"]["name"] == "postgres-2"
    labels = made["metadata"]["labels"]
    assert labels["statefulset.kubernetes.io/pod-name"] == "postgres-2"
    assert labels["apps.kubernetes.io/pod-index"] == "2"
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "data-postgres-2"}} in made[
        "spec"
    ]["volumes"]


@pytest.mark.parametrize("runtime_name", ["process", pytest.param("docker",
                                          marks=pytest.mark.containers)])  # fmt: skip
def test_the_hostpath_variant_starts_and_ships_a_late_shutdown(
    tmp_path: Path, pods: list[Pod], es: StandInProcess, runtime_name: str
) -> None:
    """Rendered by Kustomize 5 as a user applies it: log-dir-owner hands the root-owned
    hostPath directory to uid 65532, then the app and logship (both 65532) write to it."""
    if runtime_name == "docker":
        require(WAITFOR)
        require(LOGSHIP)
    doc = next(d for d in kustomize("04-event-simulator-hostpath") if d["kind"] == "Pod")
    es.start()
    pod = make_pod(
        pods, doc, runtime_name, tmp_path,
        bindings=bindings(**{"kodekloud/event-simulator": app(
            "/log/app.log", "--idle-after", "50", "--shutdown-delay", "3")}),
        services={"elasticsearch.elastic-stack:9200": f"127.0.0.1:{es.port}"},
    )  # fmt: skip
    pod.start(timeout=90)
    assert pod.running["log-dir-owner"].exit_code == 0, pod.output("log-dir-owner")
    if os.geteuid() == 0:
        assert pod.volume("log-volume").stat().st_uid == 65532
    wait_for(lambda: "GET /items/49 200 3ms" in es.messages(), what="the traffic to ship")
    pod.delete()
    for name in ("app", "sidecar"):
        assert pod.running[name].exit_code == 0, pod.output(name)[-3000:]
    assert_shipped_exactly_once(es, pod.volume("log-volume") / "app.log", pod)


@pytest.mark.containers
def test_without_log_dir_owner_the_hostpath_is_not_writable_as_on_a_real_kubelet(
    tmp_path: Path, pods: list[Pod]
) -> None:
    """What the real kubelet showed: uid 65532 cannot write to the root-owned directory
    (the app: Permission denied; logship: --data-dir: cannot write)."""
    require(WAITFOR)
    require(LOGSHIP)
    doc = next(d for d in kustomize("04-event-simulator-hostpath") if d["kind"] == "Pod")
    del doc["spec"]["initContainers"]
    pod = make_pod(pods, doc, "docker", tmp_path,
                   bindings=bindings(**{"kodekloud/event-simulator": app("/log/app.log")}),
                   services={"elasticsearch.elastic-stack:9200": "127.0.0.1:9"})  # fmt: skip
    pod.start(timeout=60)
    wait_for(lambda: all(pod.running[n].handle.poll() is not None for n in ("app", "sidecar")),
             what="both containers to fail")  # fmt: skip
    assert "Permission denied" in pod.output("app")
    assert "--data-dir" in pod.output("sidecar") and "cannot write" in pod.output("sidecar")


@pytest.mark.parametrize("runtime_name", ["process", pytest.param("docker",
                                          marks=pytest.mark.containers)])  # fmt: skip
def test_a_colocated_sidecar_restarted_alone_twice_loses_doubles_and_splits_nothing(
    tmp_path: Path, pods: list[Pod], es: StandInProcess, runtime_name: str
) -> None:
    """The kubelet restarts logship alone (a failed liveness probe) twice while the app
    writes its lines in pieces: each restart ends within --drain-timeout (5 s here), and
    at the end every line shipped exactly once, whole."""
    if runtime_name == "docker":
        require(WAITFOR)
        require(LOGSHIP)
    doc = manifest("01-colocated-sidecar/pod.yaml")
    agent = next(c for c in doc["spec"]["containers"] if c["name"] == "log-agent")
    for var in agent["env"]:
        if var["name"] == "LOGSHIP_DRAIN_TIMEOUT":
            var["value"] = "5s"
    es.start()
    pod = make_pod(
        pods, doc, runtime_name, tmp_path,
        bindings=bindings(**{"simple-webapp": app("/var/log/app/app.log", "--in-pieces")}),
        services={"elasticsearch:9200": f"127.0.0.1:{es.port}"},
    )  # fmt: skip
    pod.start(timeout=60)
    for _ in range(2):
        wait_for(lambda: app_traffic(list(es.messages())), what="the app's traffic to ship")
        shipped = len(es.messages())
        wait_for(lambda n=shipped: len(es.messages()) > n + 20, what="more traffic to ship")
        pod.restart("log-agent")
        stops = [e for e in pod.events if e.container == "log-agent"]
        sigterm, exited, started = stops[-3:]
        assert (sigterm.what, exited.what, started.what) == ("sigterm", "exited", "started")
        assert exited.detail == "0" and exited.at - sigterm.at < 5 + 1.5
    shipped = len(es.messages())
    wait_for(lambda: len(es.messages()) > shipped + 20, what="the third run to ship")
    pod.delete()
    for name in ("simple-webapp", "log-agent"):
        assert pod.running[name].exit_code == 0, (name, pod.events, pod.output(name)[-3000:])
    for said in pod.previous["log-agent"]:
        assert "drain: the processes writing the files go on" in said, said[-3000:]
        assert "drain deadline passed" not in said
    assert_shipped_exactly_once(es, pod.volume("app-logs") / "app.log", pod)


# -- what `pod-agents inject` makes of a bare app Pod, run like the patterns above -------

APP_POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: shop
  labels: {app: shop}
spec:
  containers:
    - name: shop
      image: shop  # the demo app stands in for it: startup lines, traffic, an idle spell,
                   # then shutdown lines for 1 s after SIGTERM
"""


def injected(*flags: str, ship: bool = True) -> dict[str, Any]:
    """APP_POD through `pod-agents inject`: waitfor for Elasticsearch and logship for the
    shop's logs, unless not `ship`; then `flags`."""
    shipping = ["--wait", "tcp://elasticsearch:9200", "--ship", "/var/log/shop/*.log",
                "--es", "http://elasticsearch:9200",
                "--es-secret", "elasticsearch-credentials"]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "agents.inject", "inject", *(shipping if ship else []), *flags, "-"],
        input=APP_POD, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


@pytest.mark.parametrize("right", [True, False], ids=["right-password", "wrong-password"])
def test_an_injected_wait_logs_in_with_a_password_from_its_mounted_secret(
    right: bool, runtime: str, tmp_path: Path, pods: list[Pod], redis_auth_server: Any
) -> None:
    """--wait-secret: the Secret is mounted in the waitfor container whose target reads
    it, and waitfor logs in with its key; a wrong password is said, and never printed."""
    target = "redis://cache:6379#password-file=/etc/waitfor/redis-auth/password"
    doc = injected("--wait", target, "--wait-secret", "redis-auth", "--waitfor-arg=--timeout=4s",
                   ship=False)  # fmt: skip
    password = REDIS_PASSWORD if right else "not-the-password"
    doc["spec"]["restartPolicy"] = "Never"  # a failed init container fails the pod at once
    pod = make_pod(
        pods, doc, runtime, tmp_path, bindings=bindings(shop=app("-", "--idle-after", "5")),
        services={"cache:6379": f"127.0.0.1:{redis_auth_server.port}"},
        secrets={"redis-auth": {"password": password}},
    )  # fmt: skip
    if right:
        pod.start(timeout=60)
        assert pod.running["wait-for-cache"].exit_code == 0
        assert "ready" in pod.output("wait-for-cache")
        pod.delete()
    else:
        with pytest.raises(PodFailed, match="init container wait-for-cache exited 1"):
            pod.start(timeout=60)
        said = pod.output("wait-for-cache")
        assert "WRONGPASS" in said or "invalid password" in said, said
        assert "shop" not in pod.running
    assert password not in pod.output("wait-for-cache")


@pytest.mark.parametrize("mode", ["native", "colocated"])
def test_an_injected_pod_waits_and_ships_every_line_once(
    mode: str, runtime: str, tmp_path: Path, pods: list[Pod], es: StandInProcess
) -> None:
    doc = injected("--sidecar", mode)
    pod = make_pod(
        pods, doc, runtime, tmp_path,
        bindings=bindings(shop=app("/var/log/shop/app.log", "--idle-after", "100",
                                   "--shutdown-delay", "1")),
        services={"elasticsearch:9200": f"127.0.0.1:{es.port}"},
    )  # fmt: skip
    es.start()
    pod.start(timeout=90)
    assert pod.running["wait-for-elasticsearch"].exit_code == 0
    if mode == "native":  # the startupProbe held the app until logship watched its files
        assert pod.when("shop", "started") >= pod.when("logship", "ready")
    wait_for(lambda: app_traffic(list(es.messages())), what="the app's traffic to ship")
    pod.delete()
    assert pod.when("wait-for-elasticsearch", "exited") <= pod.when("shop", "started")
    for name in ("shop", "logship"):
        assert pod.running[name].exit_code == 0, pod.output(name)[-3000:]
        assert not pod.running[name].killed
    assert_shipped_exactly_once(es, pod.volume("pod-agents-logs") / "app.log", pod)


# -- real-world workloads through `pod-agents inject`, run from their controllers' pods ---

WORKLOAD_KINDS = {"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"}
IDLE = app("-", "--idle-after", "5", stands_in=True)  # a container that only idles
ONCE = app("-", "--exit-after", "3", stands_in=True)  # an init container's short task
SHOP_OTHERS = {"nginxinc/nginx-unprivileged:1.27": IDLE,
               "registry.example.com/shop/exporter:1.0.3": IDLE}  # fmt: skip
BILLING_INITS = {"registry.example.com/billing/migrate:7": ONCE,
                 "registry.example.com/billing/warm:7": ONCE}  # fmt: skip
# name: fixture, inject's flags, the app container, its log file, the other images
REAL_WORLD = {
    "deployment-shop-native": (
        "deployment-shop.yaml", ("--container", "shop", "--ship", "/var/log/shop/*.log"),
        "shop", "/var/log/shop/shop.log",
        SHOP_OTHERS),
    "deployment-shop-colocated": (
        "deployment-shop.yaml",
        ("--sidecar", "colocated", "--container", "shop", "--ship", "/var/log/shop/*.log"),
        "shop", "/var/log/shop/shop.log",
        SHOP_OTHERS),
    "statefulset-postgres": (
        "statefulset-postgres.yaml", ("--ship", "/var/lib/postgresql/data/pgdata/log/*.log"),
        "postgres", "/var/lib/postgresql/data/pgdata/log/postgresql-Sat.log", {}),
    "cronjob-report": (
        "cronjob-report.yaml", ("--container", "report", "--ship", "/var/log/report/*.log"),
        "report", "/var/log/report/run.log", {}),
    "pod-shared-pid": (
        "pod-shared-pid.yaml",
        ("--sidecar", "colocated", "--container", "billing", "--ship", "/var/log/billing/*.log"),
        "billing", "/var/log/billing/api.log",
        BILLING_INITS),
}  # fmt: skip


def inject_file(name: str, *flags: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "agents.inject", "inject", "--wait", "tcp://elasticsearch:9200",
         "--es", "http://elasticsearch:9200", "--es-secret", "elasticsearch-credentials",
         *flags, str(FIXTURES / name)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def host_path(pod: Pod, container: str, path: str) -> Path:
    """Where a file the container sees at `path` is on this machine: under the volume
    mounted over it."""
    spec = next(c for c in pod.spec["containers"] if c["name"] == container)
    mount = max((m for m in spec.get("volumeMounts", [])
                 if path.startswith(m["mountPath"].rstrip("/") + "/")),
                key=lambda m: len(m["mountPath"]))  # fmt: skip
    return pod.volume(mount["name"]) / Path(path).relative_to(mount["mountPath"])


@pytest.mark.parametrize("case", list(REAL_WORLD))
def test_real_world_workloads_injected_ship_every_line_once_from_their_pods(
    case: str, runtime: str, tmp_path: Path, pods: list[Pod], es: StandInProcess
) -> None:
    fixture, flags, app_name, logfile, others = REAL_WORLD[case]
    docs = inject_file(fixture, *flags)
    workload = next(d for d in docs if d["kind"] in WORKLOAD_KINDS)
    configmaps = {d["metadata"]["name"]: d["data"] for d in docs if d["kind"] == "ConfigMap"}
    containers = as_pod(workload)["spec"]["containers"]
    image = next(c["image"] for c in containers if c["name"] == app_name)
    batch = workload["kind"] in {"CronJob", "Job"}
    # a batch job ends by itself; a server idles, then logs its shutdown late
    late = ["--idle-after", "100", "--shutdown-delay", "1"]
    app_args = ["--exit-after", "300"] if batch else late
    es.start()
    pod = make_pod(
        pods, workload, runtime, tmp_path,
        bindings=bindings(**{image: app(logfile, *app_args, stands_in=True), **others}),
        services={"elasticsearch:9200": f"127.0.0.1:{es.port}"},
        secrets={**SECRETS, "postgres": {"password": "pg-secret"}}, configmaps=configmaps,
    )  # fmt: skip
    assert pod.kind == workload["kind"]
    pod.start(timeout=90)
    # waitfor ran first, before the workload's own init containers and the app.
    init_names = [c["name"] for c in pod.spec.get("initContainers", [])]
    assert init_names[0] == "wait-for-elasticsearch"
    assert pod.running["wait-for-elasticsearch"].exit_code == 0
    for name in init_names[1:]:
        assert pod.when(name, "started") >= pod.when("wait-for-elasticsearch", "exited")
    if "logship" in init_names:  # native: the startupProbe held the app
        assert pod.when(app_name, "started") >= pod.when("logship", "ready")
    assert_contained(pod, "logship", "logship")
    if batch:
        pod.run_to_completion(timeout=90)
        assert pod.phase() == "Succeeded"
        assert pod.when(app_name, "exited") <= pod.when("logship", "sigterm")
    else:
        wait_for(lambda: app_traffic(list(es.messages())), what="the app's traffic to ship")
        pod.delete()
    for name in pod.running:
        assert pod.running[name].exit_code == 0, (name, pod.output(name)[-3000:])
        assert not pod.running[name].killed, name
    assert_shipped_exactly_once(es, host_path(pod, app_name, logfile), pod)
