"""Promises of the distribution itself: extras per image, entry points, the public surface."""

import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def project() -> dict:  # type: ignore[type-arg]
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_distribution_and_scripts(project: dict) -> None:  # type: ignore[type-arg]
    assert project["name"] == "pod-agents"
    assert project["requires-python"] == ">=3.11"
    assert project["scripts"] == {
        "waitfor": "agents.waitfor.cli:entry",
        "logship": "agents.logship.cli:main",
        "pod-agents": "agents.inject.cli:main",
    }


def test_inject_runs_where_users_run_kubectl_and_stays_out_of_the_images(project: dict) -> None:  # type: ignore[type-arg]
    extras = project["optional-dependencies"]
    assert any("ruamel.yaml" in d for d in extras["inject"])
    for image in ("waitfor", "logship"):
        assert not any("ruamel" in d for d in extras[image])


def test_waitfor_needs_only_the_standard_library(project: dict) -> None:  # type: ignore[type-arg]
    # its own resolver, HTTP/1.1 and HTTP/2: dnspython cost it 6.3 MiB, aiohttp 13, h2 1.6
    assert project["optional-dependencies"]["waitfor"] == []
    assert "aiohttp" in " ".join(project["optional-dependencies"]["standin"])
    assert project["dependencies"] == []  # the base install pulls nothing either image lacks


def test_dev_extra_has_the_test_tools(project: dict) -> None:  # type: ignore[type-arg]
    dev = " ".join(project["optional-dependencies"]["dev"])
    for tool in ("pytest", "pytest-timeout", "ruff", "trustme"):
        assert tool in dev


def test_logship_without_configuration_exits_2_naming_the_field(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from agents.logship.cli import main

    assert main([], {}) == 2
    err = capsys.readouterr().err
    assert (
        "missing required options: --path GLOB" in err
        and "--es URL" in err
        and "--data-dir DIR" in err
    )


def test_logship_extra_is_what_logship_imports_and_no_http_library(project: dict) -> None:  # type: ignore[type-arg]
    """Every module of agents.logship imported in a fresh interpreter, with the modules it
    imports on demand (YAML for --config, watchdog where inotify is missing, ISA-L for
    gzip): the distributions they pull in are exactly those of the logship extra."""
    import json
    import re

    from tests.helpers import run_python

    probe = (
        "import importlib, json, pkgutil, sys\n"
        "before = set(sys.modules)  # the interpreter's own (and site's .pth hooks)\n"
        "import agents.logship as root\n"
        "for m in pkgutil.walk_packages(root.__path__, 'agents.logship.'):\n"
        "    if not m.name.endswith('__main__'):\n"
        "        importlib.import_module(m.name)\n"
        "import yaml, watchdog.observers, isal.isal_zlib  # on demand\n"
        "import importlib.metadata as md\n"
        "owners = md.packages_distributions()\n"
        "top = {n.split('.')[0] for n in set(sys.modules) - before}\n"
        "print(json.dumps(sorted({d for n in top for d in owners.get(n, [])})))\n"
    )
    out = run_python(probe)
    imported = {d.lower() for d in json.loads(out)} - {"pod-agents"}
    wanted = project["optional-dependencies"]["logship"]
    assert imported == {re.split(r"[<>=\[ ]", r)[0].lower() for r in wanted}
    assert not imported & {"aiohttp", "elastic-transport", "elasticsearch", "urllib3"}
