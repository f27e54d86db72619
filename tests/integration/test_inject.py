"""`pod-agents inject`'s output as others take it: Kubernetes' schemas (1.29 to 1.33,
strict), the restricted Pod Security profile, waitfor's and logship's own parsers; and
the console script as a real process in a pipe, as `kubectl get -o yaml | pod-agents
inject | kubectl apply -f -` runs it."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from agents._options import parse_duration
from agents.inject.cli import main

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "inject"
SCRIPT = Path(sys.executable).with_name("pod-agents")
KUBERNETES = ["1.29.0", "1.30.0", "1.31.0", "1.32.0", "1.33.0"]
ANNOTATION = "pod-agents.io/injected"
COMMON = ["--wait", "postgres://db.shop.svc:5432", "--wait", "http://api:8080/healthz#status=200",
          "--waitfor-arg=--timeout=2m", "--es", "https://es-0:9200", "--es", "https://es-1:9200",
          "--es-secret", "es-credentials", "--logship-arg=--batch-docs=500"]  # fmt: skip
SHIPS = {
    "deployment-shop.yaml": ["--ship", "/var/log/shop/*.log", "--container", "shop"],
    "statefulset-postgres.yaml": ["--ship", "/var/lib/postgresql/data/pgdata/log/*.log"],
    "cronjob-report.yaml": ["--ship", "/var/log/report/*.log"],
    "pod-shared-pid.yaml": ["--ship", "/var/log/billing/*.log", "--ship", "/tmp/billing/*.txt"],
    "list.yaml": ["--ship", "/var/log/agent/*.log"],
    "pod-comments.yaml": ["--ship", "/data/logs/*.log", "--ship", "/var/log/worker/*.log"],
}
CASES = [
    (name, mode)
    for name in SHIPS
    for mode in ("native", "colocated")
    if not (name.startswith("cronjob") and mode == "colocated")
]
IDS = [f"{name.removesuffix('.yaml')}-{mode}" for name, mode in CASES]


@cache
def injected(name: str, mode: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    args = ["inject", str(FIXTURES / name), *COMMON, *SHIPS[name], "--sidecar", mode]
    assert main(args, stdout=out, stderr=err) == 0, err.getvalue()
    return out.getvalue()


def objects(text: str) -> list[dict[str, Any]]:
    """Every Kubernetes object of a stream, a List's items on their own."""
    found = []
    for doc in yaml.safe_load_all(text):
        if doc:
            found += doc["items"] if doc["kind"] == "List" else [doc]
    return found


def templates(text: str) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for obj in objects(text):
        if obj["kind"] == "Pod":
            found.append((obj["metadata"]["name"], obj))
        elif obj["kind"] == "CronJob":
            found.append((obj["metadata"]["name"], obj["spec"]["jobTemplate"]["spec"]["template"]))
        elif "template" in obj.get("spec", {}):
            found.append((obj["metadata"]["name"], obj["spec"]["template"]))
    return found


def ours(template: dict[str, Any]) -> list[dict[str, Any]]:
    """The containers inject added, as its record names them."""
    record = json.loads(template["metadata"]["annotations"][ANNOTATION])
    spec = template["spec"]
    return [
        *(c for c in spec.get("initContainers", []) if c["name"] in record["initContainers"]),
        *(c for c in spec["containers"] if c["name"] in record.get("containers", [])),
    ]


def env_of(container: dict[str, Any]) -> dict[str, str]:
    """Literal values as given; values from the Downward API or a Secret get placeholders."""
    return {e["name"]: e.get("value", f"<{e['name']}>") for e in container.get("env", [])}


@pytest.mark.parametrize("version", KUBERNETES)
@pytest.mark.parametrize(("name", "mode"), CASES, ids=IDS)
def test_valid_against_the_kubernetes_schema(name: str, mode: str, version: str) -> None:
    documents = objects(injected(name, mode))
    assert any(d["kind"] != "ConfigMap" for d in documents)
    for document in documents:
        kubernetes_validate.validate(document, version, strict=True)


