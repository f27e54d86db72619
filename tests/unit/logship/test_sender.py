"""The sender's nodes and headers are what the official client would make of the same
options: URLs to nodes (ports, credentials, path prefixes), auth and media types. The
official client's transport (a dev dependency) is the reference the nodes are compared
with."""

from __future__ import annotations

import asyncio
import base64

import pytest

from agents._options import OptionError
from agents.logship.output.elasticsearch import ElasticsearchSender, SendFailed, nodes_of
from tests.unit.logship.loopback import Server, answer

URLS = ["http://es", "https://es.example:9243/prefix", "http://u%40x:p%3Aw@10.0.0.1:9200",
        "https://[::1]/", "http://es:9200/a/b/"]  # fmt: skip


def test_urls_become_nodes_as_the_official_transport_makes_them() -> None:
    from elastic_transport.client_utils import url_to_node_config

    nodes = nodes_of({"hosts": URLS, "verify_certs": False})
    for url, node in zip(URLS, nodes, strict=True):
        reference = url_to_node_config(url, use_default_ports_for_scheme=True)
        assert (node.scheme, node.host, node.port, node.prefix) == (
            reference.scheme, reference.host.strip("[]"), reference.port,
            reference.path_prefix,
        ), url  # fmt: skip
        assert node.authorization == reference.headers.get("authorization"), url
    # credentials in a URL: percent-decoded into that node's header, not into the others
    assert nodes[2].authorization == "Basic " + base64.b64encode(b"u@x:p:w").decode()
    assert nodes[0].authorization is None


def test_https_nodes_get_tls_and_check_host_names_but_not_ip_addresses() -> None:
    nodes = nodes_of({"hosts": ["https://a:9200", "https://10.0.0.2:9200", "http://b"]})
    named, ip, plain = nodes
    assert named.tls is not None and named.tls.check_hostname
    assert ip.tls is not None and not ip.tls.check_hostname
    assert plain.tls is None
    import ssl

    assert named.tls.verify_mode == ip.tls.verify_mode == ssl.CERT_REQUIRED
    insecure = nodes_of({"hosts": ["https://a:9200"], "verify_certs": False})[0].tls
    assert insecure is not None and insecure.verify_mode == ssl.CERT_NONE


def test_a_url_that_cannot_be_read_is_a_configuration_error_naming_es() -> None:
    with pytest.raises(OptionError, match=r"^--es: "):
        ElasticsearchSender({"hosts": ["http://es:notaport"]})


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            {"basic_auth": ("shipper", "s3:cret")},
            "Basic " + base64.b64encode(b"shipper:s3:cret").decode(),
        ),
        ({"api_key": "aWQ6a2V5"}, "ApiKey aWQ6a2V5"),
        ({"bearer_auth": "tok"}, "Bearer tok"),
        ({}, None),
    ],
)
def test_auth_headers_are_the_clients(options: dict[str, object], expected: str | None) -> None:
    sender = ElasticsearchSender({"hosts": ["http://127.0.0.1:9200"], **options})
    for headers in (sender._bulk_headers, sender._json_headers):
        assert sender._with_auth(headers).get("authorization") == expected


@pytest.mark.parametrize(
    ("flavor", "ndjson", "json"),
    [("auto", "application/x-ndjson", "application/json"),  # until GET / says
     ("elasticsearch", "application/vnd.elasticsearch+x-ndjson; compatible-with=8",
      "application/vnd.elasticsearch+json; compatible-with=8"),
     ("elasticsearch-7", "application/x-ndjson", "application/json"),
     ("opensearch", "application/x-ndjson", "application/json")],
)  # fmt: skip
def test_bulk_headers_per_flavor_and_gzip_when_compressing(
    flavor: str, ndjson: str, json: str
) -> None:
    plain = ElasticsearchSender({"hosts": ["http://127.0.0.1:9200"], "flavor": flavor})
    assert plain._bulk_headers["content-type"] == ndjson
    assert plain._bulk_headers["accept"] == plain._json_headers["content-type"] == json
    assert "content-encoding" not in plain._bulk_headers
    gzipped = ElasticsearchSender({"hosts": ["http://127.0.0.1:9200"], "http_compress": True})
    assert gzipped._bulk_headers["content-encoding"] == "gzip"
    assert "content-encoding" not in gzipped._json_headers  # templates go uncompressed


