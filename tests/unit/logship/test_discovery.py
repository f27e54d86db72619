import os
from pathlib import Path

import pytest

from agents.logship.discovery import scan, static_root


@pytest.mark.parametrize(
    ("pattern", "root", "recursive"),
    [
        ("/var/log/app/*.log", "/var/log/app", False),
        ("/var/log/**/*.log", "/var/log", True),
        ("/var/log/*/current", "/var/log", True),
        ("/app.log", "/", False),
        ("logs/*.log", "logs", False),
        ("*.log", ".", False),
    ],
)
def test_static_root(pattern: str, root: str, recursive: bool) -> None:
    assert static_root(pattern) == (root, recursive)


def test_scan_globs_excludes_and_deep_directories(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "b").mkdir()
    for name in ("top.log", "a/one.log", "a/b/deep.log", "a/b/skip.gz", "a/debug.log"):
        (tmp_path / name).write_text("x\n")
    found, problems = scan([f"{tmp_path}/**/*.log"], [f"{tmp_path}/*/debug.log"])
    rel = sorted(os.path.relpath(p, tmp_path) for p in found)
    assert rel == ["a/b/deep.log", "a/one.log", "top.log"]
    assert problems == []


def test_scan_reports_dangling_links_and_skips_directories(tmp_path: Path) -> None:
    (tmp_path / "dir.log").mkdir()
    (tmp_path / "gone.log").symlink_to(tmp_path / "missing")
    (tmp_path / "loop.log").symlink_to(tmp_path / "loop.log")
    (tmp_path / "ok.log").write_text("x\n")
    found, problems = scan([f"{tmp_path}/*.log"], [])
    assert found == [str(tmp_path / "ok.log")]
    assert len(problems) == 2
    assert any("gone.log" in p for p in problems) and any("loop.log" in p for p in problems)


def test_scan_of_a_missing_directory_is_empty(tmp_path: Path) -> None:
    assert scan([f"{tmp_path}/nope/*.log"], []) == ([], [])