def test_a_misplaced_field_is_caught_by_the_schema() -> None:
    """The check above can fail: a field the schema does not know is refused."""
    document = objects(injected("cronjob-report.yaml", "native"))[0]
    document["spec"]["jobTemplate"]["spec"]["template"]["spec"]["initContainers"][0]["foo"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(document, KUBERNETES[0], strict=True)


@pytest.mark.parametrize(("name", "mode"), CASES, ids=IDS)
def test_our_containers_meet_the_restricted_pod_security_profile(name: str, mode: str) -> None:
    for workload, template in templates(injected(name, mode)):
        spec = template["spec"]
        assert not (spec.get("hostPID") or spec.get("hostNetwork") or spec.get("hostIPC"))
        added = ours(template)
        assert len(added) == 3, workload  # two waitfors and logship
        for container in added:
            sc = container["securityContext"]
            # set on the container, so that it holds whatever the pod's own context says
            assert sc["runAsNonRoot"] is True and sc["runAsUser"] != 0, container["name"]
            assert sc["seccompProfile"]["type"] == "RuntimeDefault", container["name"]
            assert sc["allowPrivilegeEscalation"] is False, container["name"]
            assert sc["capabilities"] == {"drop": ["ALL"]}, container["name"]
            assert sc["readOnlyRootFilesystem"] is True, container["name"]
            assert not sc.get("privileged"), container["name"]
            assert all("hostPort" not in p for p in container.get("ports", []))
            resources = container["resources"]
            assert resources["requests"] and resources["limits"], container["name"]
        record = json.loads(template["metadata"]["annotations"][ANNOTATION])
        for volume in spec["volumes"]:
            if volume["name"] in record["volumes"]:
                assert set(volume) - {"name"} <= {"emptyDir", "downwardAPI", "secret"}


@pytest.mark.parametrize(("name", "mode"), CASES, ids=IDS)
def test_rendered_commands_pass_their_programs_parsers(name: str, mode: str) -> None:
    from agents.logship.config import load_config as logship_config
    from agents.waitfor.config import load_config as waitfor_config
    from agents.waitfor.targets import parse_target

    for workload, template in templates(injected(name, mode)):
        spec = template["spec"]
        volumes = {v["name"]: v for v in spec["volumes"]}
        for container in ours(template):
            if container["image"].startswith("pod-agents/waitfor:"):
                config = waitfor_config(container["args"], env_of(container))
                assert config.timeout == 120 and len(config.targets) == 1
                parse_target(config.targets[0])
                continue
            config = logship_config(container["args"], env_of(container))
            assert config.es == ("https://es-0:9200", "https://es-1:9200")
            assert config.batch_docs == 500
            assert (mode == "native") == (container.get("restartPolicy") == "Always")
            port = container["ports"][0]
            assert config.http_port == port["containerPort"]
            probe = "startupProbe" if mode == "native" else "readinessProbe"
            assert container[probe]["httpGet"]["port"] == port["name"]
            # the grace period covers the drain, or SIGKILL cuts the shutdown lines
            drain = parse_duration(env_of(container)["LOGSHIP_DRAIN_TIMEOUT"], name="x")
            assert config.drain_timeout == drain == 25
            assert spec["terminationGracePeriodSeconds"] >= config.drain_timeout + 20
            assert spec["shareProcessNamespace"] is True
            mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
            # the data dir on a volume shared with the app; the labels file where logship
            # looks by default; the password a file from the Secret
            assert str(config.data_dir.parent) in mounts, workload
            app = next(c for c in spec["containers"] if c["name"] == config_app(container))
            assert mounts[str(config.data_dir.parent)] in app["volumeMounts"]
            assert str(config.labels_file.parent) in mounts
            assert "downwardAPI" in volumes[mounts[str(config.labels_file.parent)]["name"]]
            secret = mounts[str(config.password_file.parent)]
            assert secret["readOnly"] is True and "secret" in volumes[secret["name"]]
            assert config.username == "<LOGSHIP_USERNAME>"  # from the Secret, never inline


def config_app(container: dict[str, Any]) -> str:
    return env_of(container)["CONTAINER_NAME"]


def run_script(*args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    assert SCRIPT.exists(), f"{SCRIPT}: install the project (pip install -e '.[dev]')"
    return subprocess.run(
        [str(SCRIPT), *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


def test_the_console_script_in_a_pipe() -> None:
    """kubectl's List in on stdin, the injected stream out on stdout; and back again."""
    text = (FIXTURES / "list.yaml").read_text()
    flags = [*COMMON, *SHIPS["list.yaml"], "--sidecar", "native"]
    done = run_script("inject", *flags, stdin=text)
    assert done.returncode == 0, done.stderr
    assert done.stdout == injected("list.yaml", "native")
    assert done.stderr == ""
    again = run_script("inject", "-", "--remove", stdin=done.stdout)
    assert again.returncode == 0 and again.stdout == text


def test_python_dash_m_runs_the_same_command() -> None:
    text = (FIXTURES / "cronjob-report.yaml").read_text()
    done = subprocess.run(
        [sys.executable, "-m", "agents.inject", "inject", "--wait", "tcp://db:5432"],
        input=text, capture_output=True, text=True, timeout=60, check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "wait-for-db" in done.stdout and done.stdout.startswith("# The nightly report")


def test_the_console_script_refuses_bad_input_in_one_line() -> None:
    done = run_script("inject", "--ship", "logs/*.log", "--es", "http://es:9200", stdin="")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (
        "pod-agents inject: --ship: 'logs/*.log' is not absolute: give the path the app "
        "writes to, such as /var/log/app/*.log\n"
    )
    done = run_script("inject", "--wait", "tcp://db:1", stdin="kind: Pod\n  x: [\n")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("pod-agents inject: <stdin>: document #1: line 2, column ")
