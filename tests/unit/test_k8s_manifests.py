"""The manifests under k8s/: valid for Kubernetes (offline schemas), and true to our rules —
restricted Pod Security, probes, grace period vs drain timeout, images, metadata, and
configurations that our own programs accept."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from agents import __version__
from agents._options import parse_duration
from tests.helpers import kustomize

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
KUBERNETES = "1.33.0"  # native sidecars are GA from 1.33
DOWNWARD = {"POD_NAME", "POD_NAMESPACE", "POD_UID", "NODE_NAME", "CONTAINER_NAME"}


def documents() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(K8S.rglob("*.yaml")):
        if path.name == "kustomization.yaml" or "components" in path.parts:
            continue  # the components' files are patches: tests/integration/test_components.py
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                yield path, doc


DOCS = list(documents())


def pod_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    if doc["kind"] == "Pod":
        return doc["spec"]
    if doc["kind"] in ("Job", "Deployment", "StatefulSet", "DaemonSet"):
        return doc["spec"]["template"]["spec"]
    return None


PODS = [(path, doc["metadata"]["name"], spec) for path, doc in DOCS if (spec := pod_spec(doc))]


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def ours(container: dict[str, Any], program: str) -> bool:
    return container["image"].startswith(f"pod-agents/{program}:")


def test_every_seed_pattern_has_manifests() -> None:
    patterns = sorted(p.name for p in K8S.iterdir() if p.is_dir() and p.name[0].isdigit())
    assert patterns == [
        "01-colocated-sidecar", "02-init-containers", "03-native-sidecar",
        "04-event-simulator", "04-event-simulator-hostpath", "05-job-native-sidecar",
        "06-deployment-components", "07-deployment-colocated", "08-waitfor-rbac",
    ]  # fmt: skip


@pytest.mark.parametrize(("path", "doc"), DOCS, ids=[f"{p.parent.name}/{d['metadata']['name']}"
                                                      for p, d in DOCS])  # fmt: skip
def test_valid_against_the_kubernetes_schema(path: Path, doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, KUBERNETES, strict=True)


def test_kustomizations_name_existing_resources() -> None:
    for kustomization in K8S.rglob("kustomization.yaml"):
        for resource in yaml.safe_load(kustomization.read_text()).get("resources", []):
            target = (kustomization.parent / resource).resolve()
            assert target.is_file() or (target / "kustomization.yaml").is_file(), (
                f"{kustomization}: {resource}"
            )


@pytest.mark.parametrize(("path", "name", "spec"), PODS, ids=[n for _, n, _ in PODS])
def test_restricted_pod_security(path: Path, name: str, spec: dict[str, Any]) -> None:
    pod = spec["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert pod["seccompProfile"]["type"] == "RuntimeDefault"
    for volume in spec.get("volumes", []):
        assert "hostPath" not in volume, "hostPath breaks the restricted profile"
    for container in containers(spec):
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False, container["name"]
        assert sc["capabilities"]["drop"] == ["ALL"], container["name"]
        assert sc["readOnlyRootFilesystem"] is True, container["name"]
        resources = container["resources"]
        assert resources["requests"] and resources["limits"], container["name"]


@pytest.mark.parametrize(("path", "name", "spec"), PODS, ids=[n for _, n, _ in PODS])
def test_our_images_are_this_release(path: Path, name: str, spec: dict[str, Any]) -> None:
    for container in containers(spec):
        if container["image"].startswith("pod-agents/"):
            assert container["image"].split(":")[1] == __version__


def env_of(container: dict[str, Any]) -> dict[str, str]:
    """Literal values as given; values from the Downward API or a Secret get placeholders."""
    return {e["name"]: e.get("value", f"<{e['name']}>") for e in container.get("env", [])}


LOGSHIPS = [(name, spec, c) for _, name, spec in PODS for c in containers(spec)
            if ours(c, "logship")]  # fmt: skip


@pytest.mark.parametrize(("name", "spec", "container"), LOGSHIPS,
                         ids=[n for n, _, _ in LOGSHIPS])  # fmt: skip
def test_logship_sidecars(name: str, spec: dict[str, Any], container: dict[str, Any]) -> None:
    from agents.logship.config import load_config

    env = env_of(container)
    config = load_config(container.get("args", []), env)  # what logship itself accepts
    native = container in spec.get("initContainers", [])
    if native:
        assert container["restartPolicy"] == "Always"
        assert container["startupProbe"]["httpGet"]["path"] == "/readyz"
    else:
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert config.http_port == 8081
    # The pod's grace period must cover logship's drain, or SIGKILL cuts the shutdown lines.
    assert spec["terminationGracePeriodSeconds"] > config.drain_timeout + 5
    # Its state lives on the shared volume, so a restarted sidecar resumes.
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert any(str(config.data_dir).startswith(path) and
               "emptyDir" in next(v for v in spec["volumes"] if v["name"] == volume)
               for path, volume in mounts.items())  # fmt: skip
    assert env.keys() >= DOWNWARD
    # Credentials come from a Secret, as a file: never an argument or a literal.
    secret_mounts = [
        m["mountPath"]
        for m in container["volumeMounts"]
        if "secret" in next(v for v in spec["volumes"] if v["name"] == m["name"])
    ]
    assert any(env["LOGSHIP_PASSWORD_FILE"].startswith(m) for m in secret_mounts)
    assert not any("password" in arg.lower() for arg in container.get("args", []))
    labels = [v for v in spec["volumes"] if "downwardAPI" in v]
    assert labels, "the pod's labels reach logship through a downwardAPI volume"
    assert parse_duration(env["LOGSHIP_DRAIN_TIMEOUT"], name="x") == config.drain_timeout


WAITFORS = [(name, c) for _, name, spec in PODS for c in containers(spec) if ours(c, "waitfor")]


@pytest.mark.parametrize(("name", "container"), WAITFORS,
                         ids=[f"{n}/{c['name']}" for n, c in WAITFORS])  # fmt: skip
def test_waitfor_containers_are_valid_waitfor_invocations(
    name: str, container: dict[str, Any]
) -> None:
    from agents.waitfor.config import load_config
    from agents.waitfor.targets import parse_target

    config = load_config(container.get("args", []), env_of(container))
    for target in config.targets:
        parse_target(target)


def test_the_busybox_nslookup_loop_became_a_dns_target() -> None:
    targets = [arg for _, c in WAITFORS for arg in c.get("args", [])]
    assert "dns://myservice" in targets


@pytest.mark.parametrize(("name", "spec", "container"), LOGSHIPS,
                         ids=[n for n, _, _ in LOGSHIPS])  # fmt: skip
def test_logship_shares_the_pods_process_namespace(
    name: str, spec: dict[str, Any], container: dict[str, Any]
) -> None:
    """So that its drain can wait for the app (co-located, and native on a 1.28 kubelet,
    stop both at once); the restricted profile allows it, and hostPID stays off."""
    assert spec.get("shareProcessNamespace") is True, name
    assert not spec.get("hostPID"), name


# The Pod Security Standards' baseline level (kubernetes.io/docs/concepts/security/
# pod-security-standards): capabilities beyond this list, privileged containers, host
# namespaces, host ports and hostPath volumes are forbidden.
BASELINE_CAPABILITIES = {
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}  # fmt: skip


def test_the_hostpath_variant_needs_more_than_baseline_only_for_its_volume() -> None:
    """Rendered as a user applies it: the hostPath volume is the only thing beyond the
    baseline level (hence the privileged namespace its README asks for); the app and
    logship keep every restricted setting; only log-dir-owner runs as root, with CHOWN."""
    pod = next(d for d in kustomize("04-event-simulator-hostpath") if d["kind"] == "Pod")
    kubernetes_validate.validate(pod, KUBERNETES, strict=True)
    spec = pod["spec"]
    assert [v["name"] for v in spec["volumes"] if "hostPath" in v] == ["log-volume"]
    assert spec["volumes"][0]["hostPath"]["type"] == "DirectoryOrCreate"
    assert not (spec.get("hostPID") or spec.get("hostNetwork") or spec.get("hostIPC"))
    for container in containers(spec):
        sc = container["securityContext"]
        assert not sc.get("privileged"), container["name"]
        assert set(sc["capabilities"].get("add", [])) <= BASELINE_CAPABILITIES
        assert all("hostPort" not in p for p in container.get("ports", []))
        if container["name"] == "log-dir-owner":
            assert sc["capabilities"] == {"drop": ["ALL"], "add": ["CHOWN"]}
            assert sc["runAsUser"] == 0 and sc["allowPrivilegeEscalation"] is False
        else:
            assert "runAsUser" not in sc and sc["capabilities"] == {"drop": ["ALL"]}
            assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"]
    assert spec["securityContext"]["runAsUser"] == 65532


def test_the_waitfor_role_grants_what_every_k8s_target_asks() -> None:
    """Each kind of k8s:// target LISTs and WATCHes one resource: the Role in
    k8s/08-waitfor-rbac covers them all, and the deployment's targets parse."""
    from agents.waitfor.checks.k8s import KINDS

    (role,) = [d for p, d in DOCS if d["kind"] == "Role" and p.parent.name == "08-waitfor-rbac"]
    granted = {(group, resource, verb) for rule in role["rules"] for group in rule["apiGroups"]
               for resource in rule["resources"] for verb in rule["verbs"]}  # fmt: skip
    for prefix, resource in KINDS.values():
        group = "" if prefix == "/api/v1" else prefix.split("/")[2]
        for verb in ("list", "watch"):
            assert (group, resource, verb) in granted, (group, resource, verb)
    (binding,) = [d for _, d in DOCS if d["kind"] == "RoleBinding"]
    (account,) = [d for _, d in DOCS if d["kind"] == "ServiceAccount"]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"][0]["name"] == account["metadata"]["name"]
    (deployment,) = [d for p, d in DOCS if p.parent.name == "08-waitfor-rbac"
                     and d["kind"] == "Deployment"]  # fmt: skip
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account["metadata"]["name"]
