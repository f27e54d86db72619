"""Injecting into one pod template, and taking it out again.

What inject adds is listed in an annotation on the pod template,
`pod-agents.io/injected`, as compact JSON: the containers, volumes and volume mounts it
added, each pod setting it changed with its value before and after (`[30, 45]`; `null`:
absent), and the keys it created. `remove` takes out exactly that, puts back the
settings still holding inject's value, and deletes the keys it created if they are
empty; inject always removes first, so that injecting again replaces rather than
duplicates.

Order in the pod: the waitfor init containers first, so that the app's own init
containers wait too; then (native) logship, before the app's init containers, so that
it ships their logs as well.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agents import __version__
from agents.inject import render
from agents.inject.documents import Workload
from agents.inject.errors import InjectError
from agents.inject.nodes import delete_named, insert_items, insert_key, to_node
from agents.inject.options import Options, log_dir

ANNOTATION = "pod-agents.io/injected"
DEFAULT_CONTAINER = "kubectl.kubernetes.io/default-container"
READ_ONLY_VOLUMES = ("configMap", "secret", "downwardAPI", "projected")
BATCH = ("Job", "CronJob")


@dataclass
class Record:
    """What inject added to one pod template (the annotation's content)."""

    init_containers: list[str] = field(default_factory=list)
    containers: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    volume_mounts: dict[str, list[str]] = field(default_factory=dict)
    spec: dict[str, list[Any]] = field(default_factory=dict)  # field -> [before, ours]
    annotations: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)  # dotted paths in the template

    KEYS = (
        ("initContainers", "init_containers"),
        ("containers", "containers"),
        ("volumes", "volumes"),
        ("volumeMounts", "volume_mounts"),
        ("spec", "spec"),
        ("annotations", "annotations"),
        ("created", "created"),
    )

    def dumps(self) -> str:
        data: dict[str, Any] = {"version": __version__}
        data |= {key: getattr(self, attr) for key, attr in self.KEYS if getattr(self, attr)}
        return json.dumps(data, separators=(",", ":"), sort_keys=True)

    @classmethod
    def loads(cls, text: str) -> Record:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        for key in ("volumeMounts", "spec"):
            if not isinstance(data.get(key, {}), dict):
                raise ValueError(f"{key} is not an object")
        record = cls(**{attr: data[key] for key, attr in cls.KEYS if key in data})
        lists = [record.init_containers, record.containers, record.volumes,
                 record.annotations, record.created, *record.volume_mounts.values()]  # fmt: skip
        if not (
            all(isinstance(v, list) and all(isinstance(n, str) for n in v) for v in lists)
            and all(isinstance(v, list) and len(v) == 2 for v in record.spec.values())
        ):
            raise ValueError("a field of the wrong type")
        return record


def _containers(spec: Any, key: str, path: str, title: str) -> list[Any]:
    found = spec.get(key)
    if found is None:
        return []
    if not isinstance(found, list) or not all(
        isinstance(c, dict) and isinstance(c.get("name"), str) for c in found
    ):
        raise InjectError(f"{path}.{key}", "expected a list of containers, each with a name", title)
    return found


def _prefix(workload: Workload) -> str:
    return f"{workload.path}." if workload.path else ""


def _missing(mapping: Any, key: str, kind: type, field_: str, title: str) -> bool:
    """Whether `key` is absent (inject may create it); present, it must be a `kind`."""
    if key not in mapping:
        return True
    if not isinstance(mapping[key], kind):
        shown = "null" if mapping[key] is None else type(mapping[key]).__name__
        wanted = "a list" if kind is list else "a mapping"
        raise InjectError(field_, f"{shown}: expected {wanted}", title)
    return False


def remove(workload: Workload) -> bool:
    """Take out what the annotation says inject added. → whether there was any."""
    template = workload.template
    meta = template.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    if not isinstance(annotations, dict) or ANNOTATION not in annotations:
        return False
    where = f"{_prefix(workload)}metadata.annotations.{ANNOTATION}"
    try:
        record = Record.loads(str(annotations[ANNOTATION]))
    except (ValueError, TypeError) as exc:
        raise InjectError(
            where, f"not inject's record ({exc}): take it out by hand", workload.title
        ) from None
    spec = template["spec"]
    for key, names in (
        ("initContainers", record.init_containers),
        ("containers", record.containers),
    ):
        if names and isinstance(spec.get(key), list):
            delete_named(spec[key], set(names))
    if record.volumes and isinstance(spec.get("volumes"), list):
        delete_named(spec["volumes"], set(record.volumes))
    for container in spec.get("containers") or ():
        names = record.volume_mounts.get(container.get("name"), ())
        if names and isinstance(container.get("volumeMounts"), list):
            delete_named(container["volumeMounts"], set(names))
    for key, (before, ours) in record.spec.items():
        if key in spec and spec[key] == ours:  # changed since by someone else: theirs now
            if before is None:
                del spec[key]
            else:
                spec[key] = before
    for key in (*record.annotations, ANNOTATION):
        annotations.pop(key, None)
    for path in sorted(record.created, key=lambda p: -p.count(".")):
        parent, key = _resolve(template, path)
        if isinstance(parent, dict) and key in parent and not parent[key]:
            del parent[key]
    return True


