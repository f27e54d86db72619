"""A small Kubernetes API client for waitfor's k8s:// targets: where the API server is,
who we are, and GET/LIST/WATCH over HTTP/1.1.

Where: in a pod, the service account (`/var/run/secrets/kubernetes.io/serviceaccount/`:
token, ca.crt, namespace) and `KUBERNETES_SERVICE_HOST`/`_PORT`; for development, a
kubeconfig (`--kubeconfig`, `KUBECONFIG`, `~/.kube/config`): its current context's
server, CA, token or client certificate, and namespace. The token file is read again
for each request: the kubelet rotates it.

Written on asyncio streams and `ssl`, not on the official `kubernetes` client (its
import alone costs more than waitfor's whole memory goal) nor aiohttp: a waiter needs
three requests, JSON and a chunked stream of lines.
"""

from __future__ import annotations

import json
import os
import ssl
from urllib.parse import quote, urlencode, urlsplit

from agents import __version__
from agents.waitfor.checks import NotReady
from agents.waitfor.checks._net import (
    BadHead,
    body_pieces,
    close_stream,
    open_stream,
    read_response_head,
)

SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
BODY_LIMIT = 32 << 20  # a LIST of a namespace's pods; a stranger's stream reads as more
LINE_LIMIT = 4 << 20  # one watch event


class KubeConfigError(Exception):
    """No usable API server configuration: said once, as a usage error."""


class Cluster:
    """An API server and how to talk to it."""

    def __init__(self, *, host: str, port: int, tls: ssl.SSLContext, namespace: str,
                 token: str | None = None, token_file: str | None = None,
                 source: str = "") -> None:  # fmt: skip
        self.host, self.port, self.tls, self.namespace = host, port, tls, namespace
        self.token, self.token_file, self.source = token, token_file, source

    def bearer(self) -> str | None:
        if self.token_file is not None:
            try:
                with open(self.token_file, encoding="utf-8") as file:
                    return file.read().strip()
            except OSError as exc:
                raise NotReady(f"cannot read the token {self.token_file}: {exc.strerror}") from None
        return self.token


def discover(kubeconfig: str, env: dict[str, str] | None = None) -> Cluster:
    """The API server: `kubeconfig` (a path, or KUBECONFIG's list) if given; else in a pod
    its service account; else ~/.kube/config."""
    env = dict(os.environ) if env is None else env
    if kubeconfig:
        return from_kubeconfig([p for p in kubeconfig.split(os.pathsep) if p])
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT", "443")
    if host and os.path.exists(f"{SERVICE_ACCOUNT}/token"):
        return in_cluster(host, port)
    home = os.path.expanduser("~/.kube/config")
    if os.path.exists(home):
        return from_kubeconfig([home])
    raise KubeConfigError(
        "no Kubernetes API: not in a pod (no KUBERNETES_SERVICE_HOST and service account "
        f"token in {SERVICE_ACCOUNT}) and no kubeconfig (--kubeconfig, KUBECONFIG, "
        "~/.kube/config)"
    )


def in_cluster(host: str, port: str) -> Cluster:
    if not port.isdigit():
        raise KubeConfigError(f"KUBERNETES_SERVICE_PORT is {port!r}, not a port")
    try:
        tls = ssl.create_default_context(cafile=f"{SERVICE_ACCOUNT}/ca.crt")
        with open(f"{SERVICE_ACCOUNT}/namespace", encoding="utf-8") as file:
            namespace = file.read().strip()
    except (OSError, ssl.SSLError) as exc:
        raise KubeConfigError(f"the service account in {SERVICE_ACCOUNT}: {exc}") from None
    return Cluster(host=host.strip("[]"), port=int(port), tls=tls, namespace=namespace or "default",
                   token_file=f"{SERVICE_ACCOUNT}/token", source="in-cluster")  # fmt: skip


def _load(path: str) -> dict:  # type: ignore[type-arg]
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except OSError as exc:
        raise KubeConfigError(f"kubeconfig {path}: {exc.strerror}") from None
    try:
        data = json.loads(text)  # `kubectl config view --raw -o json`, or YAML's JSON subset
    except ValueError:
        try:
            import yaml
        except ModuleNotFoundError:
            raise KubeConfigError(
                f"kubeconfig {path} is YAML and PyYAML is not installed: install it, or give "
                "`kubectl config view --raw --minify -o json` output"
            ) from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise KubeConfigError(f"kubeconfig {path}: not YAML: {exc}") from None
    if not isinstance(data, dict):
        raise KubeConfigError(f"kubeconfig {path}: not a kubeconfig (a mapping)")
    return data


