"""The Kustomize components (`k8s/components/`) against `pod-agents inject`: for the same
workload and the same inputs, the same pod — the same containers in the same order, the
same logship and waitfor settings as the programs themselves read them, the same pod
settings and volumes — on every kind of workload, valid for Kubernetes 1.29-1.33. And the
co-located example is exactly what inject makes of its Deployment.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.helpers import kustomize

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
KUBERNETES = ["1.29.0", "1.30.0", "1.31.0", "1.32.0", "1.33.0"]
FLAGS = ["--wait", "postgres://db:5432", "--waitfor-arg=--timeout=5m", "--ship",
         "/var/log/shop/*.log", "--es", "http://elasticsearch:9200", "--es-secret",
         "elasticsearch-credentials"]  # fmt: skip
# the 06 example's ConfigMaps, as the components' users write them
WAITFOR_LITERALS = ["WAITFOR_TARGETS=postgres://db:5432", "WAITFOR_TIMEOUT=5m"]
LOGSHIP_LITERALS = ["LOG_DIR=/var/log/shop", "LOGSHIP_PATHS=/var/log/shop/*.log",
                    "LOGSHIP_ES_URLS=http://elasticsearch:9200",
                    "LOGSHIP_DATA_DIR=/var/log/shop/.logship",
                    "LOGSHIP_PASSWORD_FILE=/etc/logship/elasticsearch/password",
                    "CONTAINER_NAME=shop"]  # fmt: skip


def inject(text: str, *flags: str) -> list[dict[str, Any]]:
    done = subprocess.run([sys.executable, "-m", "agents.inject", "inject", *flags, "-"],
                          input=text, capture_output=True, text=True, timeout=60,
                          check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    if doc["kind"] == "Pod":
        return doc["spec"]
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return doc["spec"]["template"]["spec"]


def environment(
    container: dict[str, Any], config_maps: dict[str, dict[str, str]]
) -> dict[str, str]:
    """The container's environment as the program sees it: envFrom ConfigMaps resolved,
    Secret and Downward API values as `<NAME>`."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env |= config_maps[source["configMapRef"]["name"]]
    for entry in container.get("env", []):
        env[entry["name"]] = entry.get("value", f"<{entry['name']}>")
    return env


def programs(spec: dict[str, Any], maps: dict[str, dict[str, str]]) -> dict[str, Any]:
    """What the pod runs, as the programs read it: waitfor's targets and timeout over its
    containers, logship's whole configuration, and where each runs."""
    from agents.logship.config import load_config as logship_config
    from agents.waitfor.config import load_config as waitfor_config

    targets: list[str] = []
    timeouts = set()
    logship = None
    order = []
    for where in ("initContainers", "containers"):
        for container in spec.get(where, []):
            image = container["image"]
            env = environment(container, maps)
            if image.startswith("pod-agents/waitfor:"):
                config = waitfor_config(container.get("args", []), env)
                targets += list(config.targets)
                timeouts.add(config.timeout)
                order.append((where, "waitfor"))
            elif image.startswith("pod-agents/logship:"):
                logship = (logship_config(container.get("args", []), env), env, container)
                order.append((where, "logship"))
            else:
                order.append((where, container["name"]))
    assert logship is not None
    config, env, container = logship
    shape = {k: container[k] for k in ("image", "ports", "livenessProbe", "securityContext",
                                       "resources", "restartPolicy", "startupProbe")}  # fmt: skip
    mounts = sorted((m["name"], m["mountPath"], m.get("readOnly", False))
                    for m in container["volumeMounts"])  # fmt: skip
    named = ("CONTAINER_NAME", "POD_NAME", "POD_UID", "POD_NAMESPACE", "POD_IP", "NODE_NAME")
    downward = {k: v for k, v in env.items() if k in named}
    app = next(c for c in spec["containers"] if c["name"] == env["CONTAINER_NAME"])
    volumes = {v["name"]: sorted(set(v) - {"name"}) for v in spec["volumes"]}
    secret = next(v["secret"] for v in spec["volumes"] if "secret" in v)
    return {
        "order": [
            x if x[1] in ("waitfor", "logship") else (x[0], "app") for x in dict.fromkeys(order)
        ],
        "targets": sorted(targets),
        "timeouts": timeouts,
        "logship": config,
        "shape": shape,
        "mounts": mounts,
        "downward": downward,
        "app_mounts": sorted((m["name"], m["mountPath"]) for m in app.get("volumeMounts", [])),
        "volumes": volumes,
        "secret": (secret["secretName"], secret["items"]),
        "pod": (spec["shareProcessNamespace"], spec["terminationGracePeriodSeconds"]),
    }