def _resolve(template: Any, path: str) -> tuple[Any, str]:
    """`spec.containers.shop.volumeMounts` → (the container named shop, "volumeMounts")."""
    *parents, key = path.split(".")
    node = template
    for part in parents:
        if isinstance(node, list):
            node = next((c for c in node if isinstance(c, dict) and c.get("name") == part), None)
        elif isinstance(node, dict):
            node = node.get(part)
        if node is None:
            return None, key
    return node, key


@dataclass
class _Pod:
    """One template being injected: what it has, what inject adds, and the record."""

    workload: Workload
    options: Options
    record: Record = field(default_factory=Record)

    @property
    def spec(self) -> Any:
        return self.workload.template["spec"]

    @property
    def path(self) -> str:
        return f"{_prefix(self.workload)}spec"

    def fail(self, field_: str, problem: str) -> InjectError:
        return InjectError(
            f"{self.path}.{field_}" if field_ else self.path, problem, self.workload.title
        )

    def names(self) -> set[str]:
        return {
            c["name"]
            for key in ("initContainers", "containers", "ephemeralContainers")
            for c in _containers(self.spec, key, self.path, self.workload.title)
        }

    def list_for(self, key: str) -> Any:
        """The sequence at spec[key], created (and recorded) if missing: initContainers
        before the containers, volumes after them."""
        if _missing(self.spec, key, list, f"{self.path}.{key}", self.workload.title):
            if key == "volumes":
                insert_key(self.spec, key, [], after=("containers",), before=("containers",))
            else:
                insert_key(self.spec, key, [], before=("containers",))
            self.record.created.append(f"spec.{key}")
        return self.spec[key]

    def set(self, key: str, value: Any) -> None:
        """A pod setting, with its value before recorded for `remove`."""
        before = self.spec.get(key)
        if key in self.spec:
            self.spec[key] = value
        else:
            insert_key(self.spec, key, value, before=("initContainers", "containers"))
        self.record.spec[key] = [before, value]


def inject(workload: Workload, options: Options, note: Callable[[str], None]) -> None:
    """Add what `options` ask for to `workload`'s pod template, replacing what an earlier
    inject added."""
    remove(workload)
    pod = _Pod(workload, options)
    spec = pod.spec
    containers = _containers(spec, "containers", pod.path, workload.title)
    if not containers:
        raise pod.fail("containers", "no containers: nothing to inject beside")
    taken = pod.names()
    secret_volumes = _wait_secret_volumes(pod)
    init: list[dict[str, Any]] = []
    for target in options.waits:
        name = render.unique(render.waitfor_name(target), taken)
        taken.add(name)
        found = options.secret_read_by(target)
        volume = secret_volumes[found[0]]["name"] if found else None
        container = render.waitfor_container(name, target, options, volume)
        render.check_waitfor(container)
        init.append(container)
    sidecar, app = _sidecar(pod, taken, note) if options.ships else (None, "")
    if sidecar is not None and options.sidecar == "native":
        init.append(sidecar)
    if init:
        sequence = pod.list_for("initContainers")
        insert_items(sequence, 0, init)
        pod.record.init_containers = [c["name"] for c in init]
    if sidecar is not None and options.sidecar == "colocated":
        _add_colocated(pod, sidecar, app)
    _annotate(pod)


def _wait_secret_volumes(pod: _Pod) -> dict[str, dict[str, Any]]:
    """A volume for each --wait-secret, with the keys the targets read, added to the pod.
    → {Secret: its volume}"""
    keys: dict[str, list[str]] = {}
    for target in pod.options.waits:
        found = pod.options.secret_read_by(target)
        if found and found[1] not in keys.setdefault(found[0], []):
            keys[found[0]].append(found[1])
    if not keys:
        return {}
    taken = {v.get("name") for v in pod.spec.get("volumes") or () if isinstance(v, dict)}
    volumes: dict[str, dict[str, Any]] = {}
    for secret in pod.options.wait_secrets:
        name = render.unique(render.dns_label(f"{render.WAIT_SECRET_VOLUME}-{secret}"), taken)
        taken.add(name)
        volumes[secret] = render.wait_secret_volume(name, secret, keys[secret])
    insert_items(pod.list_for("volumes"), 0, list(volumes.values()))
    pod.record.volumes += [v["name"] for v in volumes.values()]
    return volumes


