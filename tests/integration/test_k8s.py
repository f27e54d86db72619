"""k8s:// targets against the test API server (tests/kubeapi.py), which serves the objects
and errors a real 1.28 API server answered (tests/fixtures/k8s-api): Jobs completing and
failing, pods becoming Ready, EndpointSlices, Deployments and StatefulSets rolling out,
a resource that appears while waitfor waits, 401 and 403 (with the Role rule to add), a
watch expired with 410, a bounded number of requests, and the service account files of
a pod (in a mount namespace of the test's own)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import WAITFOR, json_events, ready_after, run_waitfor, usage_error, waitfor_env
from tests.kubeapi import KubeAPI, recorded_body, recorded_events, recorded_object

pytestmark = pytest.mark.integration

FAIL_FAST = ("--timeout", "3s", "--attempt-timeout", "2s", "--interval", "200ms", "--json")
WAIT = ("--timeout", "30s", "--attempt-timeout", "2s", "--interval", "200ms", "--json")


@pytest.fixture
def api(tmp_path: Path) -> Iterator[KubeAPI]:
    with KubeAPI(tmp_path) as server:
        yield server


def events(stderr: str, message: str) -> list[dict[str, Any]]:
    return [e for e in json_events(stderr) if e["message"] == message]


def waits_until(api: KubeAPI, target: str, change: Callable[[], None], *, missing: str,
                ) -> tuple[dict[str, Any], str]:  # fmt: skip
    return ready_after([*WAIT, "--kubeconfig", str(api.kubeconfig), target], change,
                       missing=missing)  # fmt: skip


def last_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 124, result.stderr
    (summary,) = events(result.stderr, "summary")
    return str(summary["last_error"])


def kube(api: KubeAPI, *args: str) -> subprocess.CompletedProcess[str]:
    return run_waitfor(*FAIL_FAST, "--kubeconfig", str(api.kubeconfig), *args)


# --- Jobs -------------------------------------------------------------------------------


def test_a_job_that_completes_while_waitfor_watches(api: KubeAPI) -> None:
    """The recorded watch of job-ok: ready 1→0, uncountedTerminatedPods, then Complete."""
    api.put("jobs", recorded_object("jobs/get-running.json"))

    def complete() -> None:
        for event in recorded_events("watch/job-complete.ndjson"):
            api.put("jobs", event["object"])
            time.sleep(0.2)

    running = "job job-ok not complete (1 active, 0 succeeded, 0 failed)"
    ready, _ = waits_until(api, "k8s://job/job-ok", complete, missing=running)
    assert ready["detail"] == "job job-ok complete (1 succeeded)"
    # a LIST first, then watches: a few requests, not one per poll
    assert api.requests[0] == ("list", "jobs")
    assert ("watch", "jobs") in api.requests
    assert len(api.requests) <= 6, api.requests


def test_a_failed_job_ends_the_wait_at_once_with_its_reason(api: KubeAPI) -> None:
    api.put("jobs", recorded_object("jobs/get-failed.json"))
    started = time.monotonic()
    result = run_waitfor("--timeout", "60s", "--json", "--kubeconfig", str(api.kubeconfig),
                         "k8s://job/job-fail")  # fmt: skip
    assert time.monotonic() - started < 20  # not the 60 s timeout
    assert result.returncode == 1, result.stderr
    (failed,) = events(result.stderr, "failed")
    assert failed["error"] == (
        "job job-fail failed: BackoffLimitExceeded: Job has reached the specified backoff limit"
    )
    (summary,) = events(result.stderr, "summary")
    assert summary["outcome"] == "failed"
    verdict = json_events(result.stderr)[-1]["message"]
    assert verdict.startswith("failed: 1 of 1 will never be ready"), verdict


def test_a_failed_job_with_failed_ok_is_done(api: KubeAPI) -> None:
    api.put("jobs", recorded_object("jobs/get-failed.json"))
    result = kube(api, "k8s://job/job-fail#failed=ok")
    assert result.returncode == 0, result.stderr


def test_a_job_that_does_not_exist_yet_is_waited_for(api: KubeAPI) -> None:
    job = recorded_object("jobs/get-complete.json")
    job["metadata"]["name"] = "migrate"
    ready, _ = waits_until(api, "k8s://job/migrate", lambda: api.put("jobs", job),
                           missing="job migrate not found in namespace waitdemo")  # fmt: skip
    assert ready["detail"] == "job migrate complete (1 succeeded)"


# --- pods -------------------------------------------------------------------------------


def test_pods_by_selector_become_ready(api: KubeAPI) -> None:
    for pod in recorded_body("pods/list-running-not-ready.json")["items"]:
        api.put("pods", pod)

    def ready_now() -> None:
        for event in recorded_events("watch/pods-ready.ndjson"):
            api.put("pods", event["object"])

    ready, _ = waits_until(
        api, "k8s://pods?selector=app=readypods&min=2", ready_now,
        missing="0 of 2 pods with app=readypods ready (need 2); readypod-a: "
                "ContainersNotReady: containers with unready status: [app]",
    )  # fmt: skip
    assert ready["detail"] == "2 of 2 pods with app=readypods ready (need 2)"


def test_a_crashlooping_pod_says_so(api: KubeAPI) -> None:
    api.put("pods", recorded_object("pods/list-crashloop.json"))
    error = last_error(kube(api, "k8s://pod/crashloop"))
    assert error == "0 of 1 pods named crashloop ready (need 1); crashloop: app: CrashLoopBackOff"


def test_a_deleted_pod_no_longer_counts(api: KubeAPI) -> None:
    for pod in recorded_body("pods/list-ready.json")["items"]:
        api.put("pods", pod)
    assert kube(api, "k8s://pods?selector=app=readypods&min=2").returncode == 0
    api.delete("pods", "readypod-b")
    error = last_error(kube(api, "k8s://pods?selector=app%3Dreadypods&min=2"))
    assert error == "1 of 1 pods with app=readypods ready (need 2)"


# --- Services, Deployments, StatefulSets ------------------------------------------------


def test_a_service_gets_ready_endpoints(api: KubeAPI) -> None:
    """The hand-written slice and the one the mirroring controller wrote (`ready` only)."""
    for piece in recorded_body("endpointslices/manual-list-not-ready.json")["items"]:
        api.put("endpointslices", piece)

    def ready_now() -> None:
        for piece in recorded_body("endpointslices/manual-list-ready.json")["items"]:
            api.put("endpointslices", piece)

    ready, _ = waits_until(api, "k8s://service/manualsvc#min=2", ready_now,
                           missing="service manualsvc has 0 ready endpoints (need 2)")  # fmt: skip
    assert ready["detail"] == "service manualsvc has 2 ready endpoints (need 2)"


def test_a_service_whose_slices_have_no_endpoints_is_not_ready(api: KubeAPI) -> None:
    """As recorded on a node whose pods are hostNetwork on 127.0.0.1: "endpoints": null."""
    for piece in recorded_body("endpointslices/list-ready.json")["items"]:
        api.put("endpointslices", piece)
    assert last_error(kube(api, "k8s://svc/websvc")) == (
        "service websvc has 0 ready endpoints (need 1)"
    )


def test_a_deployment_rolls_out(api: KubeAPI) -> None:
    api.put("deployments", recorded_object("deployments/get-rolling-out.json"))
    ready, _ = waits_until(
        api, "k8s://deployment/web",
        lambda: api.put("deployments", recorded_object("deployments/get-available.json")),
        missing="deployment web: 0 of 3 updated replicas available",
    )  # fmt: skip
    assert ready["detail"] == "deployment web rolled out (3 available)"


def test_a_deployment_update_and_a_stuck_one(api: KubeAPI) -> None:
    api.put("deployments", recorded_object("deployments/get-update-in-progress.json"))
    assert last_error(kube(api, "k8s://deploy/web")) == ("deployment web: 1 of 3 replicas updated")
    api.put("deployments", recorded_object("deployments/get-progress-deadline-exceeded.json"))
    assert last_error(kube(api, "k8s://deploy/stuck")) == (
        "deployment stuck exceeded its progress deadline"
    )


def test_a_statefulset_rolls_out(api: KubeAPI) -> None:
    api.put("statefulsets", recorded_object("statefulsets/get-not-ready.json"))

    def one_then_two() -> None:
        api.put("statefulsets", recorded_object("statefulsets/get-partly-ready.json"))
        time.sleep(0.3)
        api.put("statefulsets", recorded_object("statefulsets/get-ready.json"))

    ready, _ = waits_until(api, "k8s://sts/db", one_then_two,
                           missing="statefulset db: 0 of 2 pods ready")  # fmt: skip
    assert ready["detail"] == "statefulset db rolled out (2 ready)"


# --- the API server says no -------------------------------------------------------------


def test_a_refused_token_is_said(api: KubeAPI, tmp_path: Path) -> None:
    config = api.write_kubeconfig(tmp_path / "bad.json", "not-a-valid-token")
    result = run_waitfor(*FAIL_FAST, "--kubeconfig", str(config), "k8s://job/job-ok")
    error = last_error(result)
    assert error.startswith("the API server refused the token (401 Unauthorized; kubeconfig ")
    assert "not-a-valid-token" not in result.stderr


def test_a_missing_permission_names_the_role_rule_to_add(api: KubeAPI) -> None:
    api.allowed = {("pods", "waitdemo")}
    error = last_error(kube(api, "k8s://job/job-ok#namespace=batch"))
    assert error == (
        'forbidden: jobs is forbidden: User "system:serviceaccount:waitdemo:waiter" cannot '
        'list resource "jobs" in API group "batch" in the namespace "batch" — to let waitfor '
        "list jobs in namespace batch, add to a Role bound to its service account: "
        '{apiGroups: ["batch"], resources: ["jobs"], verbs: ["get", "list", "watch"]}'
    )


def test_an_expired_watch_lists_again(api: KubeAPI) -> None:
    """410 Gone comes as an ERROR event in a 200 stream (as recorded); waitfor lists again."""
    api.put("jobs", recorded_object("jobs/get-running.json"))

    def compact_then_complete() -> None:
        api.compact()
        time.sleep(2.5)  # the running watch ends; the next one starts from a compacted version
        api.put("jobs", recorded_object("jobs/get-complete.json"))

    ready, _ = waits_until(api, "k8s://job/job-ok", compact_then_complete,
                           missing="job job-ok not complete")  # fmt: skip
    assert ready["detail"] == "job job-ok complete (1 succeeded)"
    assert api.requests.count(("list", "jobs")) >= 2, api.requests


# --- where the API server is ------------------------------------------------------------


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                    reason="a mount namespace of its own needs root and unshare")  # fmt: skip
def test_in_a_pod_the_service_account_is_used(api: KubeAPI, tmp_path: Path) -> None:
    """The files a pod gets (token, ca.crt, namespace without a newline), mounted where
    the kubelet mounts them, in a mount namespace of this test's own."""
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text(api.token)
    api.ca.cert_pem.write_to_path(str(account / "ca.crt"))
    (account / "namespace").write_text("waitdemo")
    api.put("jobs", recorded_object("jobs/get-complete.json"))
    target = "/var/run/secrets/kubernetes.io/serviceaccount"
    script = f'mkdir -p {target} && mount --bind "$1" {target} && shift && exec "$@"'
    env = waitfor_env({"KUBERNETES_SERVICE_HOST": "127.0.0.1",
                       "KUBERNETES_SERVICE_PORT": str(api.port)})  # fmt: skip
    env.pop("KUBECONFIG", None)
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
         str(account), *WAITFOR, *FAIL_FAST, "k8s://job/job-ok"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert events(done.stderr, "ready")[0]["detail"] == "job job-ok complete (1 succeeded)"


