"""Unusable TLS files are a configuration error when logship starts (the sender builds its
TLS contexts before the event loop), not a failure at the first request."""

from __future__ import annotations

from pathlib import Path

import pytest
import trustme

from agents._options import OptionError
from agents.logship.output.elasticsearch import ElasticsearchSender


def options(**extra: object) -> dict[str, object]:
    return {"hosts": ["https://127.0.0.1:9200"], "http_compress": True, **extra}


def test_a_ca_file_that_is_no_certificate_names_the_ca_flag(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    with pytest.raises(OptionError, match=r"^--ca-file: unusable for TLS"):
        ElasticsearchSender(options(ca_certs=str(bad)))


def test_a_bad_client_certificate_names_the_cert_flags(tmp_path: Path) -> None:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    (tmp_path / "cert.pem").write_text("garbage\n")
    with pytest.raises(OptionError, match=r"^--cert-file/--key-file: unusable for TLS"):
        ElasticsearchSender(options(ca_certs=str(tmp_path / "ca.pem"),
                                    client_cert=str(tmp_path / "cert.pem")))  # fmt: skip


def test_good_tls_files_make_the_context_and_nothing_connects_yet(tmp_path: Path) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("logship.test")
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    leaf.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "client.pem"))
    sender = ElasticsearchSender(options(ca_certs=str(tmp_path / "ca.pem"),
                                         client_cert=str(tmp_path / "client.pem")))  # fmt: skip
    (node,) = sender.nodes
    assert node.tls is not None and not node.tls.check_hostname  # 127.0.0.1: no name
    assert node.tls.cert_store_stats()["x509_ca"] >= 1  # the CA file is loaded
    assert node.idle == []


def test_an_idle_file_is_polled_less_and_less_but_never_while_draining() -> None:
    from agents.logship.decide import IDLE_POLL, POLL, poll_interval

    waits = [poll_interval(q, draining=False) for q in (0.0, 0.9, 1.0, 2.5, 3.0, 60.0, 1e6)]
    assert waits == [POLL, POLL, POLL * 2, POLL * 4, IDLE_POLL, IDLE_POLL, IDLE_POLL]
    assert poll_interval(1e6, draining=True) == POLL


def test_a_body_in_pieces_gzips_to_the_joined_body() -> None:
    import gzip

    from agents.logship.output.elasticsearch import gzip_body

    pieces: list[bytes | memoryview] = [b'{"create":{}}\n', memoryview(b'xx{"a":1}\nyy')[2:10]]
    assert gzip.decompress(gzip_body(pieces)) == b'{"create":{}}\n{"a":1}\n'
