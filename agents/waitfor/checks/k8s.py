"""k8s://KIND/NAME — a Kubernetes resource is ready, as seen through the API server:

- `k8s://job/NAME`: the Job has the condition Complete. Failed is final (waitfor exits 1
  with the Job's reason), unless `#failed=ok`;
- `k8s://pods?selector=app=db&min=2` (or `k8s://pod/NAME`): at least `min` pods Ready;
- `k8s://service/NAME`: its EndpointSlices hold at least `min` ready endpoints;
- `k8s://deployment/NAME`, `k8s://statefulset/NAME`: rolled out, by the rules
  `kubectl rollout status` applies.

`#namespace=NS` (default: the pod's own, or the kubeconfig context's). A resource that
does not exist yet is "not ready", not an error. The first attempt LISTs (a name is a
fieldSelector, so that a missing object has a resourceVersion to watch from); the next
ones WATCH from there for nearly an attempt's time, so a change is seen at once and the
requests stay few; a watch that expired (410) is listed again.
"""

from __future__ import annotations

from agents.waitfor.checks import BaseCheck, BuildContext, Failed, NotReady
from agents.waitfor.checks._net import describe_oserror, host_port
from agents.waitfor.targets import Target

# kind (and its aliases) → (API path prefix, resource)
KINDS = {
    "job": ("/apis/batch/v1", "jobs"),
    "pod": ("/api/v1", "pods"),
    "service": ("/apis/discovery.k8s.io/v1", "endpointslices"),
    "deployment": ("/apis/apps/v1", "deployments"),
    "statefulset": ("/apis/apps/v1", "statefulsets"),
}
ALIASES = {"jobs": "job", "pods": "pod", "po": "pod", "services": "service", "svc": "service",
           "deployments": "deployment", "deploy": "deployment", "statefulsets": "statefulset",
           "sts": "statefulset"}  # fmt: skip


def _conditions(obj: dict) -> dict[str, dict]:  # type: ignore[type-arg]
    status = obj.get("status") or {}
    return {c.get("type"): c for c in status.get("conditions") or () if isinstance(c, dict)}


def job_verdict(job: dict, failed_ok: bool) -> tuple[bool, str]:  # type: ignore[type-arg]
    """(ready?, why). Raises Failed for a failed Job (unless failed_ok)."""
    name = job["metadata"]["name"]
    status = job.get("status") or {}
    conditions = _conditions(job)
    if conditions.get("Complete", {}).get("status") == "True":
        return True, f"job {name} complete ({status.get('succeeded', 0)} succeeded)"
    failed = conditions.get("Failed", {})
    if failed.get("status") == "True":
        why = f"job {name} failed: {failed.get('reason', '?')}: {failed.get('message', '')}"
        if failed_ok:
            return True, f"{why} (#failed=ok)"
        raise Failed(why.rstrip(": "))
    counts = ", ".join(f"{status.get(k, 0)} {k}" for k in ("active", "succeeded", "failed"))
    return False, f"job {name} not complete ({counts})"


