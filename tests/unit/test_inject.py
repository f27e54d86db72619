"""`pod-agents inject` in process: the structure it adds to each fixture workload (native and
co-located), what it leaves as it was written, idempotency and --remove byte for byte,
every refusal as one line and exit 2, the inputs it reads, and its pure pieces."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from agents import __version__
from agents.inject.cli import main
from agents.inject.documents import guess_indent, join, split
from agents.inject.options import log_dir
from agents.inject.pod import ANNOTATION, Record
from agents.inject.render import dns_label, unique, waitfor_name

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "inject"
WAITS = ["postgres://db.shop.svc:5432", "http://api:8080/healthz#status=200"]
COMMON = [
    "--wait",
    WAITS[0],
    "--wait",
    WAITS[1],
    "--es",
    "https://es:9200",
    "--es-secret",
    "es-credentials",
]
# per fixture: the globs (and app container) a user would give
SHIPS: dict[str, list[str]] = {
    "deployment-shop.yaml": [
        "--ship",
        "/var/log/shop/*.log",
        "--ship",
        "/var/log/shop/audit/**/*.json",
        "--container",
        "shop",
    ],
    "statefulset-postgres.yaml": ["--ship", "/var/lib/postgresql/data/pgdata/log/*.log"],
    "cronjob-report.yaml": ["--ship", "/var/log/report/*.log"],
    "pod-shared-pid.yaml": ["--ship", "/var/log/billing/*.log", "--ship", "/tmp/billing/*.txt"],
    "list.yaml": ["--ship", "/var/log/agent/*.log"],
    "pod-comments.yaml": ["--ship", "/data/logs/*.log", "--ship", "/var/log/worker/*.log"],
}
MODES = ("native", "colocated")
CASES = [
    (name, mode)
    for name in SHIPS
    for mode in MODES
    if not (name.startswith("cronjob") and mode == "colocated")
]
RESTRICTED = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "runAsUser": 65532,
    "seccompProfile": {"type": "RuntimeDefault"},
}
DOWNWARD = ["POD_NAME", "POD_NAMESPACE", "POD_UID", "POD_IP", "NODE_NAME"]


def run(*args: str, stdin: str = "") -> tuple[int, str, str]:
    """`pod-agents inject ARGS` with `stdin` → (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    code = main(["inject", *args], stdin=io.StringIO(stdin), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def inject(text: str, *args: str) -> str:
    code, out, err = run(*args, stdin=text)
    assert code == 0, err
    return out


def flags(name: str, mode: str) -> list[str]:
    return [*COMMON, *SHIPS[name], "--sidecar", mode]


def source(name: str) -> str:
    return (FIXTURES / name).read_text()


def templates(text: str) -> list[tuple[str, dict[str, Any]]]:
    """(kind, pod template) of every workload in a YAML stream, List items included."""
    found = []
    for doc in yaml.safe_load_all(text):
        for obj in doc["items"] if doc and doc.get("kind") == "List" else [doc]:
            if not obj:
                continue
            kind = obj["kind"]
            if kind == "Pod":
                found.append((kind, obj))
            elif kind == "CronJob":
                found.append((kind, obj["spec"]["jobTemplate"]["spec"]["template"]))
            elif kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
                found.append((kind, obj["spec"]["template"]))
    return found


def by_name(containers: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(c for c in containers if c["name"] == name)


# --- the structure added -------------------------------------------------------------


@pytest.mark.parametrize(("name", "mode"), CASES)
def test_injected_structure(name: str, mode: str) -> None:
    before = templates(source(name))
    after = templates(inject(source(name), *flags(name, mode)))
    assert [k for k, _ in after] == [k for k, _ in before] and after
    for (_, old), (kind, new) in zip(before, after, strict=True):
        spec, old_spec = new["spec"], old["spec"]
        record = json.loads(new["metadata"]["annotations"][ANNOTATION])
        assert record["version"] == __version__
        init = spec["initContainers"]
        waits = init[: len(WAITS)]
        assert [c["args"] for c in waits] == [[t] for t in WAITS]
        assert [c["name"] for c in waits] == ["wait-for-db-shop-svc", "wait-for-api"]
        for container in waits:
            assert container["image"] == f"pod-agents/waitfor:{__version__}"
            assert container["securityContext"] == RESTRICTED
            assert container["resources"] == {
                "requests": {"cpu": "10m", "memory": "48Mi"},
                "limits": {"cpu": "200m", "memory": "96Mi"},
            }
        user_init = old_spec.get("initContainers", [])
        user_containers = old_spec["containers"]
        if mode == "native":
            logship = init[len(WAITS)]
            assert logship["name"] == "logship" and logship["restartPolicy"] == "Always"
            # the app's own init containers after ours, as they were
            assert init[len(WAITS) + 1 :] == user_init
            assert [c["name"] for c in spec["containers"]] == [c["name"] for c in user_containers]
        else:
            assert init[len(WAITS) :] == user_init
            logship = by_name(spec["containers"], "logship")
            assert "restartPolicy" not in logship
            others = [c["name"] for c in spec["containers"] if c["name"] != "logship"]
            assert others == [c["name"] for c in user_containers]  # order kept
            if len(user_containers) == 1:  # logship went before it: kubectl still picks it
                assert (
                    new["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"]
                    == user_containers[0]["name"]
                )
        check_logship(name, logship, spec, old_spec, mode)
        # the user's containers as they were, but for the app's new log mounts
        app = next(e["value"] for e in logship["env"] if e["name"] == "CONTAINER_NAME")
        for container in user_containers:
            now = by_name(spec["containers"], container["name"])
            if container["name"] == app:
                mounts = record.get("volumeMounts", {}).get(app, [])
                now = {**now, "volumeMounts": [m for m in now.get("volumeMounts", [])
                                               if m["name"] not in mounts]}  # fmt: skip
                if not now["volumeMounts"] and "volumeMounts" not in container:
                    del now["volumeMounts"]
            assert now == container
        assert spec["shareProcessNamespace"] is True
        assert spec["terminationGracePeriodSeconds"] == max(
            45, old_spec.get("terminationGracePeriodSeconds", 0)
        )
        assert kind == old.get("kind", kind)


def check_logship(
    name: str,
    logship: dict[str, Any],
    spec: dict[str, Any],
    old_spec: dict[str, Any],
    mode: str,
) -> None:
    assert logship["image"] == f"pod-agents/logship:{__version__}"
    globs = SHIPS[name][1::2] if "--container" not in SHIPS[name] else SHIPS[name][1:4:2]
    args = logship["args"]
    assert args[: len(globs) + 1] == [*(f"--path={g}" for g in globs), "--es=https://es:9200"]
    data_dir = next(a.split("=", 1)[1] for a in args if a.startswith("--data-dir="))
    port = int(next(a.split("=", 1)[1] for a in args if a.startswith("--http-port=")))
    env = {e["name"]: e for e in logship["env"]}
    assert env["LOGSHIP_USERNAME"]["valueFrom"] == {
        "secretKeyRef": {"name": "es-credentials", "key": "username"}
    }
    assert env["LOGSHIP_PASSWORD_FILE"]["value"] == "/etc/logship/elasticsearch/password"
    assert env["LOGSHIP_DRAIN_TIMEOUT"]["value"] == "25s"
    for variable in DOWNWARD:
        assert "fieldRef" in env[variable]["valueFrom"], variable
    app = env["CONTAINER_NAME"]["value"]
    assert app in [c["name"] for c in old_spec["containers"]]
    assert logship["ports"] == [{"name": "logship-http", "containerPort": port}]
    declared = {p["containerPort"] for c in old_spec["containers"] for p in c.get("ports", [])}
    assert port not in declared and port >= 8081
    if mode == "native":  # holds the app until logship watches its files
        assert logship["startupProbe"] == {
            "httpGet": {"path": "/readyz", "port": "logship-http"},
            "periodSeconds": 1,
            "failureThreshold": 60,
        }
        assert "readinessProbe" not in logship
    else:  # nothing can hold a co-located app: the pod is not Ready while logship is not
        assert logship["readinessProbe"] == {"httpGet": {"path": "/readyz", "port": "logship-http"}}
        assert "startupProbe" not in logship
    assert logship["livenessProbe"] == {
        "httpGet": {"path": "/healthz", "port": "logship-http"},
        "periodSeconds": 20,
    }
    assert logship["securityContext"] == RESTRICTED
    assert logship["resources"] == {
        "requests": {"cpu": "50m", "memory": "64Mi"},
        "limits": {"cpu": "500m", "memory": "192Mi"},
    }
    mounts = {m["mountPath"]: m for m in logship["volumeMounts"]}
    assert mounts["/etc/podinfo"] == {
        "name": "pod-agents-podinfo",
        "mountPath": "/etc/podinfo",
        "readOnly": True,
    }
    assert mounts["/etc/logship/elasticsearch"]["readOnly"] is True
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["pod-agents-podinfo"]["downwardAPI"]["items"] == [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}
    ]
    assert volumes["pod-agents-es-credentials"]["secret"] == {
        "secretName": "es-credentials",
        "items": [{"key": "password", "path": "password"}],
    }
    # every glob's directory is a mount logship shares with the app, at the same path
    app_mounts = by_name(spec["containers"], app)["volumeMounts"]
    for glob in globs:
        shared = [
            m
            for m in logship["volumeMounts"]
            if (log_dir(glob) + "/").startswith(m["mountPath"] + "/")
        ]
        assert shared and all(m in app_mounts for m in shared), glob
    assert any(data_dir == m["mountPath"] + "/.logship" for m in logship["volumeMounts"])
    assert not any("password" in a.lower() for a in args)


def test_an_existing_volume_over_the_log_directory_is_reused() -> None:
    name = "deployment-shop.yaml"
    _, template = templates(inject(source(name), *flags(name, "native")))[0]
    spec = template["spec"]
    logship = by_name(spec["initContainers"], "logship")
    assert logship["volumeMounts"][0] == {"name": "shop-logs", "mountPath": "/var/log/shop"}
    assert len(logship["volumeMounts"]) == 3  # both globs in one volume; podinfo; Secret
    assert "--data-dir=/var/log/shop/.logship" in logship["args"]
    assert not any(v["name"] == "pod-agents-logs" for v in spec["volumes"])
    before = templates(source(name))[0][1]["spec"]
    assert spec["containers"] == before["containers"]  # the app's mounts untouched


NESTED = """\
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
    - name: app
      image: app
      volumeMounts:
        - {name: all-logs, mountPath: /var/log}
        - {name: shop-logs, mountPath: /var/log/shop/}
        - {name: tmp, mountPath: /tmp, subPath: app}
  volumes:
    - {name: all-logs, emptyDir: {}}
    - {name: shop-logs, persistentVolumeClaim: {claimName: shop-logs}}
    - {name: tmp, emptyDir: {}}
"""


@pytest.mark.parametrize(("glob", "mount", "data_dir"), [
    ("/var/log/shop/*.log", {"name": "shop-logs", "mountPath": "/var/log/shop/"},
     "/var/log/shop/.logship"),  # the deepest mount over it: what the app writes to
    ("/var/log/nginx/*.log", {"name": "all-logs", "mountPath": "/var/log"},
     "/var/log/.logship"),  # a parent's mount
    ("/tmp/out/*.log", {"name": "tmp", "mountPath": "/tmp", "subPath": "app"},
     "/tmp/.logship"),  # the same subPath, or logship would see another directory
])  # fmt: skip
def test_the_mount_the_app_writes_through_is_the_one_shared(
    glob: str, mount: dict[str, str], data_dir: str
) -> None:
    spec = templates(inject(NESTED, "--ship", glob, "--es", "http://es:9200"))[0][1]["spec"]
    logship = by_name(spec["initContainers"], "logship")
    assert logship["volumeMounts"][0] == mount
    assert f"--data-dir={data_dir}" in logship["args"]
    assert [v["name"] for v in spec["volumes"]] == ["pod-agents-podinfo", "all-logs",
                                                     "shop-logs", "tmp"]  # fmt: skip


def test_a_statefulsets_claim_over_the_log_directory_is_reused() -> None:
    name = "statefulset-postgres.yaml"
    _, template = templates(inject(source(name), *flags(name, "native")))[0]
    logship = by_name(template["spec"]["initContainers"], "logship")
    assert logship["volumeMounts"][0] == {"name": "data", "mountPath": "/var/lib/postgresql/data"}
    assert "--data-dir=/var/lib/postgresql/data/.logship" in logship["args"]


def test_directories_without_a_volume_get_an_emptydir_each() -> None:
    name = "pod-shared-pid.yaml"
    _, pod = templates(inject(source(name), *flags(name, "native")))[0]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["pod-agents-logs"] == {"name": "pod-agents-logs", "emptyDir": {}}
    assert volumes["pod-agents-logs-2"] == {"name": "pod-agents-logs-2", "emptyDir": {}}
    app = by_name(pod["spec"]["containers"], "billing")
    assert {m["mountPath"]: m["name"] for m in app["volumeMounts"]} == {
        "/tmp/billing": "pod-agents-logs",
        "/var/log/billing": "pod-agents-logs-2",
    }
    logship = by_name(pod["spec"]["initContainers"], "logship")
    assert "--data-dir=/var/log/billing/.logship" in logship["args"]  # the first glob's


def test_a_glob_below_one_new_volume_shares_it() -> None:
    name = "cronjob-report.yaml"
    text = inject(
        source(name),
        "--ship",
        "/var/log/report/a/*.log",
        "--ship",
        "/var/log/report/*.log",
        "--es",
        "http://es:9200",
    )
    _, template = templates(text)[0]
    logship = by_name(template["spec"]["initContainers"], "logship")
    assert logship["volumeMounts"][0] == {"name": "pod-agents-logs", "mountPath": "/var/log/report"}
    assert [v["name"] for v in template["spec"]["volumes"]] == [
        "pod-agents-logs",
        "pod-agents-podinfo",
    ]


def test_the_cronjobs_pod_template_is_injected_under_its_job_template() -> None:
    name = "cronjob-report.yaml"
    doc = yaml.safe_load(inject(source(name), *flags(name, "native")))
    template = doc["spec"]["jobTemplate"]["spec"]["template"]
    assert [c["name"] for c in template["spec"]["initContainers"]] == [
        "wait-for-db-shop-svc",
        "wait-for-api",
        "logship",
    ]
    assert ANNOTATION in template["metadata"]["annotations"]
    assert "initContainers" not in doc["spec"]  # nothing put on the CronJob itself
    assert doc["spec"]["schedule"] == "15 2 * * *"


def test_a_pod_that_already_shares_its_namespace_keeps_its_settings() -> None:
    name = "pod-shared-pid.yaml"
    text = inject(source(name), *flags(name, "native"))
    record = json.loads(templates(text)[0][1]["metadata"]["annotations"][ANNOTATION])
    assert "spec" not in record  # nothing changed: true already, 90 s already enough
    assert "  shareProcessNamespace: true\n  terminationGracePeriodSeconds: 90\n" in text


def test_a_longer_drain_raises_the_grace_period_and_remove_restores_it() -> None:
    name = "pod-shared-pid.yaml"
    text = inject(
        source(name),
        "--ship",
        "/var/log/b/*.log",
        "--es",
        "http://es:9200",
        "--drain-timeout",
        "1m30s",
    )
    _, pod = templates(text)[0]
    assert pod["spec"]["terminationGracePeriodSeconds"] == 110
    logship = by_name(pod["spec"]["initContainers"], "logship")
    assert {"name": "LOGSHIP_DRAIN_TIMEOUT", "value": "1m30s"} in logship["env"]
    assert inject(text, "--remove") == source(name)


def test_the_records_annotation_lists_what_was_added() -> None:
    text = inject(
        source("cronjob-report.yaml"),
        "--wait",
        "tcp://db:5432",
        "--ship",
        "/var/log/report/*.log",
        "--es",
        "http://es:9200",
    )
    template = templates(text)[0][1]
    record = json.loads(template["metadata"]["annotations"][ANNOTATION])
    assert record == {
        "version": __version__,
        "initContainers": ["wait-for-db", "logship"],
        "volumes": ["pod-agents-logs", "pod-agents-podinfo"],
        "volumeMounts": {"report": ["pod-agents-logs"]},
        "spec": {
            "shareProcessNamespace": [None, True],
            "terminationGracePeriodSeconds": [None, 45],
        },
        "created": [
            "spec.volumes",
            "spec.containers.report.volumeMounts",
            "spec.initContainers",
            "metadata.annotations",
        ],
    }


def test_wait_only_adds_init_containers_and_nothing_for_logship() -> None:
    name = "deployment-shop.yaml"
    _, template = templates(inject(source(name), "--wait", "tcp://db:5432"))[0]
    spec = template["spec"]
    assert [c["name"] for c in spec["initContainers"]] == ["wait-for-db"]
    assert spec["terminationGracePeriodSeconds"] == 30 and "shareProcessNamespace" not in spec
    assert [v["name"] for v in spec["volumes"]] == [
        "shop-logs",
        "nginx-logs",
        "nginx-cache",
        "config",
    ]


def test_a_wait_secret_is_mounted_only_where_a_target_reads_it() -> None:
    """--wait-secret: one volume per Secret with the keys the targets read, mounted
    read-only at /etc/waitfor/NAME in the waitfor containers that read it, no other."""
    args = [
        "--wait", "redis://cache:6379#password-file=/etc/waitfor/cache-auth/password",
        "--wait", "amqp://mq:5672#password-file=/etc/waitfor/mq-auth/pw",
        "--wait", "https://api:8443/ready#password-file=/etc/waitfor/mq-auth/api-token",
        "--wait", "tcp://db:5432",
        "--wait-secret", "cache-auth", "--wait-secret", "mq-auth",
        *SHIP, "--es-secret", "es-credentials",
    ]  # fmt: skip
    once = inject(DEPLOYMENT, *args)
    _, template = templates(once)[0]
    spec = template["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["pod-agents-wait-cache-auth"]["secret"] == {
        "secretName": "cache-auth", "items": [{"key": "password", "path": "password"}]}  # fmt: skip
    assert volumes["pod-agents-wait-mq-auth"]["secret"] == {
        "secretName": "mq-auth",
        "items": [{"key": "pw", "path": "pw"}, {"key": "api-token", "path": "api-token"}],
    }
    mounts = {c["name"]: c.get("volumeMounts", []) for c in spec["initContainers"]}
    assert mounts["wait-for-cache"] == [{"name": "pod-agents-wait-cache-auth",
                                         "mountPath": "/etc/waitfor/cache-auth",
                                         "readOnly": True}]  # fmt: skip
    assert [m["mountPath"] for m in mounts["wait-for-mq"]] == ["/etc/waitfor/mq-auth"]
    assert [m["mountPath"] for m in mounts["wait-for-api"]] == ["/etc/waitfor/mq-auth"]
    assert mounts["wait-for-db"] == []
    assert not any("/etc/waitfor" in m["mountPath"] for m in mounts["logship"])
    assert inject(once, *args) == once
    assert inject(once, "--remove") == DEPLOYMENT


def test_pass_through_options_reach_both_programs() -> None:
    text = inject(
        source("cronjob-report.yaml"),
        "--wait",
        "tcp://db:5432",
        "--waitfor-arg=--timeout=2m",
        "--waitfor-arg=--consecutive=2",
        "--ship",
        "/var/log/report/*.log",
        "--es",
        "http://es:9200",
        "--logship-arg=--batch-docs=500",
        "--logship-arg=--start-at=end",
    )
    init = templates(text)[0][1]["spec"]["initContainers"]
    assert init[0]["args"] == ["tcp://db:5432", "--timeout=2m", "--consecutive=2"]
    assert init[1]["args"][-2:] == ["--batch-docs=500", "--start-at=end"]


@pytest.mark.parametrize(
    ("auth", "variable", "key"),
    [
        ("basic", "LOGSHIP_PASSWORD_FILE", "password"),
        ("api-key", "LOGSHIP_API_KEY_FILE", "api-key"),
        ("bearer", "LOGSHIP_BEARER_TOKEN_FILE", "token"),
    ],
)
def test_each_auth_mode_reads_its_key_from_the_secret_as_a_file(
    auth: str, variable: str, key: str
) -> None:
    text = inject(
        source("cronjob-report.yaml"),
        "--ship",
        "/var/log/report/*.log",
        "--es",
        "http://es:9200",
        "--es-secret",
        "es",
        "--es-auth",
        auth,
    )
    spec = templates(text)[0][1]["spec"]
    env = {e["name"]: e for e in spec["initContainers"][0]["env"]}
    assert env[variable]["value"] == f"/etc/logship/elasticsearch/{key}"
    assert ("LOGSHIP_USERNAME" in env) == (auth == "basic")
    secret = next(v for v in spec["volumes"] if "secret" in v)["secret"]
    assert secret == {"secretName": "es", "items": [{"key": key, "path": key}]}


def test_without_a_secret_no_credential_is_set() -> None:
    text = inject(
        source("cronjob-report.yaml"), "--ship", "/var/log/report/*.log", "--es", "http://es:9200"
    )
    spec = templates(text)[0][1]["spec"]
    logship = spec["initContainers"][0]
    assert not [
        e
        for e in logship["env"]
        if e["name"].startswith("LOGSHIP_") and e["name"] != "LOGSHIP_DRAIN_TIMEOUT"
    ]
    assert not any("secret" in v for v in spec["volumes"])


def test_an_older_kubernetes_gets_a_colocated_sidecar_and_a_note() -> None:
    code, out, err = run(
        "--kube-version",
        "1.28",
        "--ship",
        "/var/log/shop/*.log",
        "--es",
        "http://es:9200",
        "--container",
        "shop",
        stdin=source("deployment-shop.yaml"),
    )
    assert code == 0
    spec = templates(out)[0][1]["spec"]
    assert "initContainers" not in spec
    assert [c["name"] for c in spec["containers"]] == ["shop", "logship", "nginx", "metrics"]
    assert "pod-agents inject: note: --kube-version 1.28: native sidecars need 1.29" in err


def test_the_first_of_several_containers_is_chosen_and_said() -> None:
    code, out, err = run(
        "--ship",
        "/var/log/shop/*.log",
        "--es",
        "http://es:9200",
        stdin=source("deployment-shop.yaml"),
    )
    assert code == 0
    logship = by_name(templates(out)[0][1]["spec"]["initContainers"], "logship")
    assert {"name": "CONTAINER_NAME", "value": "shop"} in logship["env"]
    assert err == (
        "pod-agents inject: note: <stdin>: document #1 Deployment/shop: --container "
        "not given: logship ships the logs of 'shop', the first of shop, nginx, "
        "metrics\n"
    )


def test_a_port_taken_by_the_app_moves_logship_to_the_next() -> None:
    text = inject(source("list.yaml"), "--ship", "/var/log/agent/*.log", "--es", "http://es:9200")
    api = templates(text)[0][1]["spec"]
    logship = by_name(api["initContainers"], "logship")
    assert logship["ports"] == [{"name": "logship-http", "containerPort": 8082}]
    assert "--http-port=8082" in logship["args"]


def test_names_already_taken_get_a_suffix() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {
            "containers": [
                {"name": "logship", "image": "x"},
                {"name": "wait-for-db", "image": "y"},
            ],
            "volumes": [{"name": "pod-agents-podinfo", "emptyDir": {}}],
        },
    }
    text = inject(
        yaml.safe_dump(pod),
        "--wait",
        "tcp://db:1",
        "--wait",
        "tcp://db:2",
        "--ship",
        "/var/log/x/*.log",
        "--es",
        "http://es:9200",
        "--container",
        "logship",
    )
    spec = templates(text)[0][1]["spec"]
    assert [c["name"] for c in spec["initContainers"]] == [
        "wait-for-db-2",
        "wait-for-db-3",
        "logship-2",
    ]
    assert [v["name"] for v in spec["volumes"]][:2] == ["pod-agents-logs", "pod-agents-podinfo-2"]


def test_no_share_process_namespace_leaves_it_alone() -> None:
    pod = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  shareProcessNamespace: "
        "false\n  containers: [{name: a, image: a}]\n"
    )
    text = inject(
        pod, "--ship", "/var/log/a/*.log", "--es", "http://es:9200", "--no-share-process-namespace"
    )
    assert templates(text)[0][1]["spec"]["shareProcessNamespace"] is False


