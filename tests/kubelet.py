"""A kubelet in miniature, so the lifecycle tests run the `k8s/` manifests themselves.

It runs one pod's containers in the kubelet's order, as plain processes or as Docker
containers from our images:

1. init containers one at a time, in order; each must exit 0 before the next starts (a
   failed one is restarted after a back-off, unless restartPolicy is Never). An init
   container with `restartPolicy: Always` is a native sidecar: it keeps running, and the
   next container starts once its startupProbe has succeeded (at once without one);
2. the containers, all at once;
3. termination, when the pod is deleted or (restartPolicy Never/OnFailure) when every
   container has exited: SIGTERM to the containers all at once; once they have all
   exited, SIGTERM to the native sidecars, last started first (from Kubernetes 1.29; a
   1.28 kubelet, native sidecars behind a feature gate, was seen to send SIGTERM to the
   app and its native sidecars together: `kube_version=(1, 28)`); SIGKILL to whatever
   still runs when terminationGracePeriodSeconds (default 30) has passed since the
   deletion. `restart(name)` stops one container the same way and starts it again (a
   failed liveness probe), the others running on.

Process namespaces, as the kubelet makes them: each container has its own, unless the pod
says `shareProcessNamespace: true`; then a pause process is PID 1 of one namespace that
every container joins (and a program is not PID 1 there). Processes get them from
`unshare`/`nsenter` (root only: elsewhere they share the host's, and `pid_namespaces`
says "host"); containers from `--pid container:<pause>`.

Volumes, as the kubelet makes them: an emptyDir is mode 0777, and with the pod's fsGroup
group-owned by it and setgid; `fsGroup` does not apply to hostPath, and a hostPath of type
`DirectoryOrCreate` the kubelet creates is root:root 0755 (a container running as another
uid cannot write to it). A persistentVolumeClaim is a new volume's root, root:root 0755;
fsGroup makes it group-owned, group-writable and setgid (ownership management). A
configMap or secret that does not exist keeps the pod from starting (unless `optional`).
Containers get the fsGroup and supplementalGroups as groups of their own; with
`runAsNonRoot` and no `runAsUser`, an image whose user is root (or not numeric) is refused.

Workloads are made into pods the way their controllers make them (`as_pod`): a
Deployment's pod is named `NAME-HASH-XXXXX` and labelled `pod-template-hash`, a
StatefulSet's `NAME-0` with its volumeClaimTemplates as claims `TEMPLATE-NAME-0`, a Job's
`NAME-XXXXX` with the job-name and controller-uid labels, a CronJob's through its Job.

A test machine is not a node, so some things are mapped:
- images → programs (`Binding`): a process command, or an image with an entrypoint;
- Service addresses `name:port` → `127.0.0.1:port` (`services`), and each containerPort →
  a free local port: a pod's containers share one network namespace, here the host's
  (docker: `--network host`);
- images the tests do not have (the user's app) → a stand-in program: a binding with
  `stands_in` replaces the manifest's command and args with its own;
- emptyDir, hostPath, persistentVolumeClaim, configMap, secret and downwardAPI volumes →
  directories under the work dir (their owners and modes as above when the harness runs
  as root).
  Processes see the host's filesystem, so each container's mount paths are rewritten to
  those directories in its args and env; containers get them as bind mounts.
- docker: the securityContext becomes --user, --read-only, --cap-drop, --cap-add and
  no-new-privileges, and the limits --memory and --cpus.

Every transition is an `Event` with a monotonic time, for the tests' ordering checks.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import os
import random
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tests.helpers import free_port

RESTART_BACKOFF = 1.0  # the kubelet starts at 10 s; short enough for a test here
POLL = 0.05


class PodFailed(Exception):
    """The pod cannot go on: an init container failed under restartPolicy Never, a probe
    ran out of failures, or a deadline passed."""


@dataclass(frozen=True)
class Binding:
    """What runs for an image. `args` (container paths) are used where the manifest gives
    neither command nor args, as an image's CMD would be; `env` holds the container
    paths a program reads by default, so that process mode can rewrite them."""

    process: tuple[str, ...]  # the command for process mode (the image's entrypoint)
    image: str  # the image for docker mode
    entrypoint: tuple[str, ...] = ()  # docker: replaces the image's own entrypoint
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    mounts: Mapping[str, str] = field(default_factory=dict)  # docker: host → container, ro
    # For an image the tests do not have: this program runs in its place, with `args`
    # instead of the manifest's command and args (which are the real program's).
    stands_in: bool = False


@dataclass
class Event:
    at: float
    container: str
    what: str  # started, ready, exited, sigterm, sigkill
    detail: str = ""


class Handle(Protocol):
    def poll(self) -> int | None: ...
    def signal(self, sig: signal.Signals) -> None: ...
    def output(self) -> str: ...
    def remove(self) -> None: ...


@dataclass
class Spec:
    """One container, mapped: ready to start."""

    name: str
    argv: list[str]  # entrypoint + args (process mode: host paths)
    env: dict[str, str]
    binding: Binding
    volumes: list[tuple[Path, str, bool]]  # host dir, mount path, read-only
    security: dict[str, Any]
    limits: dict[str, str]
    groups: tuple[int, ...] = ()  # the pod's fsGroup and supplementalGroups


@functools.cache
def pid_namespaces_work() -> bool:
    """Whether this harness can give processes PID namespaces of their own (root, with
    util-linux's unshare and nsenter, in a kernel and sandbox that allow them)."""
    if os.geteuid() != 0 or not (shutil.which("unshare") and shutil.which("nsenter")):
        return False
    probe = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"],
                           capture_output=True, timeout=10, check=False)  # fmt: skip
    return probe.returncode == 0