def _choose_app(pod: _Pod, note: Callable[[str], None]) -> dict[str, Any]:
    containers = pod.spec["containers"]
    names = [c["name"] for c in containers]
    meta = pod.workload.template.get("metadata") or {}
    default = (meta.get("annotations") or {}).get(DEFAULT_CONTAINER)
    if pod.options.container is not None:
        if pod.options.container not in names:
            raise pod.fail(
                "containers",
                f"--container {pod.options.container!r}: no such "
                f"container (there are: {', '.join(names)})",
            )
        chosen = pod.options.container
    elif default in names:
        chosen = default
    else:
        chosen = names[0]
        if len(names) > 1:
            note(
                f"{pod.workload.title}: --container not given: logship ships the logs of "
                f"{chosen!r}, the first of {', '.join(names)}"
            )
    return containers[names.index(chosen)]


def _covers(mount_path: str, directory: str) -> bool:
    base = mount_path.rstrip("/")
    return directory == base or directory.startswith(base + "/")


def _log_mounts(
    pod: _Pod, app: Any, volume_names: set[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Where each --ship glob's directory is shared with the app: the mount the app
    already writes through (the deepest over it), else a new emptyDir mounted there (one
    for a directory and those below it). → (logship's log mounts, in the globs' order, the
    first holding the data dir; the app's new mounts, of new volumes)"""
    spec = pod.spec
    volumes = {v.get("name"): v for v in spec.get("volumes") or () if isinstance(v, dict)}
    where = f"containers[{spec['containers'].index(app)}].volumeMounts"
    app_mounts = [m for m in app.get("volumeMounts") or () if isinstance(m, dict)]
    shared: dict[str, dict[str, Any]] = {}  # glob -> the mount of its directory
    uncovered: list[str] = []
    for glob in pod.options.ships:
        directory = log_dir(glob)
        covering = [m for m in app_mounts if _covers(str(m.get("mountPath", "")), directory)]
        if not covering:
            uncovered.append(glob)
            continue
        mount = max(covering, key=lambda m: len(str(m["mountPath"])))  # what the app sees
        _check_reusable(pod, mount, volumes.get(mount.get("name")), directory, where)
        shared[glob] = {
            k: mount[k] for k in ("name", "mountPath", "subPath", "subPathExpr") if k in mount
        }
    added: list[dict[str, Any]] = []
    for directory in sorted({log_dir(g) for g in uncovered}, key=lambda d: (d.count("/"), d)):
        if not any(_covers(m["mountPath"], directory) for m in added):
            name = render.unique(render.LOGS_VOLUME, volume_names)
            volume_names.add(name)
            added.append({"name": name, "mountPath": directory})
    for glob in uncovered:
        shared[glob] = max(
            (m for m in added if _covers(m["mountPath"], log_dir(glob))),
            key=lambda m: len(m["mountPath"]),
        )
    mounts: list[dict[str, Any]] = []
    for glob in pod.options.ships:
        if shared[glob] not in mounts:
            mounts.append(dict(shared[glob]))
    return mounts, added


def _sidecar(pod: _Pod, taken: set[str], note: Callable[[str], None]) -> tuple[dict[str, Any], str]:
    """logship for the app container, with the volumes, mounts and pod settings it needs.
    → (logship's container, the app container's name)"""
    options = pod.options
    if options.sidecar == "colocated" and pod.workload.kind in BATCH:
        raise pod.fail(
            "containers",
            f"a co-located logship would keep the {pod.workload.kind}'s "
            "pod running after its container exits, and it would never complete: "
            "use a native sidecar (--sidecar native, Kubernetes >= 1.29)",
        )
    app = _choose_app(pod, note)
    volume_names = {v.get("name") for v in pod.spec.get("volumes") or () if isinstance(v, dict)}
    mounts, added = _log_mounts(pod, app, volume_names)
    data_dir = str(mounts[0]["mountPath"]).rstrip("/") + "/.logship"
    podinfo = render.unique(render.PODINFO_VOLUME, volume_names)
    volume_names.add(podinfo)
    secret = render.unique(render.SECRET_VOLUME, volume_names) if options.es_secret else None
    port, port_name = _free_port(pod)
    name = render.unique(render.LOGSHIP, taken)
    taken.add(name)
    container = render.logship_container(
        name=name,
        options=options,
        app=app["name"],
        mounts=mounts,
        data_dir=data_dir,
        port=port,
        port_name=port_name,
        native=options.sidecar == "native",
        podinfo=podinfo,
        secret=secret,
    )
    render.check_logship(container, options, data_dir=data_dir, port=port)
    # the pod's side: volumes, the app's mounts, what the drain needs
    new_volumes = [render.logs_volume(m["name"]) for m in added]
    new_volumes.append(render.podinfo_volume(podinfo))
    if secret:
        new_volumes.append(render.secret_volume(secret, options))
    insert_items(pod.list_for("volumes"), 0, new_volumes)
    pod.record.volumes += [v["name"] for v in new_volumes]
    if added:
        where = f"{pod.path}.containers[{pod.spec['containers'].index(app)}].volumeMounts"
        if _missing(app, "volumeMounts", list, where, pod.workload.title):
            insert_key(app, "volumeMounts", [], before=("resources", "securityContext"))
            pod.record.created.append(f"spec.containers.{app['name']}.volumeMounts")
        insert_items(app["volumeMounts"], 0, added)
        pod.record.volume_mounts = {app["name"]: [m["name"] for m in added]}
    _drain_settings(pod)
    return container, app["name"]


def _check_reusable(pod: _Pod, mount: Any, volume: Any, directory: str, where: str) -> None:
    """A volume the app already mounts over the log directory: logship mounts it too, so
    it must be one the app can write its logs to."""
    said = f"{mount.get('name')!r} at {mount.get('mountPath')}"
    if mount.get("readOnly"):
        raise pod.fail(
            where,
            f"{said} covers {directory} but is mounted read-only: the app "
            "cannot write its logs there",
        )
    kind = next((k for k in READ_ONLY_VOLUMES if isinstance(volume, dict) and k in volume), None)
    if kind:
        raise pod.fail(
            where,
            f"{said} covers {directory} but is a {kind} volume, which is "
            "read-only: the app cannot write its logs there",
        )


def _free_port(pod: _Pod) -> tuple[int, str]:
    """logship's HTTP port: 8081 unless a container of the pod declares it; its name
    `logship-http` unless taken (port names are unique in a pod)."""
    ports = [
        p
        for key in ("initContainers", "containers")
        for c in pod.spec.get(key) or ()
        for p in c.get("ports") or ()
        if isinstance(p, dict)
    ]
    numbers = {p.get("containerPort") for p in ports}
    port = render.FIRST_PORT
    while port in numbers:
        port += 1
    names = {str(p.get("name")) for p in ports}
    name, number = render.PORT_NAME, 1
    while name in names:
        number += 1
        name = f"{render.PORT_NAME}-{number}"
    return port, name


def _drain_settings(pod: _Pod) -> None:
    """A shared process namespace, so that logship's drain can wait for the app to exit;
    a grace period that lets the drain finish."""
    spec = pod.spec
    if pod.options.share_process_namespace:
        shared = spec.get("shareProcessNamespace")
        if shared is False:
            raise pod.fail(
                "shareProcessNamespace",
                "false: logship's drain watches the "
                "app's processes, to read on until the app has exited and so ship "
                "its last lines; set it to true, or pass "
                "--no-share-process-namespace to accept a drain that cannot see "
                "the app (it stops once no file grew for --drain-quiet)",
            )
        if shared is not True:
            pod.set("shareProcessNamespace", True)
    grace = render.grace_seconds(pod.options)
    current = spec.get("terminationGracePeriodSeconds")
    if not isinstance(current, int) or current < grace:
        pod.set("terminationGracePeriodSeconds", grace)


def _add_colocated(pod: _Pod, sidecar: dict[str, Any], app: str) -> None:
    """logship in `containers`: after the app, but never last (see nodes.py), so before it
    when the app is the last; when the app was alone, `kubectl logs` and `exec` still
    default to it through the default-container annotation."""
    containers = pod.spec["containers"]
    index = next(i for i, c in enumerate(containers) if c["name"] == app) + 1
    if index == len(containers):
        index -= 1
    insert_items(containers, index, [sidecar])
    pod.record.containers = [sidecar["name"]]
    if index == 0:
        annotations = _annotations(pod)
        if DEFAULT_CONTAINER not in annotations:
            annotations.insert(0, DEFAULT_CONTAINER, app)
            pod.record.annotations.append(DEFAULT_CONTAINER)


def _annotations(pod: _Pod) -> Any:
    """The template's annotations, created (and recorded) if missing."""
    template, title = pod.workload.template, pod.workload.title
    if _missing(template, "metadata", dict, f"{_prefix(pod.workload)}metadata", title):
        template.insert(0, "metadata", to_node({}))
        pod.record.created.append("metadata")
    meta = template["metadata"]
    if _missing(meta, "annotations", dict, f"{_prefix(pod.workload)}metadata.annotations", title):
        insert_key(meta, "annotations", {}, before=("labels",))
        pod.record.created.append("metadata.annotations")
    return meta["annotations"]


def _annotate(pod: _Pod) -> None:
    annotations = _annotations(pod)
    # written last, so that it lists everything, the keys _annotations created included
    annotations.insert(0, ANNOTATION, pod.record.dumps())
