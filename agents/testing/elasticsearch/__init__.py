"""An Elasticsearch (and OpenSearch) stand-in on aiohttp: the parts of the REST API a log
shipper touches, and those a person uses to look at what arrived.

`StandIn` answers info/ping, `_bulk` and single-document writes (with ES's item semantics,
data streams and a dynamic mapping check), get by id, indices, mappings, health, index
templates, data streams, `_count`, `_search` (a small query language with an approximated
standard analyzer) and `_cat`; it plays Elasticsearch 7.17, 8 or 9, or OpenSearch 1, 2 or 3
(`flavors`: root document, media types, product header, built-in templates), and injects
faults (down, status codes, per-item failures,
latency, dropped connections, 413) from Python or over HTTP under `/_standin/`. Run it as
a process with `python -m agents.testing.elasticsearch --port 9200`.

The parsing and item rules are pure functions and a synchronous `Store`, so they can be
tested without a socket: `store` holds the `model` (indices, data streams) and applies the
`templates` and the bulk `items` rules. The server only moves bytes and applies faults:
`server` owns the lifecycle and the Python API, `middleware` records requests and applies
faults, `endpoints` answer the REST API, `control` takes orders under `/_standin/`.
"""

from agents.testing.elasticsearch.bulk import ACTIONS, BodyTooLarge, BulkOp, decode_body, parse_bulk
from agents.testing.elasticsearch.cli import main, parse_args, serve
from agents.testing.elasticsearch.defaults import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_VERSION,
    PRODUCT_HEADER,
)
from agents.testing.elasticsearch.errors import EsError, version_tuple
from agents.testing.elasticsearch.faults import PROXY_STATUSES, Faults, Rule, request_error
from agents.testing.elasticsearch.flavors import FLAVORS, Profile, profile
from agents.testing.elasticsearch.items import SHARDS, merge_doc
from agents.testing.elasticsearch.mapping import (
    IndexMapping,
    check_document,
    dynamic_type,
    looks_like_date,
)
from agents.testing.elasticsearch.media import (
    body_type_supported,
    check_media_types,
    compat_version,
)
from agents.testing.elasticsearch.model import DataStream, Doc, Index, index_name_problem
from agents.testing.elasticsearch.query import filter_path, parse_time, query_matches
from agents.testing.elasticsearch.server import StandIn
from agents.testing.elasticsearch.store import ItemFault, Store
from agents.testing.elasticsearch.strict_json import loads_strict
from agents.testing.elasticsearch.templates import BUILTIN_LOGS_TEMPLATE
from agents.testing.elasticsearch.wire import Handler, RecordedRequest

__all__ = [
    "ACTIONS",
    "BUILTIN_LOGS_TEMPLATE",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_VERSION",
    "FLAVORS",
    "PRODUCT_HEADER",
    "PROXY_STATUSES",
    "SHARDS",
    "BodyTooLarge",
    "BulkOp",
    "DataStream",
    "Doc",
    "EsError",
    "Faults",
    "Handler",
    "Index",
    "IndexMapping",
    "ItemFault",
    "Profile",
    "RecordedRequest",
    "Rule",
    "StandIn",
    "Store",
    "body_type_supported",
    "check_document",
    "check_media_types",
    "compat_version",
    "decode_body",
    "dynamic_type",
    "filter_path",
    "index_name_problem",
    "loads_strict",
    "looks_like_date",
    "main",
    "merge_doc",
    "parse_args",
    "parse_bulk",
    "parse_time",
    "profile",
    "query_matches",
    "request_error",
    "serve",
    "version_tuple",
]
