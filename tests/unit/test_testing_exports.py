"""The public names of the fakes in `agents.testing`, pinned the way httpx pins its own:
a name added or removed fails here until this list says so too."""

from __future__ import annotations

import json
import subprocess
import sys
import types

import pytest

import agents.testing.elasticsearch as elasticsearch
import agents.testing.elasticsearch.server as server
import agents.testing.processes as processes

ELASTICSEARCH = [
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
PROCESSES = ["LogshipProcess", "StandInProcess"]

MODULES = [
    pytest.param(elasticsearch, ELASTICSEARCH, id="agents.testing.elasticsearch"),
    pytest.param(processes, PROCESSES, id="agents.testing.processes"),
]


@pytest.mark.parametrize(("module", "expected"), MODULES)
def test_all_is_the_pinned_list(module: types.ModuleType, expected: list[str]) -> None:
    assert sorted(module.__all__) == sorted(expected)
    assert len(set(module.__all__)) == len(module.__all__), "a name is listed twice"
    for name in module.__all__:
        assert hasattr(module, name), f"{name} is in __all__ but missing"


def test_the_package_imports_only_what_it_exports() -> None:
    public = {
        name
        for name, value in vars(elasticsearch).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(ELASTICSEARCH)


def test_the_process_wrappers_define_only_what_they_export() -> None:
    defined = {
        name
        for name, value in vars(processes).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == processes.__name__
    }
    assert defined == set(PROCESSES)


def test_the_server_names_are_the_packages() -> None:
    for name in ("StandIn", "Handler", "RecordedRequest"):
        assert getattr(server, name) is getattr(elasticsearch, name)


def test_the_process_wrappers_import_neither_program() -> None:
    """They run the programs as processes: importing them costs only the standard library."""
    probe = (
        "import json, sys\n"
        "import agents.testing.processes\n"
        "heavy = ('aiohttp', 'asyncio', 'elastic_transport', 'agents.logship',\n"
        "         'agents.testing.elasticsearch')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(heavy))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=30, check=True
    )
    assert json.loads(result.stdout) == []
