"""A Kubernetes API server for the tests, built on the answers a real one (1.28) gave:
`tests/fixtures/k8s-api/` (its README says how they were recorded).

It serves, over TLS with its own CA, what a waiter asks: LIST of a namespaced collection
(with labelSelector and a `metadata.name` fieldSelector) and WATCH from a
resourceVersion (chunked, one event per line, closed after timeoutSeconds), with a
bearer token check (no token: 403 for system:anonymous; a wrong one: 401), RBAC by
(resource, namespace) with the server's own 403 message, and a 410 ERROR event for a
watch from a version older than the last compaction. The objects and error bodies are
the recorded ones; the server stamps only what a server assigns (resourceVersion), and
list envelopes are the recorded lists' with their items replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import re
import ssl
import threading
from pathlib import Path
from typing import Any

from aiohttp import web

RECORDED = Path(__file__).resolve().parent / "fixtures" / "k8s-api"
SERVICE_ACCOUNT = "system:serviceaccount:waitdemo:waiter"
# resource → (group, version, the recorded list that gives its envelope's kind)
RESOURCES = {
    "jobs": ("batch", "v1", "JobList"),
    "pods": ("", "v1", "PodList"),
    "endpointslices": ("discovery.k8s.io", "v1", "EndpointSliceList"),
    "deployments": ("apps", "v1", "DeploymentList"),
    "statefulsets": ("apps", "v1", "StatefulSetList"),
}


def recorded(path: str) -> dict[str, Any]:
    """A recorded exchange (its request and response)."""
    return json.loads((RECORDED / path).read_text())  # type: ignore[no-any-return]


def recorded_body(path: str) -> Any:
    return copy.deepcopy(recorded(path)["response"]["body"])


def recorded_object(path: str, name: str | None = None) -> dict[str, Any]:
    """An object from a recorded GET, or the item `name` of a recorded LIST."""
    body = recorded_body(path)
    if "items" in body:
        return next(i for i in body["items"] if name is None or i["metadata"]["name"] == name)
    return body  # type: ignore[no-any-return]


def recorded_events(path: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (RECORDED / path).read_text().splitlines() if line]


def _matches(labels: dict[str, str], selector: str) -> bool:
    """Label selector: `k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)`."""
    for term in re.findall(r"[^,(]+(?:\([^)]*\))?", selector):
        term = term.strip()
        if not term:
            continue
        found = re.fullmatch(r"([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)", term)
        if found:
            key, op, values = found.groups()
            inside = labels.get(key) in {v.strip() for v in values.split(",")}
            if inside != (op == "in"):
                return False
        elif "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = re.split(r"==?", term, maxsplit=1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


class KubeAPI:
    """Start with `with KubeAPI(tmp_path) as api:`; `api.kubeconfig` is a kubeconfig for
    it. `put` and `delete` change objects (watchers see the events); `requests` counts
    what was asked, by (verb, resource)."""

    def __init__(self, workdir: Path, *, token: str = "waiter-token") -> None:  # noqa: S107
        import trustme

        self.workdir, self.token = workdir, token
        self.ca = trustme.CA()
        cert = self.ca.issue_cert("127.0.0.1", "localhost")
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(self.tls)
        self.objects: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self.allowed: set[tuple[str, str]] | None = None  # None: everything
        self.version = 2000
        self.compacted = 0  # a watch from below this gets 410
        self.requests: list[tuple[str, str]] = []
        self.events: list[tuple[int, str, str, str, dict[str, Any]]] = []  # rv, type, res, ns, obj
        self._changed: asyncio.Condition | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.port = 0

    # -- the cluster's state --------------------------------------------------------

    def put(self, resource: str, obj: dict[str, Any], namespace: str = "waitdemo") -> None:
        self._call(self._put, resource, copy.deepcopy(obj), namespace)

    def delete(self, resource: str, name: str, namespace: str = "waitdemo") -> None:
        self._call(self._delete, resource, name, namespace)

    def compact(self) -> None:
        """As etcd's compaction: versions before now are gone."""
        self._call(self._compact)

    def _call(self, function: Any, *args: Any) -> None:
        if self._loop is None:
            function(*args)
            return
        asyncio.run_coroutine_threadsafe(self._locked(function, *args), self._loop).result(10)

    async def _locked(self, function: Any, *args: Any) -> None:
        assert self._changed is not None
        async with self._changed:
            function(*args)
            self._changed.notify_all()

    def _put(self, resource: str, obj: dict[str, Any], namespace: str) -> None:
        self.version += 1
        obj["metadata"]["resourceVersion"] = str(self.version)
        obj["metadata"]["namespace"] = namespace
        store = self.objects.setdefault((resource, namespace), {})
        kind = "MODIFIED" if obj["metadata"]["name"] in store else "ADDED"
        store[obj["metadata"]["name"]] = obj
        self.events.append((self.version, kind, resource, namespace, obj))

    def _delete(self, resource: str, name: str, namespace: str) -> None:
        obj = self.objects.get((resource, namespace), {}).pop(name)
        self.version += 1
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self.version)
        self.events.append((self.version, "DELETED", resource, namespace, obj))

    def _compact(self) -> None:
        self.compacted = self.version + 1

    # -- serving --------------------------------------------------------------------

    def _status(self, name: str, **replace: str) -> web.Response:
        """A recorded error answer, with the names of this request put in."""
        body = recorded_body(f"errors/{name}")
        for old, new in replace.items():
            body["message"] = body["message"].replace(old, new)
        return web.json_response(body, status=body["code"])

    def _authorize(self, request: web.Request, verb: str, resource: str, namespace: str,
                   ) -> web.Response | None:  # fmt: skip
        auth = request.headers.get("Authorization")
        if auth is None:
            return self._status("403-no-token.json")
        if auth != f"Bearer {self.token}":
            return self._status("401-bad-token.json")
        if self.allowed is not None and (resource, namespace) not in self.allowed:
            group = RESOURCES.get(resource, ("?",))[0]
            body = recorded_body("errors/403-pods-other-namespace.json")
            body["message"] = (
                f'{resource} is forbidden: User "{SERVICE_ACCOUNT}" cannot {verb} resource '
                f'"{resource}" in API group "{group}" in the namespace "{namespace}"'
            )
            body["details"] = {"kind": resource} | ({"group": group} if group else {})
            return web.json_response(body, status=403)
        return None

    def _selected(self, request: web.Request, resource: str, namespace: str,
                  obj: dict[str, Any]) -> bool:  # fmt: skip
        labels = obj["metadata"].get("labels") or {}
        selector = request.query.get("labelSelector", "")
        if selector and not _matches(labels, selector):
            return False
        field = request.query.get("fieldSelector", "")
        if field:
            key, _, value = field.partition("=")
            assert key == "metadata.name", f"the test server knows no fieldSelector {field!r}"
            return bool(obj["metadata"]["name"] == value)
        return True

    async def _collection(self, request: web.Request) -> web.StreamResponse:
        namespace, resource = request.match_info["ns"], request.match_info["resource"]
        if resource not in RESOURCES:
            return self._status("403-unknown-resource.json")
        watching = request.query.get("watch") in ("1", "true")
        self.requests.append(("watch" if watching else "list", resource))
        refused = self._authorize(request, "watch" if watching else "list", resource, namespace)
        if refused is not None:
            return refused
        if watching:
            return await self._watch(request, resource, namespace)
        group, version, kind = RESOURCES[resource]
        items = [copy.deepcopy(o) for o in self.objects.get((resource, namespace), {}).values()
                 if self._selected(request, resource, namespace, o)]  # fmt: skip
        return web.json_response({
            "kind": kind, "apiVersion": f"{group}/{version}" if group else version,
            "metadata": {"resourceVersion": str(self.version)}, "items": items,
        })  # fmt: skip

    async def _watch(self, request: web.Request, resource: str, namespace: str,
                     ) -> web.StreamResponse:  # fmt: skip
        try:
            return await self._stream(request, resource, namespace)
        except ConnectionResetError:  # the client went away: as a server, forget it
            return web.Response()

    async def _stream(self, request: web.Request, resource: str, namespace: str,
                      ) -> web.StreamResponse:  # fmt: skip
        assert self._changed is not None
        since = int(request.query.get("resourceVersion") or 0)
        timeout = float(request.query.get("timeoutSeconds") or 1800)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        if since < self.compacted:
            expired = recorded_events("errors/410-watch-too-old.ndjson")[0]
            expired["object"]["message"] = f"too old resource version: {since} ({self.compacted})"
            await response.write(json.dumps(expired, separators=(",", ":")).encode() + b"\n")
            await response.write_eof()
            return response
        loop = asyncio.get_running_loop()
        ends = loop.time() + timeout
        sent = since
        while True:
            for rv, kind, res, ns, obj in list(self.events):
                if rv <= sent:
                    continue
                sent = rv
                if (
                    res == resource
                    and ns == namespace
                    and self._selected(request, resource, namespace, obj)
                ):
                    line = json.dumps({"type": kind, "object": obj}, separators=(",", ":"))
                    await response.write(line.encode() + b"\n")
            remaining = ends - loop.time()
            if remaining <= 0:
                break
            async with self._changed:
                if self.events and self.events[-1][0] > sent:
                    continue  # changed while we wrote
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), remaining)
        await response.write_eof()  # the server ends the stream cleanly, no final event
        return response

    # -- lifecycle --------------------------------------------------------------------

    def __enter__(self) -> KubeAPI:
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application()
            app.router.add_get("/api/v1/namespaces/{ns}/{resource}", self._collection)
            app.router.add_get("/apis/{group}/{version}/namespaces/{ns}/{resource}",
                               self._collection)  # fmt: skip
            self._runner = web.AppRunner(app, access_log=None)

            async def start() -> None:
                self._changed = asyncio.Condition()
                await self._runner.setup()
                site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.tls)
                await site.start()
                self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

            loop.run_until_complete(start())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        assert ready.wait(30), "the test API server did not start"
        self.kubeconfig = self.write_kubeconfig(self.workdir / "kubeconfig.json", self.token)
        return self

    def write_kubeconfig(self, path: Path, token: str, namespace: str = "waitdemo") -> Path:
        """A kubeconfig for this server, as `kubectl config view --raw -o json` writes it."""
        ca = self.workdir / "kube-ca.crt"
        self.ca.cert_pem.write_to_path(str(ca))
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "test",
            "clusters": [{"name": "test", "cluster": {
                "server": f"https://127.0.0.1:{self.port}", "certificate-authority": str(ca)}}],
            "users": [{"name": "waiter", "user": {"token": token}}],
            "contexts": [{"name": "test", "context": {
                "cluster": "test", "user": "waiter", "namespace": namespace}}],
        }))  # fmt: skip
        return path

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