def test_the_default_container_annotation_chooses_the_app() -> None:
    doc = yaml.safe_load(source("deployment-shop.yaml").split("---")[0])
    doc["spec"]["template"]["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/default-container": "nginx"
    }
    code, out, err = run(
        "--ship", "/var/log/nginx/*.log", "--es", "http://es:9200", stdin=yaml.safe_dump(doc)
    )
    assert code == 0 and err == ""
    logship = by_name(templates(out)[0][1]["spec"]["initContainers"], "logship")
    assert {"name": "CONTAINER_NAME", "value": "nginx"} in logship["env"]
    assert logship["volumeMounts"][0] == {"name": "nginx-logs", "mountPath": "/var/log/nginx"}


# --- what is not ours stays as written -------------------------------------------------


def subsequence(needles: list[str], haystack: list[str]) -> list[str]:
    """The needles not found, in order, in haystack: [] when all are."""
    it = iter(haystack)
    return [n for n in needles if not any(n == h for h in it)]


@pytest.mark.parametrize(("name", "mode"), CASES)
def test_every_line_not_ours_is_kept_in_order(name: str, mode: str) -> None:
    """Comments, key order, quotes and flow styles: every line of the input is in the
    output, in the same order, except the grace period inject raised."""
    original = source(name).splitlines()
    out = inject(source(name), *flags(name, mode)).splitlines()
    kept = [line for line in original if "terminationGracePeriodSeconds: 30" not in line]
    assert subsequence(kept, out) == []
    assert len(out) > len(original)


