"""What answers at --es: Elasticsearch, and which, from `GET /` at the first contact.

Elasticsearch answers `GET /` with `{"name", "cluster_name", "version": {"number", ...}}`
and, from 7.14 on, the header `X-Elastic-Product: Elasticsearch` on every 2xx (the official
client refuses a 2xx without it). A 2xx without `version.number` is some other server (a
proxy's page, another product): said once, by name, rather than leave the operator to read
404s to `_bulk` as retries. `version.distribution` names OpenSearch, which logship does
not speak yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Cluster:
    product: str  # "Elasticsearch", or what the server says it is
    version: str
    name: str
    problem: str | None  # why this is not an Elasticsearch logship can ship to


def identify(status: int, body: Any, headers: dict[str, str]) -> Cluster | None:
    """The cluster behind a 2xx answer to `GET /`; None for any other status (the caller
    retries: the server may be starting, or the credentials refused)."""
    if not 200 <= status < 300:
        return None
    version = body.get("version") if isinstance(body, dict) else None
    number = version.get("number") if isinstance(version, dict) else None
    if not isinstance(number, str):
        shown = "no JSON" if not isinstance(body, dict) else f"keys {sorted(body)[:6]}"
        return Cluster("unknown", "", "", f"GET / answered {status} without version.number "
                                          f"({shown}): not Elasticsearch")  # fmt: skip
    name = str(body.get("cluster_name", ""))
    distribution = version.get("distribution") if isinstance(version, dict) else None
    if distribution == "opensearch":
        return Cluster("OpenSearch", number, name, "OpenSearch: logship speaks Elasticsearch "
                                                   "8 and 9 only for now")  # fmt: skip
    product = headers.get("x-elastic-product")
    major = number.split(".")[0]
    if product != "Elasticsearch" and major.isdigit() and int(major) >= 8:
        why = "GET / answered without X-Elastic-Product: Elasticsearch (every 8.x sends it)"
        return Cluster("unknown", number, name, why)
    return Cluster("Elasticsearch", number, name, None)
