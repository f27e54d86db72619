"""The README documents what exists: its option tables come from the code's own tables."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_logship_options_table_is_current() -> None:
    table = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "options_table.py")],
        capture_output=True, text=True, check=True, cwd=ROOT,
    ).stdout  # fmt: skip
    readme = (ROOT / "README.md").read_text()
    assert table in readme, "README's logship options table is stale: run scripts/options_table.py"


def test_every_waitfor_option_and_env_var_is_documented() -> None:
    from agents.waitfor.config import OPTIONS, env_name

    readme = (ROOT / "README.md").read_text()
    for dest, flag, _, _ in OPTIONS:
        assert f"`{flag}" in readme, flag
        assert f"`{env_name(dest)}`" in readme, env_name(dest)
    assert "`WAITFOR_TARGETS`" in readme