def from_kubeconfig(paths: list[str]) -> Cluster:
    """The current context of the kubeconfig files, merged as kubectl merges them (the
    first file to set a name wins)."""
    named: dict[str, dict[str, dict]] = {"clusters": {}, "users": {}, "contexts": {}}  # type: ignore[type-arg]
    current = None
    bases: dict[tuple[str, str], str] = {}
    for path in paths:
        if not os.path.exists(path) and len(paths) > 1:
            continue  # kubectl skips missing files of a list
        data = _load(path)
        current = current or data.get("current-context")
        for key in named:
            for entry in data.get(key) or ():
                if isinstance(entry, dict) and entry.get("name") not in named[key]:
                    named[key][entry["name"]] = entry.get(key[:-1]) or {}
                    bases[(key, entry["name"])] = os.path.dirname(os.path.abspath(path))
    where = ", ".join(paths)
    if not current:
        raise KubeConfigError(f"kubeconfig {where}: no current-context")
    context = named["contexts"].get(current)
    if context is None:
        raise KubeConfigError(f"kubeconfig {where}: context {current!r} is not defined")
    cluster = named["clusters"].get(context.get("cluster", ""))
    if cluster is None:
        raise KubeConfigError(f"kubeconfig {where}: cluster {context.get('cluster')!r} of "
                              f"context {current!r} is not defined")  # fmt: skip
    user = named["users"].get(context.get("user", ""), {})
    server = urlsplit(str(cluster.get("server", "")))
    if server.scheme != "https" or not server.hostname:
        raise KubeConfigError(f"kubeconfig {where}: cluster server {cluster.get('server')!r} "
                              "is not an https:// URL")  # fmt: skip
    base = bases.get(("clusters", context.get("cluster", "")), ".")
    tls = _tls(cluster, user, base, bases.get(("users", context.get("user", "")), "."), where)
    for unsupported in ("exec", "auth-provider", "username"):
        if unsupported in user:
            raise KubeConfigError(
                f"kubeconfig {where}: user {context.get('user')!r} authenticates by "
                f"{unsupported}, which waitfor does not: give a token (kubectl create token)"
            )
    token_file = user.get("tokenFile")
    return Cluster(host=server.hostname, port=server.port or 443, tls=tls,
                   namespace=context.get("namespace") or "default", token=user.get("token"),
                   token_file=os.path.join(base, token_file) if token_file else None,
                   source=f"kubeconfig {where}, context {current}")  # fmt: skip


def _tls(cluster: dict, user: dict, base: str, user_base: str, where: str) -> ssl.SSLContext:  # type: ignore[type-arg]
    import base64
    import tempfile

    try:
        if cluster.get("certificate-authority-data"):
            ca = base64.b64decode(cluster["certificate-authority-data"]).decode()
            tls = ssl.create_default_context(cadata=ca)
        elif cluster.get("certificate-authority"):
            tls = ssl.create_default_context(
                cafile=os.path.join(base, cluster["certificate-authority"])
            )
        else:
            tls = ssl.create_default_context()
        if cluster.get("insecure-skip-tls-verify"):
            tls.check_hostname = False
            tls.verify_mode = ssl.CERT_NONE
        if cluster.get("tls-server-name"):
            raise KubeConfigError(f"kubeconfig {where}: tls-server-name is not supported")
        cert, key = user.get("client-certificate"), user.get("client-key")
        if user.get("client-certificate-data"):
            # ssl loads a chain only from a file: one that lives as long as the context needs
            with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as file:
                file.write(base64.b64decode(user["client-certificate-data"]).decode())
                file.write(base64.b64decode(user.get("client-key-data", "")).decode())
            try:
                tls.load_cert_chain(file.name)
            finally:
                os.unlink(file.name)
        elif cert:
            tls.load_cert_chain(os.path.join(user_base, cert),
                                os.path.join(user_base, key) if key else None)  # fmt: skip
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise KubeConfigError(f"kubeconfig {where}: TLS files: {exc}") from None
    return tls


# -- requests ----------------------------------------------------------------------------


class ApiError(NotReady):
    """The API server said no: its Status, made readable."""

    def __init__(self, reason: str, code: int, status: dict) -> None:  # type: ignore[type-arg]
        super().__init__(reason)
        self.code, self.status = code, status