def _child_of(pid: int, timeout: float = 10.0) -> int:
    """The process that `unshare --fork` or `nsenter` started: the program itself."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as fh:
                children = fh.read().split()
        except OSError:
            children = []
        if children:
            return int(children[0])
        if time.monotonic() > deadline:
            raise PodFailed(f"process {pid} started no program")
        time.sleep(0.005)


OWN_NAMESPACE = ("unshare", "--pid", "--fork", "--mount-proc", "--kill-child", "--")


class ProcessRuntime:
    name = "process"

    def __init__(self, workdir: Path, *, share_pids: bool) -> None:
        self.workdir = workdir
        self.isolated = pid_namespaces_work()
        self.pause: subprocess.Popen[bytes] | None = None
        self.wrap: tuple[str, ...] = ()
        if not self.isolated:
            return
        if share_pids:  # the pause process holds the pod's one namespace, as PID 1
            self.pause = subprocess.Popen([*OWN_NAMESPACE, "sleep", "infinity"],
                                          start_new_session=True)  # fmt: skip
            target = _child_of(self.pause.pid)
            self.wrap = ("nsenter", f"--target={target}", "--pid", "--mount", "--")
        else:
            self.wrap = OWN_NAMESPACE

    def start(self, spec: Spec) -> Handle:
        return _Process(spec, self.workdir / f"{spec.name}.out", self.wrap)

    def close(self) -> None:
        if self.pause is not None and self.pause.poll() is None:
            os.killpg(self.pause.pid, signal.SIGKILL)
            self.pause.wait(10)


class _Process:
    def __init__(self, spec: Spec, out: Path, wrap: tuple[str, ...]) -> None:
        self.out = out
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", **spec.env}
        with open(out, "ab") as sink:
            self.proc = subprocess.Popen(
                [*wrap, *spec.argv], env=env, stdin=subprocess.DEVNULL, stdout=sink,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        # Signals go to the program: unshare and nsenter do not pass them on.
        self.pid = _child_of(self.proc.pid) if wrap else self.proc.pid

    def poll(self) -> int | None:
        code = self.proc.poll()
        # As a container runtime reports it: 128 + the signal that ended the process.
        return None if code is None else (128 - code if code < 0 else code)

    def signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            if sig == signal.SIGKILL:
                os.killpg(self.proc.pid, sig)  # the container's every process
            elif self.proc.poll() is None:
                os.kill(self.pid, sig)

    def output(self) -> str:
        return self.out.read_text(errors="replace")

    def remove(self) -> None:
        if self.proc.poll() is None:
            self.signal(signal.SIGKILL)
            self.proc.wait(10)


class DockerRuntime:
    name = "docker"
    isolated = True

    def __init__(self, pod_uid: str, *, share_pids: bool, pause_image: str) -> None:
        self.prefix = f"kubelet-{pod_uid[:8]}"
        self.pid_mode: str | None = None
        if share_pids:  # the pause container: PID 1 of the pod's one process namespace
            pause = f"{self.prefix}-pause"
            started = docker("run", "-d", "--name", pause, "--network", "host",
                             "--user", "65535:65535", "--entrypoint", "sleep", pause_image,
                             "infinity")  # fmt: skip
            if started.returncode:
                raise PodFailed(f"docker run pause: {started.stderr.strip()}")
            self.pid_mode = f"container:{pause}"

    def start(self, spec: Spec) -> Handle:
        return _Container(f"{self.prefix}-{spec.name}", spec, self.pid_mode)

    def close(self) -> None:
        if self.pid_mode is not None:
            docker("rm", "-f", f"{self.prefix}-pause")


def docker(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout,
                          check=False)  # fmt: skip


class _Container:
    def __init__(self, name: str, spec: Spec, pid_mode: str | None = None) -> None:
        self.name = name
        sc = spec.security
        argv = ["run", "-d", "--name", name, "--network", "host", "--init=false"]
        if pid_mode is not None:
            argv += ["--pid", pid_mode]
        if "runAsUser" in sc:
            argv += ["--user", f"{sc['runAsUser']}:{sc.get('runAsGroup', sc['runAsUser'])}"]
        elif sc.get("runAsNonRoot"):
            _verify_non_root(spec)
        for group in spec.groups:
            argv += ["--group-add", str(group)]
        if sc.get("readOnlyRootFilesystem"):
            argv.append("--read-only")
        for cap in sc.get("capabilities", {}).get("drop", []):
            argv += ["--cap-drop", cap]
        for cap in sc.get("capabilities", {}).get("add", []):
            argv += ["--cap-add", cap]
        if sc.get("allowPrivilegeEscalation") is False:
            argv += ["--security-opt", "no-new-privileges"]
        if "memory" in spec.limits:
            argv += ["--memory", _bytes(spec.limits["memory"])]
        if "cpu" in spec.limits:
            argv += ["--cpus", _cpus(spec.limits["cpu"])]
        for host, path, read_only in spec.volumes:
            argv += ["-v", f"{host}:{path}{':ro' if read_only else ''}"]
        for host, path in spec.binding.mounts.items():
            argv += ["-v", f"{host}:{path}:ro"]
        for key, value in spec.env.items():
            argv += ["-e", f"{key}={value}"]
        entrypoint = list(spec.binding.entrypoint)
        if entrypoint:
            argv += ["--entrypoint", entrypoint[0]]
        argv += [spec.binding.image, *entrypoint[1:], *spec.argv]
        started = docker(*argv)
        if started.returncode:
            raise PodFailed(f"docker run {spec.name}: {started.stderr.strip()}")

    def poll(self) -> int | None:
        state = docker("inspect", "-f", "{{.State.Running}} {{.State.ExitCode}}", self.name)
        running, code = state.stdout.split()
        return None if running == "true" else int(code)

    def signal(self, sig: signal.Signals) -> None:
        docker("kill", "--signal", sig.name.removeprefix("SIG"), self.name)

    def output(self) -> str:
        logs = docker("logs", self.name)
        return logs.stdout + logs.stderr

    def inspect(self, template: str) -> str:
        return docker("inspect", "-f", template, self.name).stdout.strip()

    def exec(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return docker("exec", self.name, *argv)

    def remove(self) -> None:
        docker("rm", "-f", self.name)


def _verify_non_root(spec: Spec) -> None:
    """The kubelet's check when runAsNonRoot is set and runAsUser is not: the image's own
    user must be a non-zero uid (CreateContainerConfigError otherwise)."""
    user = docker("image", "inspect", "-f", "{{.Config.User}}", spec.binding.image)
    uid = user.stdout.strip().split(":")[0]
    if not uid.isdigit():
        raise PodFailed(f"{spec.name}: CreateContainerConfigError: image has non-numeric user "
                        f"({uid or 'none'}), cannot verify user is non-root")  # fmt: skip
    if int(uid) == 0:
        raise PodFailed(f"{spec.name}: CreateContainerConfigError: container has "
                        "runAsNonRoot and image will run as root")  # fmt: skip


def _bytes(quantity: str) -> str:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 10**3, "M": 10**6, "G": 10**9}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return str(int(float(quantity.removesuffix(suffix)) * factor))
    return quantity


def _cpus(quantity: str) -> str:
    return str(int(quantity[:-1]) / 1000) if quantity.endswith("m") else quantity


SUFFIX_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # what the API server's generateName draws from


def _suffix(length: int) -> str:
    return "".join(random.choice(SUFFIX_CHARS) for _ in range(length))


def as_pod(manifest: Mapping[str, Any], *, ordinal: int = 0) -> dict[str, Any]:
    """The pod a workload's controller makes of it (ordinal: a StatefulSet's replica).
    Names and labels as recorded from a 1.28 API server (tests/fixtures/k8s-api) and as the
    controllers document them."""
    kind = manifest.get("kind", "Pod")
    meta = manifest["metadata"]
    if kind == "Pod":
        return copy.deepcopy(dict(manifest))
    if kind == "CronJob":  # its Job, named after the scheduled time in minutes
        job_template = manifest["spec"]["jobTemplate"]
        job = {
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {**job_template.get("metadata", {}),
                         "name": f"{meta['name']}-{int(time.time() // 60)}",
                         "namespace": meta.get("namespace", "default")},
            "spec": job_template["spec"],
        }  # fmt: skip
        return as_pod(job)
    template = manifest["spec"]["template"]
    labels = dict(template.get("metadata", {}).get("labels", {}))
    spec = copy.deepcopy(dict(template["spec"]))
    name = meta["name"]
    if kind == "Deployment":  # through its ReplicaSet
        template_hash = _suffix(8)
        labels["pod-template-hash"] = template_hash
        pod_name = f"{name}-{template_hash}-{_suffix(5)}"
    elif kind == "StatefulSet":
        pod_name = f"{name}-{ordinal}"
        labels |= {
            "controller-revision-hash": f"{name}-{_suffix(10)}",
            "statefulset.kubernetes.io/pod-name": pod_name,
            "apps.kubernetes.io/pod-index": str(ordinal),
        }
        claims = {c["metadata"]["name"] for c in manifest["spec"].get("volumeClaimTemplates", [])}
        spec["volumes"] = [v for v in spec.get("volumes", []) if v["name"] not in claims] + [
            {"name": c, "persistentVolumeClaim": {"claimName": f"{c}-{pod_name}"}}
            for c in sorted(claims)
        ]
    elif kind == "Job":
        uid = str(uuid.uuid4())
        labels |= {
            "batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name,
            "controller-uid": uid, "job-name": name,
        }  # fmt: skip
        pod_name = f"{name}-{_suffix(5)}"
    elif kind == "DaemonSet":
        labels |= {"controller-revision-hash": _suffix(10), "pod-template-generation": "1"}
        pod_name = f"{name}-{_suffix(5)}"
    elif kind == "ReplicaSet":
        pod_name = f"{name}-{_suffix(5)}"
    else:
        raise PodFailed(f"{kind} makes no pods")
    pod_meta: dict[str, Any] = {"name": pod_name, "namespace": meta.get("namespace", "default"),
                                "labels": labels}  # fmt: skip
    if template.get("metadata", {}).get("annotations"):
        pod_meta["annotations"] = dict(template["metadata"]["annotations"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": spec}


@dataclass
class Running:
    name: str
    kind: str  # init, sidecar, app
    spec: Spec
    handle: Handle
    exit_code: int | None = None
    killed: bool = False


class Pod:
    """One pod (or a Job's pod template) from a manifest document."""

    def __init__(
        self,
        manifest: Mapping[str, Any],
        *,
        runtime: str,
        workdir: Path,
        bindings: Mapping[str, Binding],
        services: Mapping[str, str] | None = None,
        secrets: Mapping[str, Mapping[str, str]] | None = None,
        configmaps: Mapping[str, Mapping[str, str]] | None = None,
        kube_version: tuple[int, int] = (1, 29),
    ) -> None:
        self.manifest = manifest
        self.kind = manifest.get("kind", "Pod")  # the workload the pod was made from
        pod = as_pod(manifest)
        self.meta = pod["metadata"]
        self.spec = pod["spec"]
        self.name = self.meta["name"]
        self.namespace = self.meta.get("namespace", "default")
        self.uid = str(uuid.uuid4())
        self.workdir = workdir
        self.bindings = bindings
        self.services = dict(services or {})
        self.secrets = secrets or {}
        self.configmaps = configmaps or {}
        self.kube_version = kube_version
        self.restart_policy = self.spec.get("restartPolicy", "Always")
        self.grace = float(self.spec.get("terminationGracePeriodSeconds", 30))
        self.events: list[Event] = []
        self.running: dict[str, Running] = {}
        self.ports: dict[int, int] = {}  # containerPort → local port
        for container in self._all_containers():
            for port in container.get("ports", []):
                self.ports[port["containerPort"]] = free_port()
        self.volumes = self._make_volumes()
        self.previous: dict[str, list[str]] = {}  # the output of restarted containers
        share_pids = bool(self.spec.get("shareProcessNamespace"))
        self.runtime: ProcessRuntime | DockerRuntime = (
            ProcessRuntime(workdir, share_pids=share_pids) if runtime == "process"
            else DockerRuntime(self.uid, share_pids=share_pids,
                               pause_image=bindings[self._all_containers()[0]["image"]].image)
        )  # fmt: skip

    # --- what tests read ---------------------------------------------------------------

    def volume(self, name: str) -> Path:
        return self.volumes[name]

    def when(self, container: str, what: str) -> float:
        """The time of `container`'s first `what` event."""
        for event in self.events:
            if event.container == container and event.what == what:
                return event.at
        raise AssertionError(f"{container} never {what}: {self.events}")

    def output(self, container: str) -> str:
        return self.running[container].handle.output()

    def local_port(self, container_port: int) -> int:
        return self.ports[container_port]

    @property
    def pid_namespaces(self) -> str:
        """ "pod" when containers get process namespaces as the kubelet gives them (their
        own, or the pod's one), "host" when this harness cannot make them."""
        return "pod" if self.runtime.isolated else "host"

    # --- the lifecycle -----------------------------------------------------------------

    def start(self, timeout: float = 120) -> None:
        """Init containers, native sidecars and then the containers; returns once the
        containers have started."""
        deadline = time.monotonic() + timeout
        for container in self.spec.get("initContainers", []):
            if container.get("restartPolicy") == "Always":
                self._start(container, "sidecar")
                self._await_startup(container, deadline)
            else:
                self._run_to_completion(container, deadline)
        for container in self.spec["containers"]:
            self._start(container, "app")

    def delete(self) -> None:
        """Pod deletion: SIGTERM to the containers, then to the native sidecars (last
        first) once the containers are gone — or, on 1.28, to all of them at once;
        SIGKILL when the grace period is spent."""
        deadline = time.monotonic() + self.grace
        apps = [r for r in self.running.values() if r.kind == "app"]
        if self.kube_version < (1, 29):
            apps += [r for r in self.running.values() if r.kind == "sidecar"]
        for app in apps:
            self._signal(app, signal.SIGTERM)
        self._wait_exit(apps, deadline)
        self._stop_sidecars(deadline)

    def restart(self, name: str) -> None:
        """One container stopped (SIGTERM, SIGKILL after the grace period) and started
        again, as after a failed liveness probe; the other containers run on."""
        running = self.running[name]
        self._signal(running, signal.SIGTERM)
        self._wait_exit([running], time.monotonic() + self.grace)
        self.previous.setdefault(name, []).append(running.handle.output())
        running.handle.remove()
        container = next(c for c in self._all_containers() if c["name"] == name)
        self._start(container, running.kind)
        if running.kind == "sidecar":
            self._await_startup(container, time.monotonic() + 120)

    def run_to_completion(self, timeout: float) -> None:
        """A Job's pod (restartPolicy Never/OnFailure): wait for every container to exit,
        then stop the native sidecars the way the kubelet does."""
        assert self.restart_policy != "Always", "only a Job's pod completes"
        apps = [r for r in self.running.values() if r.kind == "app"]
        end = time.monotonic() + timeout
        while any(self._poll(app) is None for app in apps):
            if time.monotonic() > end:
                raise PodFailed(f"containers still running after {timeout}s")
            time.sleep(POLL)
        self._stop_sidecars(time.monotonic() + self.grace)

    def cleanup(self) -> None:
        for running in self.running.values():
            running.handle.remove()
        self.runtime.close()

    def phase(self) -> str:
        apps = [r for r in self.running.values() if r.kind == "app"]
        if any(r.exit_code is None for r in apps):
            return "Running"
        return "Succeeded" if all(r.exit_code == 0 for r in apps) else "Failed"

    # --- the parts -----------------------------------------------------------------------

    def _stop_sidecars(self, deadline: float) -> None:
        sidecars = [r for r in self.running.values() if r.kind == "sidecar"]
        for sidecar in reversed(sidecars):
            self._signal(sidecar, signal.SIGTERM)
            self._wait_exit([sidecar], deadline)

    def _wait_exit(self, group: list[Running], deadline: float) -> None:
        while any(self._poll(r) is None for r in group):
            if time.monotonic() > deadline:
                for r in group:
                    if self._poll(r) is None:
                        r.killed = True
                        self._signal(r, signal.SIGKILL)
                deadline = time.monotonic() + 10
                while any(self._poll(r) is None for r in group):
                    if time.monotonic() > deadline:
                        raise PodFailed(f"not dead after SIGKILL: {[r.name for r in group]}")
                    time.sleep(POLL)
                return
            time.sleep(POLL)

    def _poll(self, running: Running) -> int | None:
        if running.exit_code is None:
            code = running.handle.poll()
            if code is not None:
                running.exit_code = code
                self._event(running.name, "exited", str(code))
        return running.exit_code

    def _signal(self, running: Running, sig: signal.Signals) -> None:
        if self._poll(running) is None:
            self._event(running.name, sig.name.lower())
            running.handle.signal(sig)

    def _run_to_completion(self, container: Mapping[str, Any], deadline: float) -> None:
        backoff = RESTART_BACKOFF
        while True:
            running = self._start(container, "init")
            while self._poll(running) is None:
                if time.monotonic() > deadline:
                    raise PodFailed(f"init container {running.name} still running")
                time.sleep(POLL)
            if running.exit_code == 0:
                return
            if self.restart_policy == "Never":
                raise PodFailed(f"init container {running.name} exited {running.exit_code}")
            running.handle.remove()
            time.sleep(backoff)
            backoff *= 2

    def _await_startup(self, container: Mapping[str, Any], deadline: float) -> None:
        name = container["name"]
        probe = container.get("startupProbe")
        if probe is None:
            return
        period = float(probe.get("periodSeconds", 10))
        failures_left = int(probe.get("failureThreshold", 3))
        time.sleep(float(probe.get("initialDelaySeconds", 0)))
        while True:
            if self._poll(self.running[name]) is not None:
                raise PodFailed(f"sidecar {name} exited before its startupProbe succeeded")
            if self._http_probe(container, probe["httpGet"]):
                self._event(name, "ready")
                return
            failures_left -= 1
            if failures_left <= 0 or time.monotonic() > deadline:
                raise PodFailed(f"startupProbe of {name} failed: {self.output(name)[-2000:]}")
            time.sleep(period)

    def _http_probe(self, container: Mapping[str, Any], get: Mapping[str, Any]) -> bool:
        port = get["port"]
        if isinstance(port, str):
            port = next(p["containerPort"] for p in container["ports"] if p.get("name") == port)
        url = f"http://127.0.0.1:{self.ports[port]}{get.get('path', '/')}"
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                return 200 <= answer.status < 400
        except (urllib.error.URLError, OSError):
            return False

    def _start(self, container: Mapping[str, Any], kind: str) -> Running:
        spec = self._spec(container)
        handle = self.runtime.start(spec)
        running = Running(container["name"], kind, spec, handle)
        self.running[running.name] = running
        self._event(running.name, "started")
        return running

    def _event(self, container: str, what: str, detail: str = "") -> None:
        self.events.append(Event(time.monotonic(), container, what, detail))

    # --- mapping a container spec onto this machine --------------------------------------

    def _all_containers(self) -> list[Mapping[str, Any]]:
        return [*self.spec.get("initContainers", []), *self.spec["containers"]]

    def _make_volumes(self) -> dict[str, Path]:
        made: dict[str, Path] = {}
        for volume in self.spec.get("volumes", []):
            path = self.workdir / "volumes" / volume["name"]
            path.mkdir(parents=True)
            if "secret" in volume or "configMap" in volume:
                self._write_items(path, volume)
            elif "downwardAPI" in volume:
                for item in volume["downwardAPI"]["items"]:
                    (path / item["path"]).write_text(self._field(item["fieldRef"]["fieldPath"]))
                    (path / item["path"]).chmod(0o644)
            elif "hostPath" in volume:  # created by the kubelet (DirectoryOrCreate)
                if os.geteuid() == 0:
                    os.chown(path, 0, 0)
                path.chmod(0o755)
            elif "persistentVolumeClaim" in volume:  # a new volume's root directory
                if os.geteuid() == 0:
                    os.chown(path, 0, 0)
                path.chmod(0o755)
                fs_group = self.spec.get("securityContext", {}).get("fsGroup")
                if fs_group is not None and os.geteuid() == 0:  # ownership management
                    os.chown(path, -1, int(fs_group))
                    path.chmod(0o2775)
            else:  # emptyDir: anyone in the pod may write; fsGroup owns it
                path.chmod(0o777)
                fs_group = self.spec.get("securityContext", {}).get("fsGroup")
                if fs_group is not None and os.geteuid() == 0:
                    os.chown(path, -1, int(fs_group))
                    path.chmod(0o2777)
            path.chmod(path.stat().st_mode | 0o755)
            made[volume["name"]] = path
        return made

    def _write_items(self, path: Path, volume: Mapping[str, Any]) -> None:
        """A secret or configMap volume: its keys (or `items`) as files; one that does not
        exist keeps the pod in ContainerCreating, unless it is optional."""
        if "secret" in volume:
            source, name, known = volume["secret"], volume["secret"]["secretName"], self.secrets
        else:
            source, name, known = volume["configMap"], volume["configMap"]["name"], self.configmaps
        if name not in known:
            if source.get("optional"):
                return
            kind = "secret" if "secret" in volume else "configmap"
            raise PodFailed(f'MountVolume.SetUp failed for volume "{volume["name"]}": '
                            f'{kind} "{name}" not found')  # fmt: skip
        data = known[name]
        items = source.get("items") or [{"key": k, "path": k} for k in data]
        mode = source.get("defaultMode", 0o644)
        for item in items:
            (path / item["path"]).write_text(data[item["key"]])
            (path / item["path"]).chmod(item.get("mode", mode))

    def _field(self, path: str) -> str:
        if path == "metadata.labels":
            labels = self.meta.get("labels", {})
            return "".join(f'{k}="{v}"\n' for k, v in sorted(labels.items()))
        return {
            "metadata.name": self.name,
            "metadata.namespace": self.namespace,
            "metadata.uid": self.uid,
            "status.podIP": "127.0.0.1",
            "spec.nodeName": "kubelet-harness",
        }[path]

    def _spec(self, container: Mapping[str, Any]) -> Spec:
        binding = self.bindings[container["image"]]
        if binding.stands_in:
            args = list(binding.args)
        elif "command" in container:
            raise PodFailed(f"{container['name']}: `command` is not mapped by this harness")
        else:
            args = [str(a) for a in container.get("args", binding.args)]
        env: dict[str, str] = dict(binding.env) if self.runtime.name == "process" else {}
        for var in container.get("env", []):
            env[var["name"]] = self._env_value(var)
        mounts = [
            (self.volumes[m["name"]], m["mountPath"], bool(m.get("readOnly")))
            for m in container.get("volumeMounts", [])
        ]
        rewrite = self._rewriter(mounts if self.runtime.name == "process" else [])
        args = [rewrite(a) for a in args]
        env = {k: rewrite(v) for k, v in env.items()}
        argv = [*binding.process, *args] if self.runtime.name == "process" else args
        security = {**self.spec.get("securityContext", {}), **container.get("securityContext", {})}
        limits = container.get("resources", {}).get("limits", {})
        pod_security = self.spec.get("securityContext", {})
        groups = [*pod_security.get("supplementalGroups", [])]
        if "fsGroup" in pod_security:
            groups.insert(0, pod_security["fsGroup"])
        return Spec(container["name"], argv, env, binding, mounts, security, limits,
                    tuple(int(g) for g in groups))  # fmt: skip

    def _env_value(self, var: Mapping[str, Any]) -> str:
        if "value" in var:
            return str(var["value"])
        source = var["valueFrom"]
        if "fieldRef" in source:
            return self._field(source["fieldRef"]["fieldPath"])
        ref = source["secretKeyRef"]
        return self.secrets[ref["name"]][ref["key"]]

    def _rewriter(self, mounts: list[tuple[Path, str, bool]]) -> Any:
        rules: list[tuple[re.Pattern[str], str]] = []
        for address, local in self.services.items():
            rules.append((re.compile(rf"(?<![\w.-]){re.escape(address)}(?![\w])"), local))
        for container_port, local_port in self.ports.items():
            rules.append((re.compile(rf"(?<=[=:])({container_port})$|^{container_port}$"),
                          str(local_port)))  # fmt: skip
        for host, mount_path, _ in sorted(mounts, key=lambda m: -len(m[1])):
            rules.append((re.compile(rf"(?:(?<=file://)|(?<![\w./-])){re.escape(mount_path)}"
                                     r"(?=/|$|[^\w.-])"), str(host)))  # fmt: skip

        def rewrite(text: str) -> str:
            for pattern, replacement in rules:
                text = pattern.sub(lambda _m, r=replacement: r, text)
            return text

        return rewrite
