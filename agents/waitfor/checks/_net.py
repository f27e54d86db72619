"""Connecting to a host:port the way every network check needs: fresh, all addresses."""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl

from agents.waitfor.checks import NotReady

TYPE_CHECKING = False
if TYPE_CHECKING:
    from agents.waitfor.checks import BuildContext
    from agents.waitfor.targets import Target


def host_port(host: str, port: int) -> str:
    """`host:port` as an address is written: an IPv6 literal in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def describe_oserror(exc: OSError, where: str, *, tls: bool = False) -> str:
    """`tls`: the error ended a connect that includes a TLS handshake."""
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve {where.rpartition(':')[0] or where}: {exc.strerror}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate of {where} not trusted: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError) and exc.reason == "WRONG_VERSION_NUMBER":
        return f"TLS handshake with {where} failed: the server does not speak TLS ({exc.reason})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake with {where} failed: {exc.reason or exc}"
    if isinstance(exc, ConnectionRefusedError) or exc.errno == errno.ECONNREFUSED:
        return f"connection refused by {where}"
    if tls and isinstance(exc, ConnectionResetError) and exc.errno is None:
        # asyncio's "Connection lost": the peer closed before the handshake was done.
        return f"connection closed by {where} during the TLS handshake"
    if isinstance(exc, ConnectionResetError) or exc.errno == errno.ECONNRESET:
        return f"connection reset by {where}"
    if exc.errno is None and str(exc).startswith("Multiple exceptions"):
        # asyncio tried several addresses; all refused is the common case.
        if str(exc).count("Connect call failed") == str(exc).count("[Errno 111]"):
            return f"connection refused by {where} (every address)"
        return f"cannot connect to {where}: {str(exc).removeprefix('Multiple exceptions: ')}"
    return f"cannot connect to {where}: {exc.strerror or exc}"


async def open_stream(
    host: str,
    port: int,
    *,
    tls: ssl.SSLContext | None = None,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Resolve `host` now (no caching) and connect to any of its addresses.

    Happy Eyeballs tries the next address as soon as one fails, so `localhost`
    works whether the server listens on ::1, 127.0.0.1 or both.
    """
    where = host_port(host, port)
    try:
        reader, writer = await asyncio.open_connection(
            host,
            port,
            ssl=tls,
            server_hostname=host if tls else None,
            happy_eyeballs_delay=0.25,
        )
    except OSError as exc:
        if isinstance(exc, TimeoutError):
            raise
        raise NotReady(describe_oserror(exc, where, tls=tls is not None)) from None
    ends = writer.get_extra_info("sockname"), writer.get_extra_info("peername")
    if connected_to_itself(*ends):
        writer.transport.abort()
        raise NotReady(SELF_CONNECT.format(where=where))
    return reader, writer


# A connect to a local port in the ephemeral range where nothing listens can pick that
# very port as its own source port: the SYN meets itself and the connection "succeeds"
# (TCP simultaneous open). Go's net.Dial checks for it too (selfConnect). Waiting for
# localhost:40000, say, would then end "ready" while nothing listens.
SELF_CONNECT = "nothing listens on {where} (the connection was to itself)"


def connected_to_itself(sockname: object, peername: object) -> bool:
    return sockname is not None and sockname == peername


# How long a peer gets to acknowledge our goodbye. A plain TCP close is done at once; a
# TLS close waits for the peer's close_notify, which a hung or hostile server never sends.
CLOSE_GRACE = 0.1


