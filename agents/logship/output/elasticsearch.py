"""Sending one pre-serialised bulk body to Elasticsearch.

The requests and headers are the official client's (its media types, Authorization, gzip);
connections, TLS and the node pool are `output.http`'s. There are no retries here: the
pipeline decides what to retry, when, and how often. Bulk bodies are gzipped with ISA-L
at level 1 (`GZIP_LEVEL`) in a thread, where the compressor releases the GIL, so the event
loop reads and serialises the next events meanwhile. A bulk response that says all was
stored is not parsed at all (`stored_summary`).
"""

from __future__ import annotations

import asyncio
import zlib
from dataclasses import dataclass, field
from typing import Any, Protocol

from agents import __version__
from agents._log import Logger
from agents._options import OptionError
from agents.logship.bulk import stored_summary
from agents.logship.output.cluster import (
    COMPAT_JSON,
    COMPAT_NDJSON,
    UNKNOWN,
    Cluster,
    Dialect,
    dialect_of_flag,
    identify,
)
from agents.logship.output.credentials import Credentials, authorization_header
from agents.logship.output.http import (
    BadUrl,
    Client,
    NoAnswer,
    Node,
    Response,
    is_ip,
    parse_nodes,
    tls_context,
)

# A bulk body shrinks ~12x at level 1 (ISA-L or zlib), ~16x at zlib's 9, for a fraction of
# the CPU.
GZIP_LEVEL = 1


