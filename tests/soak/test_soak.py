"""The soak's 10-minute form (`make test-slow`): tests/soak/soak.py as its own process,
its verdict asserted. The full two hours are `make soak`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.netns import missing

ROOT = Path(__file__).resolve().parents[2]
MINUTES = 10
# The writing, then catching up (bounded by the driver at 5 minutes), the last harvest,
# the checks and the plots.
LIMIT = MINUTES * 60 + 600


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.timeout(LIMIT + 180)
def test_a_ten_minute_soak(tmp_path: Path) -> None:
    reason = missing()
    if reason:
        pytest.skip(reason)
    out = tmp_path / "soak"
    argv = [sys.executable, "-m", "tests.soak.soak", "--duration", f"{MINUTES}m", "--out", str(out)]
    driver = subprocess.Popen(argv, cwd=ROOT)
    try:
        code = driver.wait(timeout=LIMIT)
    finally:
        if driver.poll() is None:  # out of time, or the test interrupted
            driver.send_signal(signal.SIGTERM)  # as Ctrl-C: it takes its hosts down
            try:
                driver.wait(timeout=120)
            except subprocess.TimeoutExpired:
                driver.kill()
                driver.wait(timeout=10)
    summary = json.loads((out / "summary.json").read_text())
    plots = f"plots: {out / 'soak.png'}, {out / 'resources.png'}"
    print(f"\n{(out / 'summary.txt').read_text()}{plots}")
    assert code == 0 and summary["verdict"] == "pass", summary["failures"]
    assert (out / "soak.png").stat().st_size > 0 and (out / "resources.png").stat().st_size > 0
