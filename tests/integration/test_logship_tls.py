"""logship to Elasticsearch over TLS: a TLS-terminating proxy (trustme certificate) in
front of the stand-in, so the client's CA handling is exercised for real."""

from __future__ import annotations

import asyncio
import ssl
import sys
import threading
import time
from pathlib import Path

import pytest
import trustme

from agents.testing.processes import LogshipProcess, StandInProcess
from tests.helpers import exactly_once, kubelet_secret, wait_for, write_lines

PY = sys.executable


class TlsProxy:
    """Accepts TLS on a loopback port and pipes the bytes to a plain upstream port."""

    def __init__(self, upstream_port: int, context: ssl.SSLContext) -> None:
        self.upstream_port, self.context = upstream_port, context
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0
        self.clients: set[asyncio.StreamWriter] = set()
        self.peers: list[bytes | None] = []  # each connection's client certificate (DER)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._client, "127.0.0.1", 0, ssl=self.context)
        )
        self.port = server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()
        server.close()
        self.loop.run_until_complete(server.wait_closed())
        self.loop.close()

    def cut(self) -> None:
        """Close every client connection (a server restarted with a new certificate)."""
        self.loop.call_soon_threadsafe(lambda: [w.close() for w in list(self.clients)])

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.clients.add(writer)
        tls = writer.get_extra_info("ssl_object")
        self.peers.append(tls.getpeercert(binary_form=True) if tls is not None else None)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, ssl.SSLError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self.clients.discard(writer)

    def __enter__(self) -> TlsProxy:
        self.thread.start()
        self.ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def tls(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return context, ca_file


def test_tls_with_ca_file_insecure_and_refusal(
    es: StandInProcess, tls: tuple[ssl.SSLContext, Path], tmp_path: Path
) -> None:
    context, ca_file = tls
    (tmp_path / "logs").mkdir()
    log = tmp_path / "logs" / "app.log"
    with TlsProxy(es.port, context) as proxy:
        url = f"https://localhost:{proxy.port}"
        write_lines(log, [f"verified {i}" for i in range(20)])
        shipper = LogshipProcess(url, tmp_path, "--ca-file", str(ca_file))
        code = shipper.start().stop()
        assert code == 0
        exactly_once(es.messages(), [f"verified {i}" for i in range(20)])

        # Without the CA the certificate is not trusted: nothing ships, it keeps retrying.
        other = tmp_path / "other"
        (other / "logs").mkdir(parents=True)
        write_lines(other / "logs" / "app.log", ["must not ship"])
        untrusted = LogshipProcess(url, other, "--drain-timeout", "2s")
        untrusted.start()

        def refused() -> bool:
            return any("certificate" in str(e.get("error", "")).lower() for e in untrusted.events())

        # It has tried, and been refused (a fixed sleep may end before a slow first try).
        wait_for(refused, what="the untrusted certificate to be refused")
        code = untrusted.stop()
        assert code == 0
        assert es.messages()["must not ship"] == 0

        # --insecure ships, and says it skips verification.
        insecure = LogshipProcess(url, other, "--insecure")
        code = insecure.start().stop()
        events = insecure.events()
        assert code == 0
        assert es.messages()["must not ship"] == 1
        assert any("TLS verification" in e["message"] for e in events)


def test_a_ca_rotated_in_its_secret_is_trusted_without_a_restart(
    es: StandInProcess, tmp_path: Path
) -> None:
    """The server's certificate is re-issued by a new CA and the Secret holding
    --ca-file is updated the kubelet's way: logship, refused meanwhile (the new
    certificate is not trusted yet), reads the new CA and ships every line once."""
    old_ca, new_ca = trustme.CA(), trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    old_ca.issue_cert("localhost").configure_cert(context)
    secret = tmp_path / "es-ca"
    kubelet_secret(secret, {"ca.crt": old_ca.cert_pem.bytes().decode()})
    (tmp_path / "logs").mkdir()
    log = tmp_path / "logs" / "app.log"
    with TlsProxy(es.port, context) as proxy:
        shipper = LogshipProcess(f"https://localhost:{proxy.port}", tmp_path, "--ca-file",
                                 str(secret / "ca.crt")).start()  # fmt: skip
        write_lines(log, [f"before {i}" for i in range(100)])
        wait_for(lambda: es.count() == 100, what="the first lines over TLS")
        new_ca.issue_cert("localhost").configure_cert(context)  # new handshakes only
        proxy.cut()
        write_lines(log, [f"between {i}" for i in range(100)])
        wait_for(lambda: shipper.logged("Elasticsearch unreachable"), what="the refusal")
        assert "not trusted" in shipper.logged("Elasticsearch unreachable")[0]["error"]
        kubelet_secret(secret, {"ca.crt": new_ca.cert_pem.bytes().decode()})
        write_lines(log, [f"after {i}" for i in range(100)])
        wait_for(lambda: es.count() == 300, timeout=40, what="every line after the rotation")
        assert shipper.logged("credentials reloaded", tls=True)
        assert shipper.stop() == 0
    exactly_once(es.messages(), [f"{w} {i}" for w in ("before", "between", "after")
                                 for i in range(100)])  # fmt: skip


def test_a_client_certificate_rotated_in_its_secret_is_used_without_a_restart(
    es: StandInProcess, tmp_path: Path
) -> None:
    """The server requires a client certificate and starts trusting only a new client CA;
    the Secret with --cert-file/--key-file is updated the kubelet's way: the next
    connections present the new certificate, and every line ships once."""
    server_ca, old_clients, new_clients = trustme.CA(), trustme.CA(), trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ca.issue_cert("localhost").configure_cert(context)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=old_clients.cert_pem.bytes().decode())

    def client_files(ca: trustme.CA) -> tuple[dict[str, str], bytes]:
        cert = ca.issue_cert("logship")
        pem = b"".join(b.bytes() for b in cert.cert_chain_pems).decode()
        files = {"tls.crt": pem, "tls.key": cert.private_key_pem.bytes().decode(),
                 "ca.crt": server_ca.cert_pem.bytes().decode()}  # fmt: skip
        return files, ssl.PEM_cert_to_DER_cert(cert.cert_chain_pems[0].bytes().decode())

    secret = tmp_path / "client-tls"
    files, old_der = client_files(old_clients)
    kubelet_secret(secret, files)
    (tmp_path / "logs").mkdir()
    log = tmp_path / "logs" / "app.log"
    with TlsProxy(es.port, context) as proxy:
        shipper = LogshipProcess(
            f"https://localhost:{proxy.port}", tmp_path, "--ca-file", str(secret / "ca.crt"),
            "--cert-file", str(secret / "tls.crt"), "--key-file", str(secret / "tls.key"),
        ).start()  # fmt: skip
        write_lines(log, [f"before {i}" for i in range(100)])
        wait_for(lambda: es.count() == 100, what="the first lines with the old certificate")
        assert proxy.peers and set(proxy.peers) == {old_der}
        context.load_verify_locations(cadata=new_clients.cert_pem.bytes().decode())
        files, new_der = client_files(new_clients)
        kubelet_secret(secret, files)
        wait_for(lambda: shipper.logged("credentials reloaded", tls=True), what="the reload")
        seen = len(proxy.peers)
        proxy.cut()  # connections in use when the files changed end too
        write_lines(log, [f"after {i}" for i in range(100)])
        wait_for(lambda: es.count() == 200, timeout=40, what="the lines after the rotation")
        assert shipper.stop() == 0
    assert proxy.peers[seen:] and set(proxy.peers[seen:]) == {new_der}
    exactly_once(es.messages(), [f"{w} {i}" for w in ("before", "after") for i in range(100)])


def test_multiline_event_is_released_by_its_timeout(es: StandInProcess, tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    write_lines(tmp_path / "logs" / "app.log", ["ERROR boom", "\tat a.B.c(B.java:1)"])
    shipper = LogshipProcess(es, tmp_path, "--multiline-preset", "java",
                             "--multiline-timeout", "300ms").start()  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not es.messages():
        time.sleep(0.1)
    released = dict(es.messages())  # before any drain: only the timeout can have done it
    code = shipper.stop()
    assert code == 0
    assert released == {"ERROR boom\n\tat a.B.c(B.java:1)": 1}
