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
    }


def test_waitfor_extra_carries_no_logship_dependencies(project: dict) -> None:  # type: ignore[type-arg]
    extra = " ".join(project["optional-dependencies"]["waitfor"]).lower()
    assert "elastic" not in extra and "watchdog" not in extra
    assert "aiohttp" in extra and "dnspython" in extra
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
    assert "--path: give at least one glob" in capsys.readouterr().err


def test_logship_extra_has_what_logship_imports(project: dict) -> None:  # type: ignore[type-arg]
    extra = " ".join(project["optional-dependencies"]["logship"]).lower()
    for package in ("aiohttp", "elastic-transport", "watchdog", "pyyaml"):
        assert package in extra
    # The client's API layer is not used at run time: the image does not carry it.
    assert "elasticsearch" not in extra
