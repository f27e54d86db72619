"""The containers and volumes inject adds, as plain data, and the check that each is a
command line its own program accepts (waitfor's and logship's parsers, not a copy of
their rules).

Pure: these build values from `Options` and what a pod already has; `pod.py` puts them in.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from agents._options import OptionError
from agents.inject.errors import InjectError
from agents.inject.options import WAIT_SECRET_DIR, Options, quietly

LOGS_VOLUME = "pod-agents-logs"
PODINFO_VOLUME = "pod-agents-podinfo"
SECRET_VOLUME = "pod-agents-es-credentials"  # noqa: S105 (a volume's name)
WAIT_SECRET_VOLUME = "pod-agents-wait"  # noqa: S105 (+ the Secret's name: a volume)
PODINFO_DIR = "/etc/podinfo"  # logship's default --labels-file is /etc/podinfo/labels
SECRET_DIR = "/etc/logship/elasticsearch"  # noqa: S105 (where the Secret is mounted)
LOGSHIP = "logship"
PORT_NAME = "logship-http"
FIRST_PORT = 8081
DRAIN_MARGIN = 20  # seconds of grace beyond logship's drain: the app's own stop, and slack
DOWNWARD = (
    ("POD_NAME", "metadata.name"),
    ("POD_NAMESPACE", "metadata.namespace"),
    ("POD_UID", "metadata.uid"),
    ("POD_IP", "status.podIP"),
    ("NODE_NAME", "spec.nodeName"),
)
# --es-auth → (Secret key → file name under SECRET_DIR, the variable naming that file)
AUTH: dict[str, tuple[str, str]] = {
    "basic": ("password", "LOGSHIP_PASSWORD_FILE"),
    "api-key": ("api-key", "LOGSHIP_API_KEY_FILE"),
    "bearer": ("token", "LOGSHIP_BEARER_TOKEN_FILE"),
}


def restricted() -> dict[str, Any]:
    """The restricted Pod Security profile, set on each of our containers so that it holds
    whatever the pod's own securityContext says (a fresh dict each time: a shared one
    would be written out as a YAML anchor)."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def resources(cpu: tuple[str, str], memory: tuple[str, str]) -> dict[str, Any]:
    return {
        "requests": {"cpu": cpu[0], "memory": memory[0]},
        "limits": {"cpu": cpu[1], "memory": memory[1]},
    }


def dns_label(text: str, limit: int = 63) -> str:
    """`text` as a DNS-1123 label (a container's name): lower case, [a-z0-9-], at most
    `limit` characters, starting and ending with a letter or digit."""
    label = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return label[:limit].rstrip("-")


def unique(base: str, taken: set[str]) -> str:
    """`base`, or `base-2`, `base-3`... : the first not in `taken`, each a valid label."""
    name, number = base, 1
    while name in taken:
        number += 1
        suffix = f"-{number}"
        name = base[: 63 - len(suffix)].rstrip("-") + suffix
    return name


def waitfor_name(target: str) -> str:
    """`wait-for-<what>`: the host (`postgres://db:5432` → `wait-for-db`), else the file or
    command the target names."""
    from agents.waitfor.targets import TargetError, parse_target

    try:
        parsed = parse_target(target, read_files=False)
        if parsed.scheme == "k8s":  # k8s://job/migrate → wait-for-migrate
            parsed.host = parsed.path.strip("/") or parsed.host
        what = parsed.host or (Path(parsed.command[0]).name if parsed.command else "")
        what = what or Path(parsed.path).name
    except TargetError:  # not a target waitfor takes (refused before this): the name only
        what = re.sub(r"^[a-z0-9+.-]+://(?:[^@/]*@)?", "", target).split(":")[0].split("/")[0]
    return "wait-for-" + (dns_label(what, 63 - len("wait-for-") - 3) or "target")


def waitfor_container(
    name: str, target: str, options: Options, secret_volume: str | None = None
) -> dict[str, Any]:
    """waitfor for one target; `secret_volume`: the volume of the --wait-secret the
    target's #password-file= reads, mounted where it points."""
    container: dict[str, Any] = {
        "name": name,
        "image": options.waitfor_image,
        "args": [target, *options.waitfor_args],
    }
    found = options.secret_read_by(target)
    if found and secret_volume:
        path = f"{WAIT_SECRET_DIR}/{found[0]}"
        container["volumeMounts"] = [{"name": secret_volume, "mountPath": path, "readOnly": True}]
    container["securityContext"] = restricted()
    container["resources"] = resources(("10m", "200m"), ("48Mi", "96Mi"))
    return container


def wait_secret_volume(name: str, secret: str, keys: list[str]) -> dict[str, Any]:
    """A --wait-secret as files: only the keys the targets read."""
    return {
        "name": name,
        "secret": {"secretName": secret, "items": [{"key": k, "path": k} for k in keys]},
    }


def grace_seconds(options: Options) -> int:
    """A terminationGracePeriodSeconds that lets logship's drain finish before SIGKILL."""
    return math.ceil(options.drain_seconds) + DRAIN_MARGIN