@pytest.mark.parametrize("mode", MODES)
def test_comments_that_end_a_list_or_mapping_stay_at_its_end(mode: str) -> None:
    """Nothing is added after the last entry of a list or mapping, where it would come
    after the comments that close it."""
    name = "pod-comments.yaml"
    out = inject(source(name), *flags(name, mode))
    assert out.endswith(
        "      # end of data\n  # end of spec\n# end of the document\n\n# the last line\n"
    )
    assert "        # end of mounts\n      securityContext:" in out
    assert "    # end of labels\nspec:" in out
    assert "        # end of the worker\n    # end of containers\n  # before volumes\n" in out


def test_a_document_that_is_not_a_workload_passes_through_byte_for_byte() -> None:
    name = "deployment-shop.yaml"
    text = source(name)
    rest = text[text.index("---\n# The Service") :]  # a Service, a ConfigMap written loosely
    out = inject(text, *flags(name, "native"))
    assert out.endswith(rest)
    assert "metadata: { name: shop-config,  namespace: shop }\n" in out


def test_remove_on_what_was_never_injected_changes_nothing() -> None:
    text = source("list.yaml")
    code, out, _ = run("--remove", stdin=text)
    assert code == 0 and out == text


# --- idempotent; --remove --------------------------------------------------------------


