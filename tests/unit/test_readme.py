"""The documentation says what exists: its option tables come from the code's own tables,
and the README links every page under docs/."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_logship_options_table_is_current() -> None:
    table = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "options_table.py")],
        capture_output=True, text=True, check=True, cwd=ROOT,
    ).stdout  # fmt: skip
    page = (ROOT / "docs" / "logship.md").read_text()
    assert table in page, "docs/logship.md's options table is stale: run scripts/options_table.py"


def test_every_waitfor_option_and_env_var_is_documented() -> None:
    from agents.waitfor.config import OPTIONS, env_name

    readme = (ROOT / "docs" / "waitfor.md").read_text()
    for dest, flag, _, _ in OPTIONS:
        assert f"`{flag}" in readme, flag
        assert f"`{env_name(dest)}`" in readme, env_name(dest)
    assert "`WAITFOR_TARGETS`" in readme


def test_the_readme_links_every_page_and_stays_short() -> None:
    readme = (ROOT / "README.md").read_text()
    for page in sorted((ROOT / "docs").glob("*.md")):
        assert f"(docs/{page.name})" in readme, page.name
    assert len(readme.splitlines()) < 400, (
        "the README starts where users start: move detail to docs/"
    )


def test_the_readme_target_table_has_every_kind_with_an_example_that_parses(
    tmp_path: Path,
) -> None:
    import shlex

    from agents.waitfor.targets import SCHEMES, parse_target

    readme = (ROOT / "README.md").read_text()
    rows = [line for line in readme.splitlines() if line.startswith("| `") and "| `" in line[3:]]
    examples = [shlex.split(row.rsplit("|", 2)[1].strip().strip("`"))[0] for row in rows]
    secret = tmp_path / "password"  # the example's mounted Secret
    secret.write_text("s3cret\n")
    examples = [e.replace("/etc/db/password", str(secret)) for e in examples]
    parsed = [parse_target(example) for example in examples]  # a TargetError fails the test
    shown = {target.scheme for target in parsed}
    modules = {SCHEMES[scheme] for scheme in shown}
    assert modules == set(SCHEMES.values()), "a kind of target has no example in the README"
    kinds = {t.host for t in parsed if t.scheme == "k8s"}
    assert {"job", "pods", "service", "deployment"} <= kinds
