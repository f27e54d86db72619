"""Which server the stand-in plays: Elasticsearch 7.17, 8.x or 9.x, or OpenSearch 1.x, 2.x or
3.x. One `Profile` holds every difference the stand-in models, each with where it is
written down; everything else is answered alike.

- `GET /`: ES names no distribution and has `build_flavor`; OpenSearch has
  `version.distribution: "opensearch"` and its own tagline (OpenSearch docs, "Get started";
  the root document of every OpenSearch release, `RestMainAction`).
- `X-Elastic-Product: Elasticsearch` on every answer from ES 7.14 on (Elastic's "product
  check" in elasticsearch-py 7.14+); OpenSearch never sends it.
- Media types: ES 8 and 9 take `application/vnd.elasticsearch+json; compatible-with=N` for
  their own major and the one before, and refuse others with a 400
  `media_type_header_exception` (ES docs, "REST API compatibility";
  RestCompatibleVersionHelper). ES 7.11+ takes the vnd types with any `compatible-with`
  and answers plain 7.x JSON (elastic/elasticsearch#63071, #65362: 7.x has no version
  check). OpenSearch knows no `vnd.elasticsearch` type: a body sent so is a 406
  "Content-Type header [...] is not supported" (RestController.dispatchRequest); an
  unknown Accept alone is ignored (AbstractRestChannel).
- The built-in `logs-*-*` data stream template: ES since 7.9 (the "logs" index template of
  the stack templates); OpenSearch has none ("Data streams": "create an index template
  with a `data_stream` object" first).
- Backing index names: `.ds-<stream>-<yyyy.MM.dd>-<generation>` in ES since 7.11,
  `.ds-<stream>-<generation>` in OpenSearch ("Data streams", backing indices).
- `_type: "_doc"` in write answers: ES 7.x and OpenSearch 1.x, which kept the typeless
  `_doc`; gone in ES 8 and OpenSearch 2.
- A bad document: `mapper_parsing_exception` until ES 8.8 and in OpenSearch,
  `document_parsing_exception` from ES 8.8.
- `_security/user/_has_privileges`: an ES API; OpenSearch's security plugin has none (the
  path has no handler there; 1.x may answer invalid_index_name_exception instead: not
  confirmed, the stand-in answers "no handler" for every major).
- "No handler": OpenSearch's body has no `status` and shows the path without its query
  (since 2.1, OpenSearch#3459). Its security plugin refuses credentials with a plain-text
  `Unauthorized` and `WWW-Authenticate: Basic realm="OpenSearch Security"`
  (HTTPBasicAuthenticator).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from agents.testing.elasticsearch.errors import version_tuple

ELASTICSEARCH, OPENSEARCH = "elasticsearch", "opensearch"
FLAVORS = (ELASTICSEARCH, OPENSEARCH)
# the newest release of each line the stand-in can play, for --version given as a major
LATEST = {
    (ELASTICSEARCH, 7): "7.17.25",
    (ELASTICSEARCH, 8): "8.15.0",
    (ELASTICSEARCH, 9): "9.0.0",
    (OPENSEARCH, 1): "1.3.19",
    (OPENSEARCH, 2): "2.17.0",
    (OPENSEARCH, 3): "3.0.0",
}
# (lucene, minimum wire compatibility, minimum index compatibility) per line, as each
# release's root document shows them
_ROOT_VERSIONS = {
    (ELASTICSEARCH, 7): ("8.11.3", "6.8.0", "6.0.0-beta1"),
    (ELASTICSEARCH, 8): ("9.11.1", "7.17.0", "7.0.0"),
    (ELASTICSEARCH, 9): ("10.1.0", "8.18.0", "8.0.0"),
    (OPENSEARCH, 1): ("8.10.1", "6.8.0", "6.0.0-beta1"),
    (OPENSEARCH, 2): ("9.11.1", "7.10.0", "7.0.0"),
    (OPENSEARCH, 3): ("10.1.0", "2.19.0", "2.0.0"),
}
ES_TAGLINE = "You Know, for Search"
OPENSEARCH_TAGLINE = "The OpenSearch Project: https://opensearch.org/"


@dataclass(frozen=True)
class Profile:
    """The server the stand-in answers as: a flavor and a version."""

    flavor: str
    version: str
    major: int
    minor: int

    @property
    def opensearch(self) -> bool:
        return self.flavor == OPENSEARCH

    @property
    def name(self) -> str:
        return f"{'OpenSearch' if self.opensearch else 'Elasticsearch'} {self.version}"

    @property
    def product_header(self) -> dict[str, str]:
        if self.opensearch or (self.major, self.minor) < (7, 14):
            return {}
        return {"X-Elastic-Product": "Elasticsearch"}

    @property
    def knows_vnd_types(self) -> bool:
        """Whether `application/vnd.elasticsearch+json` is a media type here at all."""
        return not self.opensearch

    @property
    def compatible_versions(self) -> tuple[int, int] | None:
        """The `compatible-with` versions accepted (lowest, highest); None: not checked
        (ES 7 serves 7 whatever is asked; OpenSearch does not know the types)."""
        if self.opensearch or self.major == 7:
            return None
        return (self.major - 1, self.major)

    @property
    def builtin_logs_template(self) -> bool:
        return not self.opensearch

    @property
    def item_type(self) -> dict[str, str]:
        """What write answers carry besides _index and _id: `_type` where types lingered."""
        return {"_type": "_doc"} if self.major == 7 or (self.opensearch and self.major == 1) else {}

    @property
    def parsing_error(self) -> str:
        if not self.opensearch and (self.major, self.minor) >= (8, 8):
            return "document_parsing_exception"
        return "mapper_parsing_exception"

    @property
    def has_privileges_api(self) -> bool:
        return not self.opensearch

    def backing_index(self, stream: str, when: float, generation: int) -> str:
        if self.opensearch:
            return f".ds-{stream}-{generation:06d}"
        day = dt.datetime.fromtimestamp(when, dt.UTC).strftime("%Y.%m.%d")
        return f".ds-{stream}-{day}-{generation:06d}"

    def root(self, node: str, cluster_name: str, cluster_uuid: str) -> dict[str, Any]:
        """The `GET /` document."""
        lucene, wire, index_compat = _ROOT_VERSIONS[(self.flavor, self.major)]
        version: dict[str, Any] = {"number": self.version}
        if self.opensearch:
            version = {"distribution": OPENSEARCH, **version, "build_type": "tar"}
        else:
            version |= {"build_flavor": "default", "build_type": "docker"}
        version |= {
            "build_hash": "0" * 40,
            "build_date": "2024-08-05T10:05:34.233336849Z",
            "build_snapshot": False,
            "lucene_version": lucene,
            "minimum_wire_compatibility_version": wire,
            "minimum_index_compatibility_version": index_compat,
        }
        return {
            "name": node,
            "cluster_name": cluster_name,
            "cluster_uuid": cluster_uuid,
            "version": version,
            "tagline": OPENSEARCH_TAGLINE if self.opensearch else ES_TAGLINE,
        }


def profile(flavor: str = ELASTICSEARCH, version: str | None = None) -> Profile:
    """The profile for a flavor and a version ("8.15.0", or a major alone: "2" is the
    newest 2.x); ValueError naming what the stand-in can play otherwise."""
    if flavor not in FLAVORS:
        raise ValueError(f"flavor must be elasticsearch or opensearch, not {flavor!r}")
    if version is None:
        version = LATEST[(flavor, 8 if flavor == ELASTICSEARCH else 2)]
    elif version.isdigit():
        if (flavor, int(version)) not in LATEST:
            raise ValueError(_supported(flavor, version))
        version = LATEST[(flavor, int(version))]
    major, minor = version_tuple(version)
    if (flavor, major) not in LATEST or (flavor == ELASTICSEARCH and major == 7 and minor < 17):
        raise ValueError(_supported(flavor, version))
    return Profile(flavor, version, major, minor)


def _supported(flavor: str, version: str) -> str:
    lines = "7.17, 8 and 9" if flavor == ELASTICSEARCH else "1, 2 and 3"
    return f"the stand-in plays {flavor} {lines}, not {version}"
