"""The Kubernetes client's pure parts: where a request goes and what an error says."""

from __future__ import annotations

import asyncio
import ssl

from agents.waitfor.kube import Cluster, _parts, api_error, get_json


def test_api_paths_split_into_group_resource_and_namespace() -> None:
    assert _parts("/apis/batch/v1/namespaces/shop/jobs") == ("batch", "jobs", "shop")
    assert _parts("/api/v1/namespaces/default/pods") == ("", "pods", "default")


def test_a_403_prints_the_rule_for_the_core_group() -> None:
    cluster = Cluster(host="h", port=1, tls=ssl.create_default_context(), namespace="shop")
    error = api_error(403, {"message": "pods is forbidden"}, b"", cluster,
                      "/api/v1/namespaces/shop/pods", {"watch": "1"})  # fmt: skip
    assert error.reason.endswith(
        "to let waitfor watch pods in namespace shop, add to a Role bound to its service "
        'account: {apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"]}'
    )


def test_an_ipv6_api_server_gets_a_bracketed_host_header() -> None:
    """In an IPv6 cluster KUBERNETES_SERVICE_HOST is a bare address (fd00::1)."""
    seen: list[bytes] = []

    async def main() -> None:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            seen.append(await reader.readuntil(b"\r\n\r\n"))
            writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 14\r\n\r\n{"items": []}\n')
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(serve, "::1", 0)
        port = server.sockets[0].getsockname()[1]
        cluster = Cluster(host="::1", port=port, tls=None, namespace="x")  # type: ignore[arg-type]
        async with server:
            assert await get_json(cluster, "/api/v1/namespaces/x/pods", {}) == {"items": []}

    try:
        asyncio.run(main())
    except OSError as exc:  # no IPv6 on this machine's loopback
        import pytest

        pytest.skip(f"no IPv6 loopback here: {exc}")
    assert b"Host: [::1]:" in seen[0]