@pytest.mark.parametrize(("name", "mode"), CASES)
def test_injecting_twice_is_injecting_once(name: str, mode: str) -> None:
    once = inject(source(name), *flags(name, mode))
    assert inject(once, *flags(name, mode)) == once


@pytest.mark.parametrize(("name", "mode"), CASES)
def test_remove_restores_the_input_byte_for_byte(name: str, mode: str) -> None:
    injected = inject(source(name), *flags(name, mode))
    assert injected != source(name)
    assert inject(injected, "--remove") == source(name)


@pytest.mark.parametrize("name", list(SHIPS))
def test_injecting_other_flags_replaces_what_was_there(name: str) -> None:
    first = inject(
        source(name),
        "--wait",
        "tcp://a:1",
        "--ship",
        "/var/log/zz/*.log",
        "--es",
        "http://es:9200",
        "--drain-timeout",
        "50s",
    )
    second = [
        "--wait",
        "dns://svc",
        "--ship",
        "/var/log/other/*.log",
        "--es",
        "http://b:9200",
        "--es-secret",
        "s",
        "--es-auth",
        "bearer",
    ]
    if name != "list.yaml":  # another app container than the first, where there is one
        second += ["--container", templates(source(name))[0][1]["spec"]["containers"][-1]["name"]]
    again = inject(first, *second)
    assert again == inject(source(name), *second)
    spec = templates(again)[0][1]["spec"]
    assert sum(c["name"].startswith("wait-for") for c in spec["initContainers"]) == 1
    assert sum(v["name"] == "pod-agents-podinfo" for v in spec["volumes"]) == 1