async def _send(cluster: Cluster, path: str, query: dict[str, str]):  # type: ignore[no-untyped-def]
    reader, writer = await open_stream(cluster.host, cluster.port, tls=cluster.tls)
    target = quote(path) + ("?" + urlencode(query) if query else "")
    host = f"[{cluster.host}]" if ":" in cluster.host else cluster.host  # an IPv6 cluster
    lines = [f"GET {target} HTTP/1.1", f"Host: {host}:{cluster.port}",
             "Accept: application/json", f"User-Agent: waitfor/{__version__}",
             "Connection: close"]  # fmt: skip
    token = cluster.bearer()
    if token:
        lines.append(f"Authorization: Bearer {token}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    await writer.drain()
    try:
        status, _, headers = await read_response_head(reader)
    except NotReady as exc:
        await close_stream(writer)
        if isinstance(exc, BadHead):
            raise NotReady(f"not a Kubernetes API server ({exc.reason})") from None
        raise
    return status, headers, reader, writer


async def get_json(cluster: Cluster, path: str, query: dict[str, str]) -> dict:  # type: ignore[type-arg]
    """GET or LIST: the decoded object; an error status raises ApiError."""
    status, headers, reader, writer = await _send(cluster, path, query)
    try:
        body = b""
        async for chunk in body_pieces(reader, headers, "the API server's answer"):
            body += chunk
            if len(body) > BODY_LIMIT:
                raise NotReady(f"an answer of more than {BODY_LIMIT >> 20} MiB")
    finally:
        await close_stream(writer)
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if status != 200 or not isinstance(data, dict):
        raise api_error(status, data, body, cluster, path, query)
    return data


async def watch(cluster: Cluster, path: str, query: dict[str, str]):  # type: ignore[no-untyped-def]
    """The events of a watch as they arrive (one JSON object per line)."""
    status, headers, reader, writer = await _send(cluster, path, query)
    try:
        if status != 200:
            body = b""
            async for chunk in body_pieces(reader, headers, "the API server's answer"):
                body += chunk[: BODY_LIMIT - len(body)]
            try:
                data = json.loads(body)
            except ValueError:
                data = None
            raise api_error(status, data, body, cluster, path, query)
        pending = b""
        async for chunk in body_pieces(reader, headers, "the API server's answer"):
            pending += chunk
            while b"\n" in pending:
                line, _, pending = pending.partition(b"\n")
                if line.strip():
                    yield _event(line)
            if len(pending) > LINE_LIMIT:
                raise NotReady("a watch event of more than 4 MiB")
        if pending.strip():
            yield _event(pending)
    finally:
        await close_stream(writer)


def _event(line: bytes) -> dict:  # type: ignore[type-arg]
    try:
        event = json.loads(line)
    except ValueError:
        raise NotReady(f"not a watch event: {line[:60]!r}") from None
    if not isinstance(event, dict) or not isinstance(event.get("object"), dict):
        raise NotReady(f"not a watch event: {line[:60]!r}")
    return event


# The verbs a waiter needs, for the Role rule a 403 prints.
VERBS = '["get", "list", "watch"]'


def api_error(status: int, data: object, body: bytes, cluster: Cluster, path: str,
              query: dict[str, str]) -> ApiError:  # fmt: skip
    """An error answer → what to do about it."""
    message = data.get("message", "") if isinstance(data, dict) else body[:200].decode(
        "utf-8", "replace").strip()  # fmt: skip
    verb = "watch" if query.get("watch") else "list"
    group, resource, namespace = _parts(path)
    if status == 401:
        return ApiError(f"the API server refused the token (401 Unauthorized; {cluster.source}):"
                        " it is expired, revoked or for another cluster", status, {})  # fmt: skip
    if status == 403:
        return ApiError(
            f"forbidden: {message} — to let waitfor {verb} {resource} in namespace {namespace}, "
            f'add to a Role bound to its service account: {{apiGroups: ["{group}"], '
            f'resources: ["{resource}"], verbs: {VERBS}}}',
            status,
            data if isinstance(data, dict) else {},
        )
    if status == 404:
        return ApiError(f"the API server has no {resource} here (404: {message}): is the "
                        "kind available in this cluster's version?", status, {})  # fmt: skip
    return ApiError(f"the API server answered {status}: {message}", status,
                    data if isinstance(data, dict) else {})  # fmt: skip


def _parts(path: str) -> tuple[str, str, str]:
    """/apis/GROUP/VERSION/namespaces/NS/RESOURCE or /api/v1/namespaces/NS/RESOURCE →
    (group, resource, namespace)."""
    parts = path.strip("/").split("/")
    group = "" if parts[0] == "api" else parts[1]
    rest = parts[2:] if parts[0] == "api" else parts[3:]
    namespace = rest[1] if len(rest) > 2 and rest[0] == "namespaces" else ""
    return group, rest[-1] if rest else "", namespace
