"""The soak's verdict on resources, on made-up samples: a leak that every restart resets
must still fail (the ceilings), growth from life to life must fail (the reference period),
and a flat run must pass; a finished run can be judged again from its folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.soak import report
from tests.soak.plan import windows

DURATION = 7200.0
LIFE = 900.0  # s: a SIGTERM restart every 15 minutes, as the schedule has


def run(
    *,
    fds_per_minute: float = 0.0,
    rss_per_life: float = 0.0,
    tasks_per_minute: float = 0.0,
    hung_at: float | None = None,
) -> list[dict[str, Any]]:
    """Samples every 5 s of a logship restarted every LIFE seconds, 60 files open, with a
    burst of 4 bulk requests in flight now and then."""
    samples = []
    for i in range(int(DURATION / 5)):
        t = i * 5.0
        age = t % LIFE
        life = int(t // LIFE)
        busy = 4 if i % 37 == 0 else 0
        opened = 60 if age >= 5 else 0  # a life's first sample: no file open yet
        samples.append(
            {
                "t": t,
                "phase": "writing",
                "lag": 100,
                "files_open": opened,
                "fds": opened + 12 + busy + int(fds_per_minute * age / 60),
                "asyncio_tasks": opened + 9 + busy + int(tasks_per_minute * age / 60),
                "threads": 3 + (i % 3),
                "rss_mib": 40.0 + (i % 7) + rss_per_life * life,
                "registry_bytes": 20000 + (i % 5) * 100,
                "registry_entries": 150,
                "oldest_request_seconds": 0.3 * busy
                + (t - hung_at if hung_at is not None and t >= hung_at else 0.0),
            }
        )
    return report.with_rates(samples, lambda t: 0)


def judged(rows: list[dict[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    failures: list[str] = []
    return report.check_bounds(DURATION, rows, failures), failures


def test_a_flat_run_passes_every_bound() -> None:
    bounds, failures = judged(run())
    assert failures == []
    assert all(b["verdict"] == "pass" for b in bounds.values() if isinstance(b, dict))


def test_a_descriptor_leak_that_restarts_reset_fails_the_ceiling() -> None:
    """One descriptor a minute, every life from zero: each period peaks the same, so the
    reference comparison passes; the ceiling (floor + in-flight + 2) does not."""
    bounds, failures = judged(run(fds_per_minute=1.0))
    assert bounds["fds"]["verdict"] == "pass"  # what the comparison alone would say
    assert bounds["ceiling other_fds"]["verdict"] == "fail"
    assert any(f.startswith("descriptors besides the harvesters'") for f in failures)


def test_a_task_leak_that_restarts_reset_fails_the_ceiling() -> None:
    bounds, failures = judged(run(tasks_per_minute=1.0))
    assert bounds["ceiling other_tasks"]["verdict"] == "fail"
    assert [f for f in failures if "tasks" in f]


def test_a_request_hanging_past_the_request_timeout_fails() -> None:
    bounds, failures = judged(run(hung_at=DURATION - 120))
    assert bounds["ceiling oldest_request_seconds"]["verdict"] == "fail"
    assert any(f.startswith("oldest request awaiting its answer") for f in failures)


def test_growth_from_life_to_life_fails_the_reference_period() -> None:
    """10 MiB more in each life (40 MiB an hour): over the reference's peak + 10% + 8 MiB
    by the end. (Slower growth hides in that slack over a 2-hour run: docs/development.md.)"""
    bounds, failures = judged(run(rss_per_life=10.0))
    warm, ref_end = windows(DURATION)
    assert (warm, ref_end) == (1200.0, 4800.0)
    assert bounds["rss_mib"]["verdict"] == "fail"
    assert any(f.startswith("logship RSS (MiB): ") for f in failures)


def test_a_finished_run_judged_again(tmp_path: Path) -> None:
    rows = run(fds_per_minute=1.0)
    for row in rows:  # an older run: it did not sample the oldest request
        del row["oldest_request_seconds"]
    report.write_csv(tmp_path / "samples.csv", rows)
    summary = {
        "verdict": "fail",
        "failures": [
            "open descriptors: 99 after the reference window, over its bound 90",
            "lines: 3 missing",
        ],
        "duration_s": DURATION,
        "seed": 5,
        "lines": {},
        "bounds": {},
        "figures": {
            "lag_median": 100,
            "lag_max": 100,
            "indexed_per_s_mean": None,
            "indexed_per_s_max": None,
            "retries": 0,
            "bulk_requests": 0,
            "dead_lettered": 0,
            "caught_up_after_s": 1.0,
            "logship_lives": 8,
            "standin_rss_mib_max": 1,
            "harvests": 1,
            "harvest_seconds": 1,
            "rss_mib_min": 40,
            "rss_mib_median": 43,
            "rss_mib_max": 46,
            "fds_max": 90,
            "threads_max": 5,
            "asyncio_tasks_max": 80,
            "registry_bytes_max": 20400,
        },
        "faults": [
            {
                "kind": "sigterm",
                "at_s": 900.0,
                "until_s": 921.0,
                "max_lag": 0,
                "recovered_after_s": None,
                "detail": "exit 0",
            }
        ],
        "missing_metrics": {},
        "lives": [],
    }
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    text, passed = report.rejudge(tmp_path)
    assert not passed
    again = json.loads((tmp_path / "summary.json").read_text())
    assert "lines: 3 missing" in again["failures"]  # the other checks' verdicts stay
    assert not any(f.startswith("open descriptors: 99") for f in again["failures"])
    assert any(f.startswith("descriptors besides the harvesters'") for f in again["failures"])
    assert again["bounds"]["ceiling oldest_request_seconds"]["verdict"].startswith("n/a")
    assert "ceiling" in text and (tmp_path / "resources.png").stat().st_size > 0
    assert report.main([str(tmp_path)]) == 1


def test_a_copytruncate_loss_is_allowed_under_a_fault_only() -> None:
    """ct.log at 100 lines/s from t=10: a content of seqs 0-5999 truncated at 70 s, the
    next (6000-11999) at 130 s. An outage at 60-90 s recovered 20 s later."""
    outage = [{"kind": "outage", "at_s": 60.0, "until_s": 90.0, "recovered_after_s": 20.0}]
    failures: list[str] = []
    under = report.truncation_losses(10.0, [[0, 5999, 3000]], outage, failures)
    assert failures == [] and under["windows"][0]["under"] == ["outage"]
    calm = report.truncation_losses(10.0, [[6000, 11999, 3000]], outage, failures)
    assert calm["verdict"] == "fail" and calm["windows"][0]["under"] == []
    assert failures and failures[0].startswith("copytruncate loss: 3000 lines")
    assert report.bound_failure(failures[0])  # judged again by a rejudge
    small: list[str] = []
    report.truncation_losses(10.0, [[6000, 11999, 400]], outage, small)
    assert small == []  # fewer than RECOVERED: what caught up allows