def test_remove_leaves_a_value_someone_changed_since() -> None:
    name = "cronjob-report.yaml"
    injected = inject(source(name), "--ship", "/var/log/report/*.log", "--es", "http://es:9200")
    edited = injected.replace(
        "terminationGracePeriodSeconds: 45", "terminationGracePeriodSeconds: 70"
    )
    removed = inject(edited, "--remove")
    assert "terminationGracePeriodSeconds: 70" in removed
    assert "logship" not in removed and "pod-agents" not in removed


def test_remove_refuses_a_record_it_cannot_read() -> None:
    injected = inject(source("cronjob-report.yaml"), "--wait", "tcp://db:1")
    broken = injected.replace("pod-agents.io/injected: '{", "pod-agents.io/injected: '[{")
    code, out, err = run("--remove", stdin=broken)
    assert code == 2 and out == ""
    assert err.startswith(
        "pod-agents inject: <stdin>: document #1 CronJob/nightly-report: "
        "spec.jobTemplate.spec.template.metadata.annotations."
        "pod-agents.io/injected: not inject's record"
    )


# --- refusals --------------------------------------------------------------------------

DEPLOYMENT = source("deployment-shop.yaml")
SHIP = ["--ship", "/var/log/shop/*.log", "--es", "http://es:9200", "--container", "shop"]
# fmt: off
REFUSALS = [
    ("not-yaml", ["--wait", "tcp://db:1"], "apiVersion: v1\nkind: Pod\nspec: [\n  a: b\n",
     "<stdin>: document #1: line 5, column 1: not YAML: expected ',' or ']', but got "
     "'<stream end>'"),
    ("not-yaml-second-document", ["--wait", "tcp://db:1"],
     "kind: ConfigMap\n---\nkind: Pod\n  bad: indent\n",
     "<stdin>: document #2: line 4, column 6: not YAML: mapping values are not allowed here"),
    ("no-workload", ["--wait", "tcp://db:1"],
     "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
     "<stdin>: no workload in the input (Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, "
     "Job, CronJob): found ConfigMap/c"),
    ("empty-input", ["--wait", "tcp://db:1"], "", "<stdin>: no workload in the input"),
    ("relative-glob", ["--ship", "logs/*.log", "--es", "http://es:9200"], DEPLOYMENT,
     "--ship: 'logs/*.log' is not absolute"),
    ("dotdot-glob", ["--ship", "/var/log/../x/*.log", "--es", "http://es:9200"], DEPLOYMENT,
     "--ship: '/var/log/../x/*.log': write it plainly"),
    ("glob-in-root", ["--ship", "/*.log", "--es", "http://es:9200"], DEPLOYMENT,
     "--ship: '/*.log': the files must be in a directory below /"),
    ("no-such-container", [*SHIP[:4], "--container", "web"], DEPLOYMENT,
     "<stdin>: document #1 Deployment/shop: spec.template.spec.containers: --container 'web': "
     "no such container (there are: shop, nginx, metrics)"),
    ("unknown-scheme", ["--wait", "foo://db:1"], DEPLOYMENT,
     "--wait: target 'foo://db:1': unknown scheme 'foo'"),
    ("target-without-port", ["--wait", "tcp://db"], DEPLOYMENT,
     "--wait: target 'tcp://db': missing port"),
    ("password-in-target", ["--wait", "redis://:hunter2@cache:6379"], DEPLOYMENT,
     "--wait: target 'redis://:***@cache:6379': a password in the target"),
    ("ship-without-es", ["--ship", "/var/log/shop/*.log"], DEPLOYMENT,
     "--es: required with --ship"),
    ("es-without-ship", ["--wait", "tcp://db:1", "--es", "http://es:9200"], DEPLOYMENT,
     "--es: options for logship, but no --ship GLOB"),
    ("password-in-es", ["--ship", "/var/log/shop/*.log", "--es", "https://u:hunter2@es:9200"],
     DEPLOYMENT, "--es: 'https://u:***@es:9200' has a password in it"),
    ("es-not-http", ["--ship", "/var/log/shop/*.log", "--es", "es:9200"], DEPLOYMENT,
     "--es: 'es:9200' is not an http(s)://HOST[:PORT] URL"),
    ("auth-without-secret", [*SHIP, "--es-auth", "bearer"], DEPLOYMENT,
     "--es-auth: needs --es-secret"),
    ("bad-secret-name", [*SHIP, "--es-secret", "Not_A_Name"], DEPLOYMENT,
     "--es-secret: 'Not_A_Name' is not a Secret name"),
    ("colocated-cronjob",
     ["--ship", "/var/log/r/*.log", "--es", "http://es:9200", "--sidecar", "colocated"],
     source("cronjob-report.yaml"),
     "<stdin>: document #1 CronJob/nightly-report: spec.jobTemplate.spec.template.spec."
     "containers: a co-located logship would keep the CronJob's pod running"),
    ("share-process-namespace-false", ["--ship", "/var/log/a/*.log", "--es", "http://es:9200"],
     "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  shareProcessNamespace: false\n"
     "  containers: [{name: a, image: a}]\n",
     "<stdin>: document #1 Pod/p: spec.shareProcessNamespace: false: logship's drain watches"),
    ("read-only-mount",
     ["--ship", "/etc/shop/*.log", "--es", "http://es:9200", "--container", "shop"], DEPLOYMENT,
     "spec.template.spec.containers[0].volumeMounts: 'config' at /etc/shop covers /etc/shop "
     "but is mounted read-only"),
    ("configmap-over-the-logs", ["--ship", "/var/log/a/*.log", "--es", "http://es:9200"],
     "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: a\n"
     "    image: a\n    volumeMounts: [{name: c, mountPath: /var/log}]\n"
     "  volumes: [{name: c, configMap: {name: c}}]\n",
     "<stdin>: document #1 Pod/p: spec.containers[0].volumeMounts: 'c' at /var/log covers "
     "/var/log/a but is a configMap volume, which is read-only"),
    ("managed-logship-option", [*SHIP, "--logship-arg=--http-port=9000"], DEPLOYMENT,
     "--logship-arg: --http-port is set by inject"),
    ("abbreviated-managed-option", [*SHIP, "--logship-arg=--drain-t=5s"], DEPLOYMENT,
     "--logship-arg: --drain-timeout is set by inject"),
    ("logship-refuses", [*SHIP, "--logship-arg=--batch-docs=0"], DEPLOYMENT,
     "--logship-arg: logship refuses its options: --batch-docs: must be at least 1"),
    ("inline-logship-secret", [*SHIP, "--logship-arg=--api-key=abc"], DEPLOYMENT,
     "--logship-arg: --api-key: credentials only by reference"),
    ("logship-config-file", [*SHIP, "--logship-arg=--config=/etc/l.yaml"], DEPLOYMENT,
     "--logship-arg: '--config=/etc/l.yaml': a file inside the container"),
    ("logship-help", [*SHIP, "--logship-arg=--help"], DEPLOYMENT,
     "--logship-arg: '--help' would print and exit"),
    ("waitfor-refuses", ["--wait", "tcp://db:1", "--waitfor-arg=--timeout=soon"], DEPLOYMENT,
     "--waitfor-arg: waitfor refuses ['--timeout=soon']: --timeout: invalid duration 'soon'"),
    ("waitfor-arg-is-a-target", ["--wait", "tcp://db:1", "--waitfor-arg=tcp://x:2"],
     DEPLOYMENT, "--waitfor-arg: 'tcp://x:2' is not a waitfor option"),
    ("waitfor-arg-without-wait", [*SHIP, "--waitfor-arg=--timeout=1m"], DEPLOYMENT,
     "--waitfor-arg: options for waitfor, but no --wait TARGET"),
    ("password-file-not-in-a-secret", ["--wait", "redis://cache:6379#password-file=/run/pw"],
     DEPLOYMENT, "--wait: target 'redis://cache:6379#password-file=***': password-file /run/pw "
     "is in no Secret inject mounts: add --wait-secret SECRET and give "
     "#password-file=/etc/waitfor/SECRET/KEY"),
    ("password-file-in-another-secret",
     ["--wait", "redis://c:6379#password-file=/etc/waitfor/b/pw", "--wait-secret", "a"],
     DEPLOYMENT, "password-file /etc/waitfor/b/pw is in no Secret inject mounts"),
    ("password-file-below-a-key",
     ["--wait", "redis://c:6379#password-file=/etc/waitfor/a/x/pw", "--wait-secret", "a"],
     DEPLOYMENT, "password-file /etc/waitfor/a/x/pw is in no Secret inject mounts"),
    ("wait-secret-nobody-reads", ["--wait", "tcp://db:1", "--wait-secret", "cache-auth"],
     DEPLOYMENT, "--wait-secret: 'cache-auth': no --wait target reads it: give the target "
     "#password-file=/etc/waitfor/cache-auth/KEY"),
    ("bad-wait-secret-name", ["--wait", "tcp://db:1", "--wait-secret", "Cache_Auth"],
     DEPLOYMENT, "--wait-secret: 'Cache_Auth' is not a Secret name"),
    ("remove-with-wait-secret", ["--remove", "--wait-secret", "a"], DEPLOYMENT,
     "--remove: takes out what inject added: not with --wait-secret"),
    ("remove-with-wait", ["--remove", "--wait", "tcp://db:1"], DEPLOYMENT,
     "--remove: takes out what inject added: not with --wait"),
    ("nothing-to-do", [], DEPLOYMENT,
     "nothing to inject: give --wait TARGET and/or --ship GLOB (or --remove)"),
    ("bad-kube-version", ["--wait", "tcp://db:1", "--kube-version", "latest"], DEPLOYMENT,
     "--kube-version: expected MAJOR.MINOR such as 1.29, got 'latest'"),
    ("bad-drain-timeout", [*SHIP, "--drain-timeout", "forever"], DEPLOYMENT,
     "--drain-timeout: invalid duration 'forever'"),
    ("workload-without-template", ["--wait", "tcp://db:1"],
     "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {replicas: 1}\n",
     "<stdin>: document #1 Deployment/d: spec.template: missing: not a workload"),
    ("no-containers", ["--wait", "tcp://db:1"],
     "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: []}\n",
     "<stdin>: document #1 Pod/p: spec.containers: no containers"),
    ("null-volumes", ["--ship", "/var/log/a/*.log", "--es", "http://es:9200"],
     "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: a, image: a}]"
     "\n  volumes:\n",
     "<stdin>: document #1 Pod/p: spec.volumes: null: expected a list"),
    ("metadata-not-a-mapping", ["--wait", "tcp://db:1"],
     "apiVersion: v1\nkind: Pod\nmetadata: 3\nspec: {containers: [{name: a, image: a}]}\n",
     "<stdin>: document #1 Pod/?: metadata: int: expected a mapping"),
    ("list-item",
     ["--ship", "/var/log/x/*.log", "--es", "http://es:9200", "--container", "api"],
     source("list.yaml"),
     "<stdin>: document #1 List items[1] DaemonSet/node-agent: spec.template.spec.containers: "
     "--container 'api': no such container (there are: agent)"),
]
# fmt: on