def config_maps(documents: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    return {d["metadata"]["name"]: d["data"] for d in documents if d["kind"] == "ConfigMap"}


def test_the_components_make_the_pod_inject_makes() -> None:
    rendered = kustomize("06-deployment-components")
    (workload,) = [d for d in rendered if d["kind"] == "Deployment"]
    base = (K8S / "06-deployment-components" / "deployment.yaml").read_text()
    (injected,) = inject(base, *FLAGS)
    by_component = programs(pod_spec(workload), config_maps(rendered))
    by_inject = programs(pod_spec(injected), {})
    assert by_component == by_inject
    assert by_component["order"] == [("initContainers", "waitfor"),
                                     ("initContainers", "logship"),
                                     ("containers", "app")]  # fmt: skip
    assert by_component["app_mounts"] == [("pod-agents-logs", "/var/log/shop")]
    for version in KUBERNETES:
        kubernetes_validate.validate(workload, version, strict=True)


WORKLOADS = {
    "Pod": {"apiVersion": "v1", "kind": "Pod", "spec": {}},
    "StatefulSet": {"apiVersion": "apps/v1", "kind": "StatefulSet",
                    "spec": {"serviceName": "shop", "template": {"spec": {}}}},
    "DaemonSet": {"apiVersion": "apps/v1", "kind": "DaemonSet", "spec": {"template": {"spec": {}}}},
    "Job": {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"spec": {}}}},
    "CronJob": {"apiVersion": "batch/v1", "kind": "CronJob",
                "spec": {"schedule": "0 * * * *",
                         "jobTemplate": {"spec": {"template": {"spec": {}}}}}},
}  # fmt: skip
APP_MOUNT_PATH = {"Pod": "/spec", "CronJob": "/spec/jobTemplate/spec/template/spec"}


def workload(kind: str) -> dict[str, Any]:
    doc = yaml.safe_load(yaml.safe_dump(WORKLOADS[kind]))
    labels = {"app": "shop", "pod-agents.io/logship": "enabled", "pod-agents.io/waitfor": "enabled"}
    doc["metadata"] = {"name": "shop", "labels": labels}
    spec = pod_spec(doc)
    spec["containers"] = [{"name": "shop", "image": "shop:1",
                           "securityContext": {"allowPrivilegeEscalation": False}}]  # fmt: skip
    spec["initContainers"] = [{"name": "migrate", "image": "shop:1", "args": ["migrate"]}]
    if kind in ("Job", "CronJob"):
        spec["restartPolicy"] = "OnFailure"
    if kind not in ("Pod", "CronJob", "Job"):
        doc["spec"]["selector"] = {"matchLabels": {"app": "shop"}}
        doc["spec"]["template"]["metadata"] = {"labels": {"app": "shop"}}
    return doc