def logship_container(
    *,
    name: str,
    options: Options,
    app: str,
    mounts: list[dict[str, Any]],
    data_dir: str,
    port: int,
    port_name: str,
    native: bool,
    podinfo: str = PODINFO_VOLUME,
    secret: str | None = SECRET_VOLUME,
) -> dict[str, Any]:
    """logship as the sidecar of container `app`: `mounts` are the log volumes it shares
    with the app; `podinfo` and `secret` name the labels and Secret volumes it mounts too."""
    env: list[dict[str, Any]] = []
    volume_mounts = [dict(m) for m in mounts]
    volume_mounts.append({"name": podinfo, "mountPath": PODINFO_DIR, "readOnly": True})
    if options.es_secret and secret:
        key, variable = AUTH[options.es_auth]
        if options.es_auth == "basic":
            env.append(
                {
                    "name": "LOGSHIP_USERNAME",
                    "valueFrom": {"secretKeyRef": {"name": options.es_secret, "key": "username"}},
                }
            )
        env.append({"name": variable, "value": f"{SECRET_DIR}/{key}"})
        volume_mounts.append({"name": secret, "mountPath": SECRET_DIR, "readOnly": True})
    env.append({"name": "LOGSHIP_DRAIN_TIMEOUT", "value": options.drain_timeout})
    env += [
        {"name": variable, "valueFrom": {"fieldRef": {"fieldPath": path}}}
        for variable, path in DOWNWARD
    ]
    env.append({"name": "CONTAINER_NAME", "value": app})
    container: dict[str, Any] = {"name": name, "image": options.logship_image}
    if native:
        container["restartPolicy"] = "Always"
    container |= {
        "args": [
            *(f"--path={glob}" for glob in options.ships),
            *(f"--es={url}" for url in options.es),
            f"--data-dir={data_dir}",
            f"--http-port={port}",
            *options.logship_args,
        ],
        "env": env,
        "ports": [{"name": port_name, "containerPort": port}],
        # Native: a startupProbe, so the app starts only once logship watches its files
        # (no startup line missed). Co-located, nothing can hold the app: a readinessProbe
        # keeps the pod out of Service endpoints while logship is not shipping.
        **(_startup_probe(port_name) if native else _readiness_probe(port_name)),
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": port_name},
            "periodSeconds": 20,
        },
        "volumeMounts": volume_mounts,
        "securityContext": restricted(),
        "resources": resources(("50m", "500m"), ("64Mi", "192Mi")),
    }
    return container


def _startup_probe(port: str) -> dict[str, Any]:
    return {
        "startupProbe": {
            "httpGet": {"path": "/readyz", "port": port},
            "periodSeconds": 1,
            "failureThreshold": 60,
        }
    }


def _readiness_probe(port: str) -> dict[str, Any]:
    return {"readinessProbe": {"httpGet": {"path": "/readyz", "port": port}}}


def logs_volume(name: str) -> dict[str, Any]:
    return {"name": name, "emptyDir": {}}


def podinfo_volume(name: str = PODINFO_VOLUME) -> dict[str, Any]:
    return {
        "name": name,
        "downwardAPI": {
            "items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]
        },
    }


def secret_volume(name: str, options: Options) -> dict[str, Any]:
    """The Secret as files: only the one key the chosen --es-auth reads (the user name of
    basic auth comes as a variable, from the same Secret)."""
    key, _ = AUTH[options.es_auth]
    return {
        "name": name,
        "secret": {"secretName": options.es_secret, "items": [{"key": key, "path": key}]},
    }


def env_of(container: dict[str, Any]) -> dict[str, str]:
    """A container's environment as a program sees it, with `<NAME>` for values the
    kubelet fills in (Downward API, Secrets)."""
    return {
        str(e["name"]): str(e.get("value", f"<{e['name']}>")) for e in container.get("env") or ()
    }


def check_waitfor(container: dict[str, Any]) -> None:
    """The rendered container as waitfor parses its command line, each target too."""
    from agents.waitfor.config import load_config
    from agents.waitfor.targets import parse_target

    try:
        config = quietly(load_config, list(container["args"]), env_of(container))
        for target in config.targets:
            parse_target(target, read_files=False)
    except OptionError as exc:  # a TargetError too
        raise InjectError("--wait", f"waitfor refuses {container['name']}: {exc}") from None


def check_logship(container: dict[str, Any], options: Options, *, data_dir: str, port: int) -> None:
    """The rendered sidecar as logship parses its arguments and environment; and what the
    pod relies on (the probes' port, the drain the grace period covers, the data dir on
    the shared volume) not overridden by a --logship-arg."""
    from agents.logship.config import load_config

    try:
        config = quietly(load_config, list(container["args"]), env_of(container))
    except OptionError as exc:
        raise InjectError("--logship-arg", f"logship refuses its options: {exc}") from None
    managed = (
        (config.paths == options.ships, "--path", "give the globs as --ship"),
        (config.es == options.es, "--es", "give the URLs as inject's --es"),
        (config.data_dir == Path(data_dir), "--data-dir", "inject puts it on the log volume"),
        (config.http_port == port, "--http-port", "inject points the probes at it"),
        (
            config.drain_timeout == options.drain_seconds,
            "--drain-timeout",
            "give it as inject's --drain-timeout, which sets the grace period",
        ),
    )
    for same, flag, why in managed:
        if not same:
            raise InjectError("--logship-arg", f"{flag} is set by inject: {why}")
    if config.password or config.api_key or config.bearer_token:
        raise InjectError("--logship-arg", "credentials only by reference (--es-secret NAME)")