@pytest.mark.parametrize(
    ("args", "text", "message"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS]
)
def test_bad_input_exits_2_with_one_line_naming_it(
    args: list[str], text: str, message: str
) -> None:
    code, out, err = run(*args, stdin=text)
    assert code == 2
    assert out == ""  # nothing half-written into a pipe to kubectl apply
    lines = [line for line in err.splitlines() if ": note: " not in line]
    assert len(lines) == 1 and lines[0].startswith("pod-agents inject: "), err
    assert message in lines[0], lines[0]
    assert "Traceback" not in err


def test_an_unknown_flag_is_argparses_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run("--wait", "tcp://db:1", "--frobnicate")
    assert code == 2 and out == ""
    assert "unrecognized arguments: --frobnicate" in capsys.readouterr().err


def test_help_documents_every_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "inject" in capsys.readouterr().out
    assert run("--help")[0] == 0
    text = capsys.readouterr().out
    for flag in (
        "--wait",
        "--waitfor-arg",
        "--waitfor-image",
        "--wait-secret",
        "/etc/waitfor/SECRET/KEY",
        "--ship",
        "--container",
        "--es",
        "--es-secret",
        "--es-auth",
        "--sidecar",
        "--kube-version",
        "--drain-timeout",
        "--logship-arg",
        "--logship-image",
        "--no-share-process-namespace",
        "--remove",
        ANNOTATION,
        "restartPolicy: Always",
    ):
        assert flag in text, flag


