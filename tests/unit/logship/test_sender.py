"""The sender's node list and headers are what the official client would make of the same
options: URLs to nodes (ports, credentials, path prefixes), auth and media types."""

from __future__ import annotations

import base64

import pytest

from agents._options import OptionError
from agents.logship.output.elasticsearch import ElasticsearchSender, node_configs


def test_urls_become_nodes_with_default_ports_prefixes_and_url_credentials() -> None:
    nodes = node_configs({"hosts": ["http://es", "https://es.example:9243/prefix",
                                    "http://u%40x:p%3Aw@10.0.0.1:9200"],
                          "request_timeout": 7.5})  # fmt: skip
    assert [(n.scheme, n.host, n.port, n.path_prefix) for n in nodes] == [
        ("http", "es", 80, ""),
        ("https", "es.example", 9243, "/prefix"),
        ("http", "10.0.0.1", 9200, ""),
    ]
    assert all(n.request_timeout == 7.5 for n in nodes)
    # credentials in a URL: percent-decoded into that node's header, not into the others
    assert nodes[2].headers["authorization"] == "Basic " + base64.b64encode(b"u@x:p:w").decode()
    assert "authorization" not in nodes[0].headers


def test_tls_files_go_to_https_nodes_only() -> None:
    options = {"hosts": ["https://a:9200", "https://b:9200"], "verify_certs": False,
               "ca_certs": "/etc/ssl/ca.pem"}  # fmt: skip
    nodes = node_configs(options)
    assert all(n.ca_certs == "/etc/ssl/ca.pem" and n.verify_certs is False for n in nodes)


def test_a_url_the_transport_cannot_read_is_a_configuration_error_naming_es() -> None:
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
        assert headers.get("authorization") == expected


def test_bulk_headers_say_ndjson_compatible_with_8_and_gzip_when_compressing() -> None:
    plain = ElasticsearchSender({"hosts": ["http://127.0.0.1:9200"]})._bulk_headers
    gzipped = ElasticsearchSender({"hosts": ["http://127.0.0.1:9200"], "http_compress": True})
    assert plain["content-type"] == "application/vnd.elasticsearch+x-ndjson; compatible-with=8"
    assert plain["accept"] == "application/vnd.elasticsearch+json; compatible-with=8"
    assert "content-encoding" not in plain
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


def test_urls_are_checked_at_start_without_importing_the_transport() -> None:
    """The transport costs ~0.2 s of imports: they happen after the first scan, not in
    the constructor, which still refuses a URL the transport would (exit 2 at start)."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from agents.logship.output.elasticsearch import ElasticsearchSender\n"
        "ElasticsearchSender({'hosts': ['http://es:9200', 'https://u:p@es.example/x']})\n"
        "heavy = ('elastic_transport', 'aiohttp', 'urllib3')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60, check=True)  # fmt: skip
    assert done.stdout.strip() == "[]"
    with pytest.raises(OptionError, match=r"^--es: cannot read 'http://u:\*\*\*@es:99999'"):
        ElasticsearchSender({"hosts": ["http://u:secret@es:99999"]})
    with pytest.raises(OptionError, match=r"needs http\(s\)://HOST\[:PORT\]"):
        ElasticsearchSender({"hosts": ["http://:9200"]})