def test_kubeconfig_in_yaml_and_from_the_kubeconfig_variable(api: KubeAPI, tmp_path: Path) -> None:
    yaml = pytest.importorskip("yaml")
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(json.loads(api.kubeconfig.read_text())))
    api.put("jobs", recorded_object("jobs/get-complete.json"))
    result = run_waitfor(*FAIL_FAST, "k8s://job/job-ok",
                         env={"KUBECONFIG": f"{tmp_path}/missing:{config}"})  # fmt: skip
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "kubeconfig {path}: No such file or directory"),
        ({"apiVersion": "v1", "clusters": []}, "kubeconfig {path}: no current-context"),
        ({"current-context": "x", "contexts": []}, "context 'x' is not defined"),
        ({"current-context": "c", "contexts": [{"name": "c", "context": {"cluster": "k",
          "user": "u"}}], "clusters": [{"name": "k", "cluster": {"server": "https://k:6443"}}],
          "users": [{"name": "u", "user": {"exec": {"command": "aws"}}}]},
         "user 'u' authenticates by exec, which waitfor does not"),
        ({"current-context": "c", "contexts": [{"name": "c", "context": {"cluster": "k"}}],
          "clusters": [{"name": "k", "cluster": {"server": "http://k:8080"}}]},
         "is not an https:// URL"),
    ],
)  # fmt: skip
def test_a_bad_kubeconfig_is_a_usage_error(tmp_path: Path, content: Any, problem: str) -> None:
    path = tmp_path / "config"
    if content is not None:
        path.write_text(json.dumps(content))
    result = run_waitfor("--kubeconfig", str(path), "k8s://job/x")
    assert result.returncode == 2, result.stderr
    assert problem.format(path=path) in result.stderr


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        ("k8s://jobz/x", "unknown kind 'jobz'"),
        ("k8s://job", "which job? k8s://job/NAME"),
        ("k8s://pods", "pods by name (k8s://pod/NAME) or by ?selector=LABELS"),
        ("k8s://job/x?selector=a=b", "option selector is for pods"),
        ("k8s://deployment/x#min=2", "option min is for pods and services"),
        ("k8s://job/x#failed=yes", "option failed: only #failed=ok"),
        ("k8s://job:80/x", "expected k8s://KIND/NAME"),
        ("k8s://job/x#namespce=a", "unknown option 'namespce'"),
    ],
)
def test_bad_k8s_targets_are_usage_errors(target: str, problem: str, tmp_path: Path,
                                          api: KubeAPI) -> None:  # fmt: skip
    assert problem in usage_error("--kubeconfig", str(api.kubeconfig), target)


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (b"SSH-2.0-OpenSSH_9.2p1\r\n", "not a Kubernetes API server (Bad status line b'SSH-2')"),
        (b"HTTP/1.1 banana\r\n\r\n", "not a Kubernetes API server (HTTP/1.1 banana)"),
        ("close", "server closed the connection without a response"),
        ("reset", "connection reset by 127.0.0.1:{port}"),
    ],
)
def test_a_server_that_is_not_an_api_server_is_said(
    api: KubeAPI, tmp_path: Path, answer: bytes | str, said: str
) -> None:
    """The kubeconfig's server answers TLS with the API server's certificate, reads the
    request, then answers noise, hangs up (FIN) or resets the connection (RST)."""
    from tests.integration.hostile import HostileServer, garbage, read_some

    def hang_up(conn: socket.socket, stop: threading.Event) -> None:
        read_some(conn, stop)
        if answer == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()

    behaviour = garbage(answer) if isinstance(answer, bytes) else hang_up
    with HostileServer(behaviour, tls=api.tls) as stranger:
        config = json.loads(api.kubeconfig.read_text())
        config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{stranger.port}"
        path = tmp_path / "stranger.json"
        path.write_text(json.dumps(config))
        result = run_waitfor(*FAIL_FAST, "--kubeconfig", str(path), "k8s://job/job-ok")
    assert last_error(result) == said.format(port=stranger.port)