# --- inputs ----------------------------------------------------------------------------


def test_stdin_as_dash_and_as_no_file() -> None:
    text = source("cronjob-report.yaml")
    assert run("-", "--wait", "tcp://db:1", stdin=text) == run("--wait", "tcp://db:1", stdin=text)
    assert "wait-for-db" in run("--wait", "tcp://db:1", stdin=text)[1]


def test_files_are_read_in_the_order_given(tmp_path: Path) -> None:
    code, out, err = run(
        str(FIXTURES / "cronjob-report.yaml"),
        str(FIXTURES / "pod-shared-pid.yaml"),
        "--wait",
        "tcp://db:1",
    )
    assert code == 0, err
    assert [k for k, _ in templates(out)] == ["CronJob", "Pod"]
    assert "\n---\n# A bare Pod" in out  # the second file opens with a separator


def test_a_directory_is_its_yaml_files_sorted(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text(source("pod-shared-pid.yaml"))
    (tmp_path / "a.yml").write_text(source("cronjob-report.yaml"))
    (tmp_path / "notes.txt").write_text("not: yaml: [")
    code, out, err = run(str(tmp_path), "--wait", "tcp://db:1")
    assert code == 0, err
    assert [k for k, _ in templates(out)] == ["CronJob", "Pod"]


def test_an_empty_directory_and_a_missing_file_are_refused(tmp_path: Path) -> None:
    code, _, err = run(str(tmp_path), "--wait", "tcp://db:1")
    assert code == 2 and "a directory with no *.yaml or *.yml file in it" in err
    code, _, err = run(str(tmp_path / "nope.yaml"), "--wait", "tcp://db:1")
    assert code == 2 and err == (
        f"pod-agents inject: {tmp_path / 'nope.yaml'}: cannot read: No such file or directory\n"
    )


def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_bytes(b"kind: Pod\nname: \xff\n")
    code, _, err = run(str(tmp_path / "x.yaml"), "--wait", "tcp://db:1")
    assert code == 2 and err.endswith("x.yaml: not UTF-8 text\n")


def test_separators_and_comments_between_documents_are_kept() -> None:
    text = (
        "# a stream\n---\n# first\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
        "--- # the pod\n" + source("pod-shared-pid.yaml") + "...\n---\n\n"
    )
    out = inject(text, "--wait", "tcp://db:1")
    assert out.startswith(
        "# a stream\n---\n# first\napiVersion: v1\nkind: ConfigMap\n"
        "metadata: {name: c}\n--- # the pod\n# A bare Pod"
    )
    assert out.endswith("...\n---\n\n")
    assert inject(out, "--remove") == text


def test_a_document_opened_on_its_separator_line_stays_one() -> None:
    text = "kind: ConfigMap\n--- !!map\n" + source("cronjob-report.yaml")
    out = inject(text, "--wait", "tcp://db:1")
    assert [k for k, _ in templates(out)] == ["CronJob"]
    assert inject(out, "--remove").startswith("kind: ConfigMap\n---")


# --- the pure pieces -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("glob", "directory"),
    [
        ("/var/log/shop/*.log", "/var/log/shop"),
        ("/var/log/shop/app.log", "/var/log/shop"),
        ("/var/log/**/app.log", "/var/log"),
        ("/var/log/app-*/x.log", "/var/log"),
        ("/data/[ab]/x.log", "/data"),
        ("/x.log", "/"),
    ],
)
def test_log_dir(glob: str, directory: str) -> None:
    assert log_dir(glob) == directory