def pod_problem(pod: dict) -> str:  # type: ignore[type-arg]
    """Why one pod is not Ready, in the words its status uses."""
    status = pod.get("status") or {}
    for container in (status.get("initContainerStatuses") or []) + (
        status.get("containerStatuses") or []
    ):
        waiting = (container.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason") not in (None, "PodInitializing"):
            return f"{container.get('name')}: {waiting['reason']}"
    conditions = _conditions(pod)
    for kind in ("PodScheduled", "Initialized", "Ready"):
        condition = conditions.get(kind)
        if condition and condition.get("status") != "True":
            reason = condition.get("reason") or f"{kind}=False"
            message = condition.get("message")
            return f"{reason}: {message}" if message else reason
    return f"phase {status.get('phase', 'unknown')}"


def pods_verdict(pods: list[dict], need: int, what: str) -> tuple[bool, str]:  # type: ignore[type-arg]
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    ready = [p for p in live if _conditions(p).get("Ready", {}).get("status") == "True"]
    text = f"{len(ready)} of {len(live)} pods {what} ready (need {need})"
    if len(ready) >= need:
        return True, text
    waiting = [p for p in live if p not in ready]
    if waiting:
        text += f"; {waiting[0]['metadata']['name']}: {pod_problem(waiting[0])}"
    return False, text


def endpoints_verdict(slices: list[dict], need: int, name: str) -> tuple[bool, str]:  # type: ignore[type-arg]
    """Ready endpoints over the Service's EndpointSlices; a missing `ready` means ready
    (the API's rule), as slices that the mirroring controller writes may carry."""
    ready = sum(
        1
        for piece in slices
        for endpoint in piece.get("endpoints") or ()
        if (endpoint.get("conditions") or {}).get("ready") is not False
    )
    text = f"service {name} has {ready} ready endpoint{'s' if ready != 1 else ''} (need {need})"
    return ready >= need, text


def deployment_verdict(deploy: dict) -> tuple[bool, str]:  # type: ignore[type-arg]
    """`kubectl rollout status`'s rules for a Deployment."""
    name, spec = deploy["metadata"]["name"], deploy.get("spec") or {}
    status = deploy.get("status") or {}
    if deploy["metadata"].get("generation", 0) > status.get("observedGeneration", 0):
        return False, f"deployment {name}: waiting for the new spec to be observed"
    progressing = _conditions(deploy).get("Progressing", {})
    if progressing.get("reason") == "ProgressDeadlineExceeded":
        return False, f"deployment {name} exceeded its progress deadline"
    want = spec.get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    if updated < want:
        return False, f"deployment {name}: {updated} of {want} replicas updated"
    if status.get("replicas", 0) > updated:
        old = status["replicas"] - updated
        return False, f"deployment {name}: {old} old replicas pending termination"
    available = status.get("availableReplicas", 0)
    if available < updated:
        return False, f"deployment {name}: {available} of {updated} updated replicas available"
    return True, f"deployment {name} rolled out ({available} available)"


def statefulset_verdict(sts: dict) -> tuple[bool, str]:  # type: ignore[type-arg]
    """`kubectl rollout status`'s rules for a StatefulSet."""
    name, spec = sts["metadata"]["name"], sts.get("spec") or {}
    status = sts.get("status") or {}
    if sts["metadata"].get("generation", 0) > status.get("observedGeneration", 0):
        return False, f"statefulset {name}: waiting for the new spec to be observed"
    want = spec.get("replicas", 1)
    ready = status.get("readyReplicas", 0)
    if ready < want:
        return False, f"statefulset {name}: {ready} of {want} pods ready"
    strategy = spec.get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") == "RollingUpdate":
        partition = (strategy.get("rollingUpdate") or {}).get("partition", 0)
        if partition:
            updated = status.get("updatedReplicas", 0)
            if updated < want - partition:
                return False, f"statefulset {name}: {updated} of {want - partition} updated"
        elif status.get("currentRevision") != status.get("updateRevision"):
            return False, (f"statefulset {name}: rolling update to "
                           f"{status.get('updateRevision')} in progress")  # fmt: skip
    return True, f"statefulset {name} rolled out ({ready} ready)"


class K8sCheck(BaseCheck):
    def __init__(self, target: Target, ctx: BuildContext, kind: str, name: str,
                 selector: str, need: int, namespace: str | None,
                 failed_ok: bool) -> None:  # fmt: skip
        from agents.waitfor.kube import KubeConfigError, discover

        try:
            self.cluster = discover(ctx.kubeconfig)
        except KubeConfigError as exc:
            raise target.error(str(exc)) from None
        self.kind, self.name, self.selector, self.need = kind, name, selector, need
        self.failed_ok = failed_ok
        self.namespace = namespace or self.cluster.namespace
        prefix, resource = KINDS[kind]
        self.path = f"{prefix}/namespaces/{self.namespace}/{resource}"
        self.query: dict[str, str] = {}
        if kind == "service":
            self.query["labelSelector"] = f"kubernetes.io/service-name={name}"
        elif name:
            self.query["fieldSelector"] = f"metadata.name={name}"
        if selector:
            self.query["labelSelector"] = selector
        self.watch_seconds = max(1, int(ctx.attempt_timeout) - 1)
        self.version: str | None = None  # the resourceVersion to watch from
        self.items: dict[str, dict] = {}  # type: ignore[type-arg]

    def verdict(self) -> tuple[bool, str]:
        items = list(self.items.values())
        what = f"{self.kind} {self.name}" if self.name else f"{self.kind}s"
        if self.kind == "service":
            return endpoints_verdict(items, self.need, self.name)
        if self.kind == "pod":
            selected = f"with {self.selector}" if self.selector else f"named {self.name}"
            return pods_verdict(items, self.need, selected)
        if not items:
            return False, f"{what} not found in namespace {self.namespace}"
        if self.kind == "job":
            return job_verdict(items[0], self.failed_ok)
        if self.kind == "deployment":
            return deployment_verdict(items[0])
        return statefulset_verdict(items[0])

    async def _list(self) -> None:
        from agents.waitfor.kube import get_json

        answer = await get_json(self.cluster, self.path, self.query)
        self.items = {
            i["metadata"]["name"]: i for i in answer.get("items") or () if isinstance(i, dict)
        }
        self.version = (answer.get("metadata") or {}).get("resourceVersion")

    async def probe(self) -> str:
        try:
            return await self._probe()
        except OSError as exc:  # read or write after the connect (that one says it itself)
            if isinstance(exc, TimeoutError):
                raise
            where = host_port(self.cluster.host, self.cluster.port)
            raise NotReady(describe_oserror(exc, where, tls=self.cluster.tls is not None)) from None

    async def _probe(self) -> str:
        from agents.waitfor.kube import watch

        if self.version is None:
            await self._list()
            return self._decide()
        query = {**self.query, "watch": "1", "resourceVersion": self.version,
                 "allowWatchBookmarks": "true",
                 "timeoutSeconds": str(self.watch_seconds)}  # fmt: skip
        async for event in watch(self.cluster, self.path, query):
            kind, obj = event.get("type"), event["object"]
            if kind == "ERROR":
                if obj.get("code") == 410:  # too old a version: list again
                    await self._list()
                    return self._decide()
                raise NotReady(f"the watch failed: {obj.get('message', obj)}")
            self.version = (obj.get("metadata") or {}).get("resourceVersion", self.version)
            if kind == "BOOKMARK":
                continue
            name = obj["metadata"].get("name")
            if kind == "DELETED":
                self.items.pop(name, None)
            elif kind in ("ADDED", "MODIFIED"):
                self.items[name] = obj
            ready, why = self.verdict()
            if ready:
                return why
        return self._decide()

    def _decide(self) -> str:
        ready, why = self.verdict()
        if not ready:
            raise NotReady(why)
        return why


def build(target: Target, ctx: BuildContext) -> K8sCheck:
    kind = ALIASES.get(target.host.lower(), target.host.lower())
    if kind not in KINDS:
        raise target.error(
            f"unknown kind {target.host!r}: k8s://job/NAME, k8s://pods?selector=..., "
            "k8s://service/NAME, k8s://deployment/NAME or k8s://statefulset/NAME"
        )
    name = target.path.strip("/")
    options = target.options
    selector = options.str("selector", "") or ""
    need = options.int("min", 1, minimum=1)
    namespace = options.str("namespace")
    failed_ok = (options.str("failed") or "").lower() == "ok"
    if options.str("failed") not in (None, "ok", "OK"):
        raise target.error("option failed: only #failed=ok (a failed Job counts as done)")
    if "/" in name:
        raise target.error(f"one name, not a path: k8s://{kind}/NAME, not {name!r}")
    if kind == "pod" and bool(name) == bool(selector):
        raise target.error("pods by name (k8s://pod/NAME) or by ?selector=LABELS, one of them")
    if kind != "pod" and not name:
        raise target.error(f"which {kind}? k8s://{kind}/NAME")
    if kind != "pod" and selector:
        raise target.error(f"option selector is for pods (k8s://pods?selector=...), not {kind}")
    if options.values.get("min") and kind not in ("pod", "service"):
        raise target.error(f"option min is for pods and services, not {kind}")
    if failed_ok and kind != "job":
        raise target.error("option failed is for jobs")
    if namespace is not None and not namespace:
        raise target.error("option namespace: empty")
    return K8sCheck(target, ctx, kind, name, selector, need, namespace, failed_ok)
