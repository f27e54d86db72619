"""What answers at --es: Elasticsearch or OpenSearch, which version, and so how to talk to
it (the `Dialect`), from `GET /` at the first contact or from `--flavor`.

Elasticsearch answers `GET /` with `{"name", "cluster_name", "version": {"number", ...}}`
and, from 7.14 on, the header `X-Elastic-Product: Elasticsearch` on every 2xx (the official
client refuses a 2xx without it). OpenSearch answers the same document with
`version.distribution: "opensearch"` and no product header. A 2xx without `version.number`
is some other server (a proxy's page, another product): said once, by name, rather than
leave the operator to read 404s to `_bulk` as retries.

What differs on the wire, and where it is written down:

- Elasticsearch 8 and 9: `application/vnd.elasticsearch+json; compatible-with=8` (and
  `+x-ndjson` for bulk), as the 8.x client sends them; 9 takes 8 and 9, 8 takes 7 and 8
  ("REST API compatibility"). A built-in `logs-*-*` data stream template. `_has_privileges`.
- Elasticsearch 7.x: `application/json`, `application/x-ndjson`, as the 7.x client sends
  them (7.11+ would take the vnd types too and answer as 7: elastic/elasticsearch#63071).
  The built-in `logs-*-*` template (7.9+). `_has_privileges`.
- OpenSearch 1, 2, 3: `application/json`, `application/x-ndjson`: it knows no
  `vnd.elasticsearch` type, and a body sent so is a 406 (OpenSearch RestController;
  opensearch-py sends `application/json`, which it takes for `_bulk` too). No built-in data
  stream template: its "Data streams" page makes an index template with `data_stream: {}`
  first. No `_has_privileges` (the security plugin has other APIs).

Until `GET /` is answered (or when it is forbidden), plain `application/json` is sent:
every server above takes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ELASTICSEARCH, OPENSEARCH = "elasticsearch", "opensearch"
FLAVOR_CHOICES = ("auto", "elasticsearch", "elasticsearch-7", "opensearch")

PLAIN_JSON, PLAIN_NDJSON = "application/json", "application/x-ndjson"
COMPAT_JSON = "application/vnd.elasticsearch+json; compatible-with=8"
COMPAT_NDJSON = "application/vnd.elasticsearch+x-ndjson; compatible-with=8"


@dataclass(frozen=True)
class Dialect:
    """How logship talks to one kind of server."""

    name: str  # for logs: "Elasticsearch 8+", "OpenSearch", ...
    json: str  # Content-Type and Accept of JSON requests
    ndjson: str  # Content-Type of bulk requests
    builtin_data_streams: bool  # logs-*-* names become data streams without a template
    has_privileges_api: bool  # POST /_security/user/_has_privileges answers


ES8 = Dialect("Elasticsearch 8+", COMPAT_JSON, COMPAT_NDJSON, True, True)
ES7 = Dialect("Elasticsearch 7", PLAIN_JSON, PLAIN_NDJSON, True, True)
OPENSEARCH_DIALECT = Dialect("OpenSearch", PLAIN_JSON, PLAIN_NDJSON, False, False)
# Before the server is known, or when GET / is forbidden: what every server takes.
UNKNOWN = Dialect("unknown", PLAIN_JSON, PLAIN_NDJSON, True, True)
_BY_FLAG = {"elasticsearch": ES8, "elasticsearch-7": ES7, "opensearch": OPENSEARCH_DIALECT}


def dialect_of_flag(flavor: str) -> Dialect | None:
    """The dialect `--flavor` names; None for `auto` (found from GET /)."""
    return _BY_FLAG.get(flavor)


@dataclass(frozen=True)
class Cluster:
    product: str  # "Elasticsearch", "OpenSearch", or what the server says it is
    version: str
    name: str
    problem: str | None  # why this is not a server logship can ship to
    flavor: str = ""  # elasticsearch | opensearch | "" (unknown)

    @property
    def major(self) -> int | None:
        head = self.version.split(".")[0]
        return int(head) if head.isdigit() else None

    @property
    def dialect(self) -> Dialect:
        if self.problem or not self.flavor:
            return UNKNOWN
        if self.flavor == OPENSEARCH:
            return OPENSEARCH_DIALECT
        # 8 and 9 take compatible-with=8; 7 (and a future major, which may not take 8)
        # plain JSON, which means "this server's own version" to all of them
        return ES8 if self.major in (8, 9) else ES7 if self.major == 7 else UNKNOWN


def identify(status: int, body: Any, headers: dict[str, str]) -> Cluster | None:
    """The cluster behind a 2xx answer to `GET /`; None for any other status (the caller
    retries: the server may be starting, or the credentials refused)."""
    if not 200 <= status < 300:
        return None
    version = body.get("version") if isinstance(body, dict) else None
    number = version.get("number") if isinstance(version, dict) else None
    if not isinstance(number, str):
        shown = "no JSON" if not isinstance(body, dict) else f"keys {sorted(body)[:6]}"
        why = f"GET / answered {status} without version.number ({shown})"
        return Cluster("unknown", "", "", f"{why}: not Elasticsearch or OpenSearch")
    name = str(body.get("cluster_name", ""))
    assert isinstance(version, dict)
    if version.get("distribution") == OPENSEARCH:
        return Cluster("OpenSearch", number, name, None, OPENSEARCH)
    product = headers.get("x-elastic-product")
    head, _, rest = number.partition(".")
    minor = rest.partition(".")[0]
    release = (int(head), int(minor)) if head.isdigit() and minor.isdigit() else None
    if release is not None and release < (7, 0):
        why = f"Elasticsearch {number}: logship ships to Elasticsearch 7.17, 8, 9, OpenSearch 1-3"
        return Cluster("Elasticsearch", number, name, why, ELASTICSEARCH)
    if product != "Elasticsearch" and release is not None and release >= (7, 14):
        why = "GET / answered without X-Elastic-Product: Elasticsearch (every 7.14+ sends it)"
        return Cluster("unknown", number, name, why)
    return Cluster("Elasticsearch", number, name, None, ELASTICSEARCH)