@pytest.mark.parametrize(
    ("text", "indent"),
    [
        ("a:\n- x\n", (2, 2, 0)),  # kubectl
        ("a:\n  - x\n", (2, 4, 2)),
        ("a:\n    - x\n", (2, 6, 4)),
        ("a:\n  b:\n  - x\n", (2, 2, 0)),
        ("a:\n    b: 1\nc:\n  -   x\n", (4, 6, 2)),
        ("a: 1\n", (2, 4, 2)),
        ("items:\n- metadata:\n    name: x\n  spec:\n    containers:\n    - name: a\n", (2, 2, 0)),
        ("spec:\n  # a comment\n  containers:\n    - name: x\n", (2, 4, 2)),
    ],
)
def test_guess_indent(text: str, indent: tuple[int, int, int]) -> None:
    assert guess_indent(text) == indent


def test_dns_labels_and_unique_names() -> None:
    assert dns_label("DB.Shop.svc.cluster.local") == "db-shop-svc-cluster-local"
    assert dns_label("--a__b--") == "a-b"
    assert len(dns_label("x" * 100)) == 63
    assert unique("logship", {"logship", "logship-2"}) == "logship-3"
    assert unique("a" * 63, {"a" * 63}) == "a" * 61 + "-2"


@pytest.mark.parametrize(
    ("target", "name"),
    [
        ("postgres://db:5432", "wait-for-db"),
        ("http://API.example.com:8080/healthz#status=200", "wait-for-api-example-com"),
        ("tcp://[::1]:80", "wait-for-1"),
        ("dns://myservice", "wait-for-myservice"),
        ("file:///etc/ready/flag", "wait-for-flag"),
        ("exec:pg_isready -h db", "wait-for-pg-isready"),
        ("https://x:443/#password-file=/nowhere/pw", "wait-for-x"),
        ("db:5432", "wait-for-db"),
        ("k8s://job/migrate", "wait-for-migrate"),
        ("k8s://pods?selector=app=db&min=2", "wait-for-pods"),
        ("grpc://orders:50051#service=shop.Orders", "wait-for-orders"),
    ],
)
def test_waitfor_names(target: str, name: str) -> None:
    assert waitfor_name(target) == name


def test_split_and_join_keep_every_byte() -> None:
    text = "# lead\n---\na: 1\n--- # c\nb: 2\n---\n"
    documents = split("x", text)
    assert [d.separator for d in documents] == ["", "---\n", "--- # c\n", "---\n"]
    assert "".join(d.render() for d in documents) == text
    assert join([("a", "a: 1"), ("b", "b: 2\n"), ("c", "---\nc: 3\n")]) == (
        "a: 1\n---\nb: 2\n---\nc: 3\n"
    )


def test_the_record_round_trips() -> None:
    record = Record(init_containers=["w"], spec={"x": [None, True]}, created=["spec.volumes"])
    again = Record.loads(record.dumps())
    assert again == record
    assert json.loads(record.dumps())["version"] == __version__
    assert " " not in record.dumps()  # never folded by the YAML writer