def test_bodies_gzip_with_isal_and_with_zlib_where_isal_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import gzip
    import zlib

    from isal import isal_zlib

    from agents.logship.output.elasticsearch import deflater, gzip_body

    doc = b'{"message":"GET /items/%d 200 %d ms","log":{"offset":%d}}\n'
    docs = b"".join(doc % (i, i % 97, i * 60) for i in range(2000))
    pieces: list[bytes | memoryview] = [b'{"create":{}}\n', memoryview(docs)]
    joined = b"".join(bytes(p) for p in pieces)
    assert deflater() is isal_zlib
    packed = gzip_body(pieces)
    assert gzip.decompress(packed) == joined and len(packed) < len(joined) / 5
    monkeypatch.setitem(__import__("sys").modules, "isal", None)  # the import fails
    assert deflater() is zlib
    assert gzip.decompress(gzip_body(pieces)) == joined


def test_the_sender_loads_no_http_library() -> None:
    """logship's own client: neither aiohttp nor the official transport (~19 MiB) is
    imported by a sender that has sent a request."""
    from tests.helpers import run_python

    probe = (
        "import asyncio, sys\n"
        "from agents.logship.output.elasticsearch import ElasticsearchSender\n"
        "s = ElasticsearchSender({'hosts': ['http://127.0.0.1:1', 'https://u:p@es.example/x']})\n"
        "print(asyncio.run(s.ping()))\n"
        "heavy = ('elastic_transport', 'aiohttp', 'urllib3', 'requests', 'certifi')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = run_python(probe)
    assert out.split("\n")[:2] == ["False", "[]"]


def test_bad_urls_are_refused_at_start_without_the_password() -> None:
    with pytest.raises(OptionError, match=r"^--es: cannot read 'http://u:\*\*\*@es:99999'"):
        ElasticsearchSender({"hosts": ["http://u:secret@es:99999"]})
    with pytest.raises(OptionError, match=r"needs http\(s\)://HOST\[:PORT\]"):
        ElasticsearchSender({"hosts": ["http://:9200"]})


def test_credentials_with_a_line_break_are_refused_not_sent() -> None:
    with pytest.raises(OptionError, match="line break"):
        ElasticsearchSender({"hosts": ["http://es:9200"], "api_key": "abc\r\nX-Evil: 1"})


def peer(status: int, after: float | None) -> Server:
    """A peer answering `GET /` with `status` after `after` s (None: never) and each bulk
    request with an empty success, on keep-alive connections."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await srv.read_request(reader)
            if srv.heads[-1].startswith(b"GET / "):
                await asyncio.sleep(3600 if after is None else after)
                wire = answer(status, b'{"error":"no"}', "content-type: application/json")
            else:
                wire = answer(200, b'{"errors":false,"took":0,"items":[]}',
                              "content-type: application/json")  # fmt: skip
            writer.write(wire)
            await writer.drain()

    srv = Server(handler)
    return srv


def request_lines(srv: Server) -> list[str]:
    return [head.split(b"\r\n", 1)[0].decode() for head in srv.heads]


@pytest.mark.asyncio
async def test_bulk_requests_in_flight_share_one_get_to_a_silent_peer() -> None:
    """Bulk requests that come while `GET /` is asked wait for that one: to a peer that
    never answers, each gives up with it after one --request-timeout, instead of asking
    in turn and the last waiting 4 timeouts."""
    async with peer(200, None) as srv:
        sender = ElasticsearchSender({"hosts": [srv.url], "request_timeout": 0.5})
        try:
            sends = [sender.send(b'{"create":{}}\n{}\n') for _ in range(4)]
            outcomes = await asyncio.gather(*sends, return_exceptions=True)
            assert all(isinstance(o, SendFailed) and "within 0.5s" in str(o) for o in outcomes), (
                outcomes
            )
            assert request_lines(srv) == ["GET / HTTP/1.1"], "each asked GET / again"
            assert sender.oldest_request() == 0.0
            # the next one asks again: a failed GET / settled nothing
            with pytest.raises(SendFailed):
                await sender.send(b'{"create":{}}\n{}\n')
            assert request_lines(srv) == ["GET / HTTP/1.1"] * 2
        finally:
            await sender.close()


@pytest.mark.asyncio
async def test_bulk_requests_in_flight_share_the_answer_that_settles_the_dialect() -> None:
    """A 403 to `GET /` settles plain JSON for every bulk request that waited for it; none
    asks again."""
    async with peer(403, 0.2) as srv:
        sender = ElasticsearchSender({"hosts": [srv.url], "request_timeout": 5})
        try:
            answers = await asyncio.gather(*(sender.send(b'{"create":{}}\n{}\n') for _ in range(4)))
            assert [a.status for a in answers] == [200] * 4
            assert sorted(request_lines(srv)) == ["GET / HTTP/1.1"] + ["POST /_bulk HTTP/1.1"] * 4
            assert sender.met and sender.cluster is None
        finally:
            await sender.close()