class SendFailed(Exception):
    """No HTTP answer at all (refused, reset, timed out, TLS failure): retry later."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)  # names in lower case


class Sender(Protocol):
    """The one seam between logship and Elasticsearch: one bulk request, its answer (or
    SendFailed when there was none). `ElasticsearchSender` is the real one;
    `agents.testing.sender.ScriptedSender` plays a script."""

    async def send(self, body: bytes | list[bytes | memoryview]) -> Answer: ...


def client_options(config: Any, credentials: Credentials | None = None) -> dict[str, Any]:
    """Config → the sender's options, named as the official client's keyword arguments
    (`AsyncElasticsearch(**options)` makes the same requests). The secrets are those
    `credentials` read (read here when not given)."""
    options: dict[str, Any] = {
        "hosts": list(config.es),
        "http_compress": bool(config.compress),
        "request_timeout": float(config.request_timeout),
        "verify_certs": not config.insecure,
        "flavor": config.flavor,  # not a client option: the clients are one per product
    }
    secrets = (credentials or Credentials(config)).values
    if config.username:
        options["basic_auth"] = (config.username, secrets["password"])
    if secrets["api_key"]:
        options["api_key"] = secrets["api_key"]
    if secrets["bearer_token"]:
        options["bearer_auth"] = secrets["bearer_token"]
    tls_files = {"ca-file": config.ca_file, "cert-file": config.cert_file,
                 "key-file": config.key_file}  # fmt: skip
    for flag, path in tls_files.items():
        if path is None:
            continue
        if not all(url.startswith("https://") for url in config.es):
            raise OptionError(f"--{flag}: TLS files need https:// URLs in --es")
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise OptionError(f"--{flag}: cannot read {path}: {exc.strerror}") from None
    if config.ca_file:
        options["ca_certs"] = str(config.ca_file)
    if config.cert_file:
        options["client_cert"] = str(config.cert_file)
        if config.key_file:
            options["client_key"] = str(config.key_file)
    return options


def deflater() -> Any:
    """The module whose `compressobj` gzips bulk bodies: ISA-L's (`isal.isal_zlib`), which
    at level 1 is ~4.5x faster than zlib's level 1 on bulk NDJSON for a slightly smaller
    body; zlib where the isal package is missing (a platform without its wheel). Both
    write standard gzip."""
    try:
        from isal import isal_zlib
    except ImportError:
        return zlib
    return isal_zlib


def gzip_body(body: bytes | list[bytes | memoryview], level: int = GZIP_LEVEL) -> bytes:
    """`body` (or its pieces, in order) as one gzip member (what `Content-Encoding: gzip`
    means). Pieces are compressed one after another: no joined copy of the body."""
    module = deflater()
    packer = module.compressobj(level, module.DEFLATED, 16 + module.MAX_WBITS)
    pieces = [body] if isinstance(body, bytes) else body
    return b"".join([packer.compress(piece) for piece in pieces]) + packer.flush()


def _tls_contexts(options: dict[str, Any], nodes: list[Node]) -> None:
    """Give each https:// node its TLS context, loading the CA and client certificate files
    now, so that a bad one is a configuration error at start rather than a failure at the
    first request. Host names are checked except for IP addresses, as the official client
    does; one context per kind of node."""
    import ssl

    ca, cert, key = options.get("ca_certs"), options.get("client_cert"), options.get("client_key")
    made: dict[bool, ssl.SSLContext] = {}
    for node in nodes:
        if node.scheme != "https":
            continue
        ip = is_ip(node.host)
        if ip not in made:
            try:
                made[ip] = tls_context(verify=options.get("verify_certs", True),
                                       check_hostname=not ip, ca_file=ca, cert_file=cert,
                                       key_file=key)  # fmt: skip
            except (ValueError, ssl.SSLError, OSError) as exc:
                which = "--ca-file" if ca and not cert else "--cert-file/--key-file"
                if ca and cert:  # which of the two: try the CA alone
                    try:
                        ssl.create_default_context().load_verify_locations(cafile=ca)
                    except (ValueError, ssl.SSLError, OSError):
                        which = "--ca-file"
                raise OptionError(f"{which}: unusable for TLS: {exc}") from None
        node.tls = made[ip]


def _authorization(options: dict[str, Any]) -> str | None:
    """The header the official client would send for these options."""
    user, password = options.get("basic_auth") or ("", "")
    return authorization_header(user, password, options.get("api_key") or "",
                                options.get("bearer_auth") or "")  # fmt: skip


def _checked(authorization: str | None) -> str | None:
    if authorization and any(c in authorization for c in "\r\n\0"):
        raise OptionError("the credentials hold a line break or a NUL: check their file")
    return authorization


def nodes_of(options: dict[str, Any]) -> list[Node]:
    """One node per URL of `hosts`, with its TLS context (OptionError for what is not
    usable, naming the flag)."""
    from agents.logship.config import check_urls

    check_urls(list(options["hosts"]))  # the messages users know, password hidden
    try:
        nodes = parse_nodes(list(options["hosts"]))
    except BadUrl as exc:
        raise OptionError(f"--es: {exc}") from None
    _tls_contexts(options, nodes)
    return nodes


USER_AGENT = f"logship/{__version__} (pod-agents)"
# The media types of Elasticsearch 8 and 9 (the 8.x client's); `output.cluster` has the
# others and which server takes which.
JSON, NDJSON = COMPAT_JSON, COMPAT_NDJSON


class ElasticsearchSender:
    """Bulk requests to the nodes of --es, with the headers the official client of the
    server sends (Authorization, the media types, gzip), through `output.http.Client`: its
    node pool, keep-alive connections and TLS. Everything that can be wrong with the
    options (a URL, a TLS file, a header value) is found here, before the event loop:
    exit 2 at start.

    Which server it is (`cluster`) and so how to talk to it (`dialect`) is learnt from
    `GET /` before the first other request (`meet`), unless `flavor` says (for clusters
    that forbid `GET /`); until then, and when `GET /` is forbidden, plain JSON goes out,
    which every supported server takes."""

    def __init__(self, options: dict[str, Any], credentials: Credentials | None = None) -> None:
        self.compress = bool(options.get("http_compress", False))
        self.options = options
        self.nodes = nodes_of(options)
        self.credentials = credentials
        self._unreadable_said: list[str] = []
        self._authorization = _checked(
            credentials.authorization() if credentials else _authorization(options)
        )
        self.flavor = str(options.get("flavor") or "auto")
        given = dialect_of_flag(self.flavor)
        self.cluster: Cluster | None = None  # what GET / said, once it said it
        self.met = given is not None  # True once the dialect is settled
        self._meeting: asyncio.Future[Answer] | None = None  # GET / being asked
        self._use(given or UNKNOWN)
        self.client = Client(self.nodes, timeout=float(options.get("request_timeout", 10.0)))

    def _use(self, dialect: Dialect) -> None:
        self.dialect = dialect
        headers = {"user-agent": USER_AGENT, "accept": dialect.json}
        self._json_headers = {**headers, "content-type": dialect.json}
        self._bulk_headers = {**headers, "content-type": dialect.ndjson}
        if self.compress:
            self._bulk_headers |= {"content-encoding": "gzip", "accept-encoding": "gzip"}

    async def meet(self) -> Answer | None:
        """Ask `GET /` once and settle the dialect from it: the server's own when it says
        who it is, plain JSON when it will not say (403, or not a server logship knows).
        Another answer (401, 5xx) settles nothing: the next request asks again. The
        answer, or None when the cluster was met already; SendFailed without one.

        Callers that come while `GET /` is being asked share its outcome: asked in turn,
        each bulk request in flight would wait out every earlier one's timeout first (4
        in flight to a silent peer: the last one waited 4 times --request-timeout)."""
        if self.cluster is not None:
            return None
        if self._meeting is not None:
            return await asyncio.shield(self._meeting)
        meeting = self._meeting = asyncio.get_running_loop().create_future()
        try:
            answer = await self.info()
            cluster = identify(answer.status, answer.body, answer.headers)
        except BaseException as exc:  # those waiting have no answer either; they retry
            why = str(exc) if isinstance(exc, SendFailed) else "GET / was not asked to the end"
            meeting.set_exception(SendFailed(why))
            meeting.exception()  # retrieved: no warning when nobody was waiting
            raise
        finally:
            self._meeting = None
        if cluster is not None:
            self.cluster = cluster
        if not self.met and (cluster is not None or answer.status == 403):
            self.met = True
            self._use(cluster.dialect if cluster is not None else UNKNOWN)
        meeting.set_result(answer)
        return answer

    async def _settled(self) -> None:
        """Before a request that depends on the dialect: meet the cluster if not yet."""
        if not self.met:
            await self.meet()

    def reload_credentials(self, log: Logger | None = None) -> bool:
        """Read the credential and TLS files again (a rotated Secret) → whether what is
        sent changed. Requests from now on carry the new credentials; connections are
        made again with new TLS files. Unusable new files keep the old ones, said once."""
        if self.credentials is None:
            return False
        auth_changed, tls_changed = self.credentials.reload()
        changed = False
        if auth_changed:
            try:
                self._authorization = _checked(self.credentials.authorization())
                changed = True
            except OptionError as exc:
                if log is not None:
                    log.error("credentials not reloaded: keeping the previous ones",
                              error=str(exc))  # fmt: skip
        if tls_changed:
            try:
                _tls_contexts(self.options, self.nodes)
            except OptionError as exc:
                if log is not None:
                    log.error("TLS files not reloaded: keeping the previous ones",
                              error=str(exc))  # fmt: skip
            else:
                self.client.drop_idle()
                changed = True
        if changed and log is not None:
            log.info("credentials reloaded", credentials=self.credentials.describe(),
                     tls=tls_changed)  # fmt: skip
        unreadable = sorted(self.credentials.unreadable)
        if unreadable != self._unreadable_said and log is not None:  # said once per change
            self._unreadable_said = unreadable
            if unreadable:
                log.warning("credential files unreadable: keeping their previous values",
                            files=unreadable)  # fmt: skip
        return changed

    def _with_auth(self, headers: dict[str, str]) -> dict[str, str]:
        if self._authorization is None:
            return headers
        return {**headers, "authorization": self._authorization}

    async def send(self, body: bytes | list[bytes | memoryview]) -> Answer:
        """One bulk request: `body` is NDJSON, whole or in pieces to be sent in order."""
        await self._settled()
        if self.compress:
            body = await asyncio.to_thread(gzip_body, body)
        elif not isinstance(body, bytes):
            body = b"".join(body)
        return await self._call("POST", "/_bulk", body, self._with_auth(self._bulk_headers))

    async def put_template(self, name: str, body: dict[str, Any]) -> Answer:
        """PUT /_index_template/<name> with `body`."""
        import json
        from urllib.parse import quote

        await self._settled()
        data = json.dumps(body, separators=(",", ":")).encode()
        return await self._call("PUT", f"/_index_template/{quote(name, safe='')}", data,
                                self._with_auth(self._json_headers))  # fmt: skip

    async def get_templates(self) -> Answer:
        """GET /_index_template: every composable index template."""
        await self._settled()
        return await self._call("GET", "/_index_template", None,
                                self._with_auth(self._json_headers))  # fmt: skip

    async def _call(self, method: str, target: str, body: bytes | None,
                    headers: dict[str, str]) -> Answer:  # fmt: skip
        try:
            response = await self.client.request(method, target, headers, body)
        except NoAnswer as exc:
            raise SendFailed(str(exc)) from None
        return Answer(response.status, _parse(response), response.headers)

    async def info(self) -> Answer:
        """GET / : the cluster's name, version and product (SendFailed: no answer)."""
        return await self._call("GET", "/", None, self._with_auth(self._json_headers))

    async def has_privileges(self, index: str, privileges: list[str]) -> Answer:
        """POST /_security/user/_has_privileges: may these credentials do this? (asks,
        writes nothing)."""
        import json

        await self._settled()
        body = json.dumps({"index": [{"names": [index], "privileges": privileges}]}).encode()
        return await self._call("POST", "/_security/user/_has_privileges", body,
                                self._with_auth(self._json_headers))  # fmt: skip

    async def ping(self) -> bool:
        try:
            answer = await self._call("HEAD", "/", None, self._with_auth(self._json_headers))
        except SendFailed:  # reachability is a yes/no question here
            return False
        return 200 <= answer.status < 300

    def oldest_request(self) -> float:
        """Seconds the oldest request has waited for its answer (0: none)."""
        return self.client.oldest_request()

    async def close(self) -> None:
        await self.client.close()


def _parse(response: Response) -> Any:
    """The answer's body as the caller reads it: a bulk answer that stored every event as
    `AllStored` (2000 items would be 2000 dicts), JSON as Python, anything else (an
    answer that is not JSON: a proxy's error page) as text."""
    import json

    data = response.body
    if not data:
        return None
    summary = stored_summary(data)
    if summary is not None:
        return summary
    if "json" in response.headers.get("content-type", "json"):
        try:
            return json.loads(data)
        except ValueError:
            pass
    return data.decode("utf-8", "replace")