def render(tmp_path: Path, doc: dict[str, Any], *, targets: str = "postgres://db:5432",
           patches: tuple[str, ...] = ()) -> list[dict[str, Any]]:  # fmt: skip
    """The workload through both components, in a kustomization of its own as a user
    writes it (the components by relative path, the ConfigMaps, the app's mount, and
    `patches` of their own)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (with Kustomize 5) is not installed here")
    components = os.path.relpath(K8S / "components", tmp_path)
    path = APP_MOUNT_PATH.get(doc["kind"], "/spec/template/spec")
    (tmp_path / "workload.yaml").write_text(yaml.safe_dump(doc))
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump({
        "resources": ["workload.yaml"],
        "components": [f"{components}/logship-sidecar", f"{components}/waitfor"],
        "configMapGenerator": [{"name": "pod-agents-waitfor",
                                "literals": [f"WAITFOR_TARGETS={targets}", *WAITFOR_LITERALS[1:]]},
                               {"name": "pod-agents-logship", "literals": LOGSHIP_LITERALS}],
        "patches": [{"target": {"kind": doc["kind"], "name": "shop"}, "patch": yaml.safe_dump([
            {"op": "add", "path": f"{path}/containers/0/volumeMounts",
             "value": [{"name": "pod-agents-logs", "mountPath": "/var/log/shop"}]}])},
            *({"target": {"kind": doc["kind"], "name": "shop"}, "patch": p} for p in patches)],
    }))  # fmt: skip
    done = subprocess.run([kubectl, "kustomize", str(tmp_path)], capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


@pytest.mark.parametrize("kind", sorted(WORKLOADS))
def test_every_kind_of_workload_gets_the_same_pod_both_ways(kind: str, tmp_path: Path) -> None:
    doc = workload(kind)
    rendered = render(tmp_path, doc)
    (by_component,) = [d for d in rendered if d["kind"] == kind]
    (by_inject,) = inject(yaml.safe_dump(doc), *FLAGS, "--container", "shop")
    component_pod = programs(pod_spec(by_component), config_maps(rendered))
    assert component_pod == programs(pod_spec(by_inject), {})
    names = [c["name"] for c in pod_spec(by_component)["initContainers"]]
    assert names == ["wait-for", "logship", "migrate"]  # waitfor, logship, the app's own
    for version in KUBERNETES:
        kubernetes_validate.validate(by_component, version, strict=True)


def test_a_workload_without_the_labels_is_left_alone(tmp_path: Path) -> None:
    doc = workload("StatefulSet")
    del doc["metadata"]["labels"]["pod-agents.io/logship"]
    rendered = render(tmp_path, doc)
    (statefulset,) = [d for d in rendered if d["kind"] == "StatefulSet"]
    names = [c["name"] for c in pod_spec(statefulset)["initContainers"]]
    assert names == ["wait-for", "migrate"]
    assert "shareProcessNamespace" not in pod_spec(statefulset)


def test_the_colocated_example_is_what_inject_makes_of_its_deployment() -> None:
    """`--remove` gives the Deployment back; injecting it again with the flags its header
    names gives the file back, byte for byte (so the example cannot drift from inject)."""
    example = (K8S / "07-deployment-colocated" / "deployment.yaml").read_text()
    removed = subprocess.run([sys.executable, "-m", "agents.inject", "inject", "--remove", "-"],
                             input=example, capture_output=True, text=True, timeout=60,
                             check=True).stdout  # fmt: skip
    assert "pod-agents/" not in removed
    argv = [sys.executable, "-m", "agents.inject", "inject", *FLAGS, "--sidecar", "colocated", "-"]
    again = subprocess.run(argv, input=removed, capture_output=True, text=True, timeout=60,
                           check=True).stdout  # fmt: skip
    assert again == example


def test_a_secret_for_a_target_mounts_as_inject_mounts_it(tmp_path: Path) -> None:
    """With the component, a target's #password-file= Secret is one patch (the one in the
    component's header): the same volume and mount as `inject --wait-secret` makes."""
    target = "redis://cache:6379#password-file=/etc/waitfor/cache-auth/password"
    doc = workload("StatefulSet")
    patch = {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "shop"},
        "spec": {"template": {"spec": {
            "initContainers": [{"name": "wait-for", "volumeMounts": [
                {"name": "pod-agents-wait-cache-auth", "mountPath": "/etc/waitfor/cache-auth",
                 "readOnly": True}]}],
            "volumes": [{"name": "pod-agents-wait-cache-auth", "secret": {
                "secretName": "cache-auth", "items": [{"key": "password", "path": "password"}]}}],
        }}},
    }  # fmt: skip
    rendered = render(tmp_path, doc, targets=target, patches=(yaml.safe_dump(patch),))
    (by_component,) = [d for d in rendered if d["kind"] == "StatefulSet"]
    (by_inject,) = inject(yaml.safe_dump(doc), "--wait", target, "--wait-secret", "cache-auth",
                          *FLAGS[2:], "--container", "shop")  # fmt: skip

    def waitfor_secret(spec: dict[str, Any]) -> tuple[Any, ...]:
        (container,) = [c for c in spec["initContainers"] if "waitfor" in c["image"]]
        (mount,) = container["volumeMounts"]
        (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
        return mount, volume

    assert waitfor_secret(pod_spec(by_component)) == waitfor_secret(pod_spec(by_inject))
    maps = config_maps(rendered)
    assert programs(pod_spec(by_component), maps)["targets"] == [target]
    for version in KUBERNETES:
        kubernetes_validate.validate(by_component, version, strict=True)