async def close_stream(writer: asyncio.StreamWriter) -> None:
    """Close without letting the peer hold the attempt: its verdict is already made.

    An attempt cut short (its timeout, the deadline, a signal) drops the connection at
    once, so it ends when its time is up, not a grace period later.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        writer.transport.abort()
        return
    writer.close()
    closed = False
    try:
        async with asyncio.timeout(CLOSE_GRACE):  # not wait_for: see agents/_aio.py
            await writer.wait_closed()
        closed = True
    except (OSError, TimeoutError, ssl.SSLError):
        pass
    finally:
        if not closed:
            writer.transport.abort()


async def read_exactly(reader: asyncio.StreamReader, n: int, what: str) -> bytes:
    try:
        return await reader.readexactly(n)
    except asyncio.IncompleteReadError as exc:
        got = len(exc.partial)
        raise NotReady(f"connection closed after {got} bytes while reading {what}") from None
    except ConnectionResetError:
        raise NotReady(f"connection reset while reading {what}") from None


class BadHead(NotReady):
    """The answer is not an HTTP/1.x response head; `reason` says what came instead."""


async def read_response_head(reader: asyncio.StreamReader) -> tuple[int, str, dict[str, str]]:
    """An HTTP/1.x status line and headers → (status, reason, headers with lower-case
    names). A stranger is refused at its first bytes, not when its noise times out; the
    head may be at most the reader's limit (64 KiB)."""
    try:
        start = await reader.readexactly(5)
        if start != b"HTTP/":
            raise BadHead(f"Bad status line {_shorten(repr(start))}")
        head = start + await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            raise NotReady("server closed the connection without a response") from None
        raise BadHead("incomplete head") from None
    except asyncio.LimitOverrunError:
        raise BadHead("no end of its headers in 64 KiB") from None
    status_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
    version, _, rest = status_line.partition(" ")
    code_text, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/1.") or not (code_text.isdigit() and len(code_text) == 3):
        raise BadHead(_shorten(status_line))
    headers: dict[str, str] = {}
    for line in header_lines:
        name, colon, value = line.partition(":")
        if not colon:
            raise BadHead(_shorten(line))
        headers[name.strip().lower()] = value.strip()
    return int(code_text), reason, headers


def _shorten(message: str, limit: int = 160) -> str:
    """The peer's bytes on one short line."""
    text = " ".join(str(message).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


async def body_pieces(reader: asyncio.StreamReader, headers: dict[str, str], what: str):  # type: ignore[no-untyped-def]
    """An HTTP/1.1 body's pieces as they arrive: chunked, Content-Length or up to the
    close (`headers`: lower-case names). A caller that has enough stops iterating."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            size_line = b""
            try:
                size_line = await reader.readline()  # ValueError: no line end in 64 KiB
                size = int(size_line.split(b";")[0].strip() or b"x", 16)
            except ValueError:
                raise NotReady(f"a broken chunk in {what} ({size_line[:30]!r})") from None
            if size == 0:
                return
            data = await read_exactly(reader, size + 2, what)
            yield data[:-2]
    elif "content-length" in headers:
        try:
            left = int(headers["content-length"])
        except ValueError:
            raise NotReady(f"a broken Content-Length in {what}") from None
        while left > 0:
            piece = await read_exactly(reader, min(left, 65536), what)
            left -= len(piece)
            yield piece
    else:
        while chunk := await reader.read(65536):
            yield chunk


def tls_from_options(target: Target, ctx: BuildContext, *, always: bool) -> ssl.SSLContext | None:
    """The target's TLS options (ca, cert, key, insecure) → a context, or None.

    `always` for schemes that are TLS by name (https, rediss, amqps); otherwise a
    context is made only when one of the options asks for it.
    """
    opts = target.options
    insecure = opts.bool("insecure")
    ca, cert, key = opts.str("ca"), opts.str("cert"), opts.str("key")
    if not (always or ca or cert or key or insecure):
        return None
    if insecure:
        ctx.log.warning("TLS verification disabled", target=target.display)
    return tls_context(target.display, ca=ca, cert=cert, key=key, insecure=insecure)


class _EncryptedKey(Exception):
    pass


def _no_passphrase() -> str:
    # Never prompt on a terminal an init container does not have.
    raise _EncryptedKey


def tls_context(
    target_display: str,
    *,
    ca: str | None,
    cert: str | None,
    key: str | None,
    insecure: bool,
) -> ssl.SSLContext:
    """Verification on by default; files are read now so a bad path is a config error."""
    from agents.waitfor.targets import TargetError

    try:
        ctx = ssl.create_default_context(cafile=ca)
        if cert:
            ctx.load_cert_chain(cert, key, password=_no_passphrase)
        elif key:
            raise TargetError(target_display, "option 'key' needs 'cert' too")
    except _EncryptedKey:
        raise TargetError(
            target_display, "the client key is encrypted; give an unencrypted key file"
        ) from None
    except TargetError:
        raise
    except (OSError, ssl.SSLError, ValueError) as exc:  # ValueError: a NUL in a path
        which = "ca" if ca and not cert else "cert/key" if not ca else "ca or cert/key"
        raise TargetError(target_display, f"cannot load TLS {which}: {exc}") from None
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx
