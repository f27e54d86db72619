"""The middleware every Elasticsearch request passes through: it records the request,
reads and decodes its body within the size limit, applies the faults in force (dropped
connections, latency, whole-request failures), checks the media types like ES 8/9, then
lets the endpoint answer. Control requests under `/_standin/` go straight through.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib

from aiohttp import web
from aiohttp.typedefs import Middleware

from agents.testing.elasticsearch.bulk import BodyTooLarge, decode_body
from agents.testing.elasticsearch.errors import EsError
from agents.testing.elasticsearch.faults import PROXY_STATUSES, request_error
from agents.testing.elasticsearch.media import body_type_supported, check_media_types
from agents.testing.elasticsearch.wire import (
    BODY,
    COMPAT,
    RECORD,
    Handler,
    RecordedRequest,
    content_type_refused,
    error_reply,
    no_handler,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from agents.testing.elasticsearch.server import StandIn


def middleware(es: StandIn) -> Middleware:
    """The stand-in's one middleware, bound to `es` (its faults, limits and request log)."""

    @web.middleware
    async def apply(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_standin/"):
            return await handler(request)
        record = RecordedRequest(
            request.method,
            request.path,
            dict(request.query),
            dict(request.headers),
            request.headers.get("Content-Encoding"),
        )
        es.requests.append(record)
        request[RECORD] = record
        try:
            body = await _read_body(request, record, es.max_body_bytes)
        except BodyTooLarge:
            return _finish(es, record, web.Response(status=413))
        except EsError as e:
            return _finish(es, record, error_reply(request, e))
        refused = _authenticate(es, request.headers.get("Authorization"), request.path)
        if refused is not None and es.profile.opensearch and refused.status == 401:
            response = web.Response(status=401, text="Unauthorized")  # the security plugin's
            response.headers["WWW-Authenticate"] = 'Basic realm="OpenSearch Security"'
            return _finish(es, record, response)
        if refused is not None:
            response = error_reply(request, refused)
            response.headers["WWW-Authenticate"] = 'Basic realm="security" charset="UTF-8"'
            return _finish(es, record, response)
        if es.faults.drop(after_processing=False):
            return _drop(request, record)
        if es.faults.latency:
            with contextlib.suppress(TimeoutError):  # stop() ends the wait early
                await asyncio.wait_for(es._stopping.wait(), es.faults.latency)
        try:
            request[COMPAT] = check_media_types(
                request.headers.get("Accept"),
                request.headers.get("Content-Type"),
                bool(body),
                es.profile.compatible_versions,
            )
            vnd = es.profile.knows_vnd_types
            if body and not body_type_supported(request.headers.get("Content-Type"), vnd):
                return _finish(es, record, content_type_refused(request))
            failure = es.faults.request_failure(request.path.endswith("/_bulk"))
            if failure is not None:
                headers, payload = request_error(failure, request.path)
                refused = web.Response(status=failure, body=payload, headers=headers)
                return _finish(es, record, refused)
            request[BODY] = body
            response = await handler(request)
        except EsError as e:
            response = error_reply(request, e)
        except web.HTTPNotFound:
            response = no_handler(request, opensearch=es.profile.opensearch)
        if es.faults.drop(after_processing=True):
            return _drop(request, record)
        return _finish(es, record, response)

    return apply


def _authenticate(es: StandIn, header: str | None, path: str) -> EsError | None:
    """None when security is off or the credentials are those of a user or an API key;
    else the 401 Elasticsearch answers (its reasons, as an 8.x cluster words them)."""
    if not (es.users or es.api_keys):
        return None
    if not header:
        return EsError(401, "security_exception",
                       f"missing authentication credentials for REST request [{path}]")  # fmt: skip
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            user, password = "", None  # type: ignore[assignment]
        if user in es.users and es.users[user] == password:
            if user in es.read_only and path.endswith("/_bulk"):
                return EsError(403, "security_exception", f"action [indices:data/write/bulk] "
                               f"is unauthorized for user [{user}] with effective roles "
                               "[viewer], this action is granted by the index privileges "
                               "[create_doc,write,all]")  # fmt: skip
            return None
        reason = f"unable to authenticate user [{user}] for REST request [{path}]"
        return EsError(401, "security_exception", reason)
    if scheme.lower() == "apikey" and value in es.api_keys:
        return None
    if scheme.lower() == "bearer" and f"Bearer {value}" in es.api_keys:
        return None
    return EsError(401, "security_exception", "unable to authenticate with provided "
                   "credentials and anonymous access is not allowed for this request")  # fmt: skip


async def _read_body(request: web.Request, record: RecordedRequest, limit: int) -> bytes:
    """The decoded body; raises BodyTooLarge (after draining it) past `limit` bytes."""
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
    record.body_bytes = size
    if size > limit:
        raise BodyTooLarge
    body = decode_body(b"".join(chunks), request.headers.get("Content-Encoding"), limit)
    record.decoded_bytes = len(body)
    return body


def _finish(es: StandIn, record: RecordedRequest, response: web.Response) -> web.Response:
    if response.status not in PROXY_STATUSES and response.status != 413:
        response.headers.update(es.profile.product_header)
    record.status = response.status
    return response


def _drop(request: web.Request, record: RecordedRequest) -> web.Response:
    record.status = None
    if request.protocol is not None:
        request.protocol.force_close()  # the response below is never written
    return web.Response(status=500)
