"""What a soak ends with: the bounds its samples must keep after the warm-up, the figures,
and the files in its output folder (samples.csv, summary.json, summary.txt, soak.png,
resources.png)."""

from __future__ import annotations

import csv
import json
import math
import os
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from agents.logship.checkpoint import FORGET_AFTER
from agents.logship.config import OPTIONS
from tests.soak.plan import windows

if TYPE_CHECKING:
    from tests.soak.soak import Event, Soak


class Run(Protocol):
    """What the verdict and the pictures need of a run: the Soak itself, or one read back
    from its output folder (rejudge)."""

    duration: float
    seed: int
    failures: list[str]
    events: list[Event]


RECOVERED = 2000  # lines of lag: one second of the app's writing, what "caught up" means here

# After the warm-up, the highest value of the rest of the run may exceed the highest of
# the reference window (plan.windows: one whole period of the fault schedule, so the rest
# holds nothing the reference did not) by this much, no more. Set before the first run:
# RSS may grow by the allocator's slack (10%) and 8 MiB; descriptors by the sockets of
# --max-in-flight (4) and the files a rotation briefly holds twice; threads by 2; asyncio
# tasks (logship_asyncio_tasks: its supervised tasks, bulk requests in flight, scrapes
# being answered) by the 4 requests in flight and 2 scrapes.
BOUNDS: dict[str, tuple[str, Callable[[float], float]]] = {
    "rss_mib": ("logship RSS (MiB)", lambda ref: 0.10 * ref + 8),
    "fds": ("open descriptors", lambda ref: 8),
    "threads": ("threads", lambda ref: 2),
    "asyncio_tasks": ("asyncio tasks", lambda ref: 6),
    "registry_bytes": ("registry bytes", lambda ref: 0.10 * ref + 4096),
}

# Ceilings, for every sample of every life, from what logship is configured to hold (the
# soak runs it with the defaults) and the run's own floor (the least seen: what logship
# always holds, whatever it is doing). Beyond the floor, a sample may add only:
# - other descriptors (open descriptors minus files_open, one per harvester): a connection
#   per bulk request in flight, and a registry write's temporary file and a scan's
#   directory at the same moment;
# - asyncio tasks beyond the open files: a harvester has a task only while it reads (an
#   idle open file has none), so the fixed tasks are at most the least count of all tasks
#   seen; beyond those, a task per bulk request in flight and the two waiters of a drain;
# - threads: the default executor's workers (asyncio.to_thread), min(32, CPUs + 4);
# - files open: one per registry entry at most;
# - RSS: --queue-bytes of events and 40 MiB for the interpreter, the code and the bodies
#   in flight (as tests/faults/test_network.py allows);
# - a request awaiting its answer: --request-timeout, then it is let go.
FLOOR_OF = {"other_tasks": "asyncio_tasks"}  # a ceiling whose floor is another column's
DEFAULTS = {name: default for name, _, default, _ in OPTIONS}
MAX_IN_FLIGHT = int(DEFAULTS["max_in_flight"])  # type: ignore[call-overload]
QUEUE_MIB = int(DEFAULTS["queue_bytes"]) / 2**20  # type: ignore[call-overload]
OVERHEAD_MIB = 40.0
EXECUTOR_THREADS = min(32, (os.cpu_count() or 1) + 4)
REQUEST_TIMEOUT = float(DEFAULTS["request_timeout"])  # type: ignore[arg-type]
SCRAPE_SLACK = 2 * 5.0  # s: a timed-out request is let go within a sample interval or two
CEILINGS: dict[str, tuple[str, Callable[[float, int, int, float], float]]] = {
    "other_fds": (
        "descriptors besides the harvesters'",
        lambda floor, *_: floor + MAX_IN_FLIGHT + 2,
    ),
    "other_tasks": (
        "asyncio tasks besides the harvesters'",
        lambda floor, *_: floor + MAX_IN_FLIGHT + 2,  # floor: of asyncio_tasks (FLOOR_OF)
    ),
    "threads": ("threads", lambda floor, *_: floor + EXECUTOR_THREADS),
    "files_open": (
        "files open",
        lambda floor, files, keep, every: registry_entries_bound(files, keep, every),
    ),
    "rss_mib": ("logship RSS (MiB)", lambda floor, *_: QUEUE_MIB + OVERHEAD_MIB),
    "oldest_request_seconds": (
        "oldest request awaiting its answer (s)",
        lambda floor, *_: REQUEST_TIMEOUT + SCRAPE_SLACK,
    ),
}


def registry_entries_bound(files: int, keep: int, rotate_every: float) -> int:
    """The most entries logship's registry may hold at any time: the live files (the
    copytruncate one included), the rotated copies still on disk, and the files deleted
    (or truncated into a new identity) less than FORGET_AFTER ago, which logship keeps."""
    recent = math.ceil(FORGET_AFTER / rotate_every) + 2
    return (files + 1) + files * keep + (files + 1) * recent


def registry_warm_up(keep: int, rotate_every: float) -> float:
    """When the registry can be flat: a file deleted `keep` rotations after its own, then
    remembered FORGET_AFTER, plus a minute."""
    return (keep + 1) * rotate_every + FORGET_AFTER + 60


def truncated_away(soak: Soak, lines: dict[str, Any]) -> Callable[[float], int]:
    """Lines of the copytruncate file destroyed unread by a truncation before time t: they
    will never be indexed, so the lag leaves them out once the end tells how many. The
    writer truncates when it has written a content's last line, at its steady rate."""
    from tests.soak.soak import CT_RATE

    windows = lines.get("per_file", {}).get("ct", {}).get("windows", [])
    moments = [(soak.ct_started + (last + 1) / CT_RATE, lost) for _, last, lost in windows]
    return lambda t: sum(lost for at, lost in moments if at <= t)


# A copytruncate destroys the unread tail of the old content (docs/logship.md). With no
# fault under way logship is caught up, fewer than RECOVERED lines behind in all, so a
# truncation may then destroy at most that many; under a fault (from its start until the
# lag recovered) up to the whole content.


def truncation_losses(
    ct_started: float, windows: Sequence[Sequence[int]], faults: Sequence[dict[str, Any]],
    failures: list[str],
) -> dict[str, Any]:  # fmt: skip
    """Each copytruncate content that lost its unread tail: when, how much, under which
    fault; a loss beyond RECOVERED lines with no fault under way fails."""
    from tests.soak.soak import CT_RATE

    limit = RECOVERED
    seen = []
    for _first, last, lost in windows:
        at = ct_started + (last + 1) / CT_RATE  # the writer truncates after a content's last
        under = [
            f["kind"]
            for f in faults
            if f["at_s"] <= at
            and (f["recovered_after_s"] is None or at <= f["until_s"] + f["recovered_after_s"])
        ]
        seen.append({"at_s": round(at, 1), "lost": lost, "under": under})
        if not under and lost > limit:
            failures.append(
                f"copytruncate loss: {lost} lines destroyed unread at {at:.0f} s with no "
                f"fault under way (at most {limit}: logship was {lost / CT_RATE:.0f} s behind)"
            )
    calm = [w["lost"] for w in seen if not w["under"]]
    return {"calm_limit": limit, "calm_max": max(calm, default=0), "windows": seen,
            "verdict": "pass" if max(calm, default=0) <= limit else "fail"}  # fmt: skip


def with_rates(
    samples: Sequence[dict[str, Any]], lost: Callable[[float], int]
) -> list[dict[str, Any]]:
    """The samples with per-interval rates: lines/s acknowledged (logship's counters over
    all its lives) and indexed (the stand-in), retries in the interval."""
    rows = []
    for before, row in zip([None, *samples], samples, strict=False):
        row = dict(row)
        row["lag_with_lost"] = row["lag"]
        row["lag"] = row["lag"] - lost(row["t"])
        if before is not None and row["t"] > before["t"]:
            dt = row["t"] - before["t"]
            for name, out in (("events_acked_all", "acked_per_s"), ("indexed", "indexed_per_s")):
                if name in row and name in before:
                    row[out] = round((row[name] - before[name]) / dt, 1)
            if "retries_all" in row and "retries_all" in before:
                row["retries_in_interval"] = row["retries_all"] - before["retries_all"]
        rows.append(with_others(row))
    return rows


def with_others(row: dict[str, Any]) -> dict[str, Any]:
    """Descriptors and tasks besides the harvesters' (one each per open file)."""
    if row.get("files_open") is not None:
        for name, out in (("fds", "other_fds"), ("asyncio_tasks", "other_tasks")):
            if row.get(name) is not None:
                row[out] = row[name] - row["files_open"]
    return row


def values(rows: Sequence[dict[str, Any]], name: str, lo: float, hi: float) -> list[float]:
    return [r[name] for r in rows if lo <= r["t"] < hi and r.get(name) is not None]


def check_bounds(
    duration: float, rows: list[dict[str, Any]], failures: list[str], *, recorded: bool = False
) -> dict[str, Any]:
    """The two kinds of bound: the rest of the run against its reference period (growth
    from one logship life to the next, and the registry, which outlives them), and the
    ceilings every sample of every life must keep (growth within a life: with a restart
    every 15 minutes, a leak grows the same in every life, so comparing lives misses it).
    `recorded`: the samples of an earlier run, which may lack a column added since."""
    from tests.soak.soak import FILES, KEEP, ROTATE_EVERY

    warm, ref_end = windows(duration)
    results: dict[str, Any] = {"warm_up_s": warm, "reference_end_s": ref_end}
    for name, (label, slack) in BOUNDS.items():
        ref = values(rows, name, warm, ref_end)
        rest = values(rows, name, ref_end, math.inf)
        entry: dict[str, Any] = {"label": label}
        if name == "registry_bytes" and warm < registry_warm_up(KEEP, ROTATE_EVERY):
            entry["verdict"] = (
                f"n/a: the run is shorter than the registry's warm-up "
                f"({registry_warm_up(KEEP, ROTATE_EVERY):.0f} s: deleted "
                f"files are remembered {FORGET_AFTER:.0f} s)"
            )
        elif not ref or not rest:
            entry["verdict"] = "fail: no samples to compare"
            failures.append(f"{label}: no samples after the warm-up")
        else:
            bound = max(ref) + slack(max(ref))
            entry.update(reference_max=max(ref), bound=round(bound, 2), rest_max=max(rest))
            entry["verdict"] = "pass" if max(rest) <= bound else "fail"
            if max(rest) > bound:
                failures.append(
                    f"{label}: {max(rest):g} after the reference window, "
                    f"over its bound {bound:g} (reference max {max(ref):g})"
                )
        results[name] = entry
    limit = registry_entries_bound(FILES, KEEP, ROTATE_EVERY)
    top = max(values(rows, "registry_entries", 0, math.inf), default=0)
    verdict = "pass" if top <= limit else "fail"
    results["registry_entries"] = {
        "label": "registry entries",
        "bound": limit,
        "max": top,
        "verdict": verdict,
    }
    if top > limit:
        failures.append(f"the registry held {top} entries, over {limit}")
    for name, (label, ceiling) in CEILINGS.items():
        seen = [(r["t"], r[name]) for r in rows if r.get(name) is not None]
        entry = {"label": label}
        if not seen and recorded and not any(name in r for r in rows):
            entry["verdict"] = "n/a: the run did not sample it"
        elif not seen:
            entry["verdict"] = "fail: no samples"
            failures.append(f"{label}: no samples")
        else:
            floor = min(values(rows, FLOOR_OF.get(name, name), 0, math.inf))
            limit_value = ceiling(floor, FILES, KEEP, ROTATE_EVERY)
            t, top_value = max(seen, key=lambda s: s[1])
            entry.update(floor=floor, ceiling=round(limit_value, 2),
                         max=top_value, max_at_s=t)  # fmt: skip
            entry["verdict"] = "pass" if top_value <= limit_value else "fail"
            if top_value > limit_value:
                failures.append(
                    f"{label}: {top_value:g} at {t:.0f} s, over its ceiling {limit_value:g}"
                )
        results["ceiling " + name] = entry
    return results


def recoveries(soak: Run, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per fault: the most lag it caused and how long after its end the lag was back under
    RECOVERED lines (the most lag up to the next fault, when it never was)."""
    out = []
    starts = sorted(e.at for e in soak.events)
    for event in soak.events:
        after = [r for r in rows if r["t"] >= event.at]
        back = next(
            (r["t"] for r in after if r["t"] >= event.until and r["lag"] <= RECOVERED), None
        )
        end = back if back is not None else next((t for t in starts if t > event.at), math.inf)
        during = [r["lag"] for r in after if r["t"] <= end]
        out.append(
            {
                "kind": event.kind,
                "at_s": round(event.at, 1),
                "until_s": round(event.until, 1),
                "max_lag": max(during, default=0),
                "recovered_after_s": None if back is None else round(back - event.until, 1),
                "detail": event.detail,
            }
        )
    return out


def figures(soak: Soak, rows: list[dict[str, Any]]) -> dict[str, Any]:
    writing = [r for r in rows if r["phase"] == "writing"]
    lags = [r["lag"] for r in writing]
    indexed_rates = [r["indexed_per_s"] for r in writing if "indexed_per_s" in r]
    rss = [r["rss_mib"] for r in rows if r.get("rss_mib") is not None]
    standin = [r["standin_rss_mib"] for r in rows if r.get("standin_rss_mib") is not None]
    last = rows[-1] if rows else {}
    return {
        "lag_median": statistics.median(lags) if lags else None,
        "lag_max": max(lags, default=None),
        "indexed_per_s_mean": round(statistics.fmean(indexed_rates), 1) if indexed_rates else None,
        "indexed_per_s_max": max(indexed_rates, default=None),
        "rss_mib_min": min(rss, default=None),
        "rss_mib_median": round(statistics.median(rss), 2) if rss else None,
        "rss_mib_max": max(rss, default=None),
        "fds_max": max((r["fds"] for r in rows if r.get("fds") is not None), default=None),
        "threads_max": max((r["threads"] for r in rows if r.get("threads")), default=None),
        "asyncio_tasks_max": max(
            (r["asyncio_tasks"] for r in rows if r.get("asyncio_tasks")), default=None
        ),
        "registry_bytes_max": max(
            (r["registry_bytes"] for r in rows if r.get("registry_bytes")), default=None
        ),
        "retries": last.get("retries_all"),
        "bulk_requests": last.get("bulk_requests_all"),
        "dead_lettered": last.get("dead_lettered_all"),
        "standin_rss_mib_max": max(standin, default=None),
        "logship_lives": len(soak.lives),
        "harvests": soak.harvests,
        "harvest_seconds": round(soak.harvest_seconds, 1),
        "caught_up_after_s": None
        if soak.caught_up_after is None
        else round(soak.caught_up_after, 1),
    }


def write(soak: Soak, lines: dict[str, Any]) -> str:
    """Everything into the output folder → the summary text."""
    out = soak.out
    rows = with_rates(soak.samples, truncated_away(soak, lines))
    bounds = check_bounds(soak.duration, rows, soak.failures) if rows else {}
    summary = {
        "verdict": "pass" if not soak.failures else "fail",
        "failures": soak.failures,
        "duration_s": soak.duration,
        "seed": soak.seed,
        "lines": lines,
        "bounds": bounds,
        "figures": figures(soak, rows),
        "faults": recoveries(soak, rows),
        "ct_started_s": round(soak.ct_started, 3),
        "lives": [
            {
                "started_s": round(lf.started, 1),
                "ended_s": None if lf.ended is None else round(lf.ended, 1),
                "how": lf.how,
                "exit_code": lf.exit_code,
                "stderr": lf.shipper.stderr_path.name,
            }
            for lf in soak.lives
        ],
    }
    windows = lines.get("per_file", {}).get("ct", {}).get("windows", [])
    summary["copytruncate"] = truncation_losses(
        soak.ct_started, windows, summary["faults"], soak.failures
    )
    summary["verdict"] = "pass" if not soak.failures else "fail"
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    write_csv(out / "samples.csv", rows)
    text = summary_text(summary)
    (out / "summary.txt").write_text(text)
    if rows:
        plot(soak, rows, bounds, out)
    return text


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(names))
        writer.writeheader()
        writer.writerows(rows)


def summary_text(summary: dict[str, Any]) -> str:
    f, lines = summary["figures"], summary["lines"]
    out = [
        f"soak: {summary['verdict'].upper()} — {summary['duration_s'] / 60:.1f} minutes of "
        f"writing, seed {summary['seed']}",
    ]
    out += [f"  FAILED: {x}" for x in summary["failures"]]
    if lines:
        out.append(
            f"lines: {lines['written']:,} written, {lines['indexed']:,} indexed, "
            f"{lines['missing']} missing, {lines['doubled']} doubled; "
            f"{lines['lost_in_copytruncate_window']} lost in the copytruncate window "
            f"(allowed), {lines['rename_rotations']} rename and "
            f"{lines['copytruncate_rotations']} copytruncate rotations"
        )
        windows = lines["per_file"]["ct"]["windows"]
        if windows:
            shown = ", ".join(f"{w[0]}-{w[1]}: {w[2]}" for w in windows)
            out.append(f"copytruncate contents that lost their unread tail (seqs: lines): {shown}")
    ct = summary.get("copytruncate", {})
    if "calm_limit" in ct:
        faulted = [f"{w['lost']} ({'+'.join(w['under'])})" for w in ct["windows"] if w["under"]]
        out.append(
            f"  with no fault under way: {ct['verdict']} (most lost {ct['calm_max']}, "
            f"limit {ct['calm_limit']}); under a fault: {', '.join(faulted) or 'none'}"
        )
    out.append(
        f"logship RSS {f['rss_mib_min']}-{f['rss_mib_max']} MiB (median "
        f"{f['rss_mib_median']}), fds max {f['fds_max']}, threads max {f['threads_max']}, "
        f"asyncio tasks max {f['asyncio_tasks_max']}, "
        f"registry max {f['registry_bytes_max']} bytes"
    )
    out.append(
        f"lag: median {f['lag_median']} lines, max {f['lag_max']}; indexed "
        f"{f['indexed_per_s_mean']} lines/s on average, up to {f['indexed_per_s_max']}; "
        f"retries {f['retries']}, bulk requests {f['bulk_requests']}, dead-lettered "
        f"{f['dead_lettered']}; caught up {f['caught_up_after_s']} s after the last line"
    )
    out.append(
        f"logship lives {f['logship_lives']}; stand-in RSS max {f['standin_rss_mib_max']} "
        f"MiB; {f['harvests']} harvests, {f['harvest_seconds']} s in all"
    )
    out.append("ceilings, every sample of every life (the run's floor + what may come and go):")
    ceilings = {k: v for k, v in summary["bounds"].items() if k.startswith("ceiling ")}
    for b in ceilings.values():
        shown = {k: v for k, v in b.items() if k not in ("label", "verdict")}
        out.append(f"  {b['label']}: {b['verdict']} {shown}")
    out.append(
        "bounds after the warm-up (max of the rest <= max of the reference window, one "
        "period of the faults, + slack):"
    )
    for name, b in summary["bounds"].items():
        if isinstance(b, dict) and name not in ceilings:
            shown = {k: v for k, v in b.items() if k not in ("label", "verdict")}
            out.append(f"  {b['label']}: {b['verdict']} {shown}")
    out.append("faults (max lag; lag back under 2,000 lines after the fault's end):")
    for x in summary["faults"]:
        back = "never" if x["recovered_after_s"] is None else f"{x['recovered_after_s']} s"
        out.append(
            f"  {x['at_s']:>7} s {x['kind']:<8} until {x['until_s']:>7} s: max lag "
            f"{x['max_lag']:>6}, back in {back} {x['detail']}"
        )
    return "\n".join(out) + "\n"


# --- the pictures ------------------------------------------------------------------------------

MARKS = {
    "outage": {"color": "tab:red", "alpha": 0.18, "label": "Elasticsearch down"},
    "bad link": {"color": "tab:orange", "alpha": 0.18, "label": "bad link (200 ms, 3% loss)"},
}
LINES = {
    "sigterm": {"color": "tab:purple", "linestyle": "--", "label": "logship SIGTERM"},
    "sigkill": {"color": "black", "linestyle": "-", "label": "logship SIGKILL"},
}


def plot(soak: Run, rows: list[dict[str, Any]], bounds: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    minutes = soak.duration >= 300
    scale, unit = (60.0, "min") if minutes else (1.0, "s")

    def series(name: str) -> tuple[list[float], list[float]]:
        got = [(r["t"] / scale, r[name]) for r in rows if r.get(name) is not None]
        return [t for t, _ in got], [v for _, v in got]

    def mark(ax: Any) -> None:
        for event in soak.events:
            if event.kind in MARKS:
                style = {k: v for k, v in MARKS[event.kind].items() if k != "label"}
                ax.axvspan(event.at / scale, event.until / scale, lw=0, **style)
            elif event.kind in LINES:
                style = {k: v for k, v in LINES[event.kind].items() if k != "label"}
                ax.axvline(event.at / scale, lw=1, **style)
        if soak.duration:
            ax.axvline(soak.duration / scale, color="grey", lw=1, linestyle=":")
        ax.grid(alpha=0.3)

    def legend(fig: Any) -> None:
        handles = [Patch(color=s["color"], alpha=0.4, label=s["label"]) for s in MARKS.values()]
        handles += [
            Line2D([], [], color=s["color"], linestyle=s["linestyle"], label=s["label"])
            for s in LINES.values()
        ]
        handles.append(Line2D([], [], color="grey", linestyle=":", label="app stops writing"))
        handles.append(Patch(color="tab:green", alpha=0.15, label="reference window"))
        fig.legend(
            handles=handles,
            loc="upper center",
            ncol=5,
            fontsize=8,
            frameon=False,
            bbox_to_anchor=(0.5, 0.965),
        )

    def bound_line(ax: Any, name: str) -> None:
        b = bounds.get(name, {})
        if isinstance(b, dict) and "bound" in b and name in BOUNDS:
            warm, ref_end = windows(soak.duration)
            ax.axvspan(warm / scale, ref_end / scale, color="tab:green", alpha=0.07, lw=0)
            ax.hlines(
                b["bound"],
                ref_end / scale,
                rows[-1]["t"] / scale,
                color="tab:green",
                linestyle="--",
                lw=1,
                label=f"bound {b['bound']:g} ({b['verdict']})",
            )
            ax.legend(loc="lower right", fontsize=8)

    def ceiling_line(ax: Any, name: str) -> None:
        b = bounds.get("ceiling " + name, {})
        if "ceiling" in b:
            ax.axhline(b["ceiling"], color="tab:red", linestyle=":", lw=1,
                       label=f"ceiling {b['ceiling']:g} ({b['verdict']})")  # fmt: skip
            ax.legend(loc="lower right", fontsize=8)

    title = (
        f"logship soak: {soak.duration / 60:.0f} min at 2,000 lines/s, 21 files, "
        f"seed {soak.seed} — {'PASS' if not soak.failures else 'FAIL'}"
    )

    fig, axes = plt.subplots(4, 1, figsize=(12, 11), sharex=True)
    ax = axes[0]
    ax.plot(*series("rss_mib"), color="tab:blue", lw=1.2)
    ax.set_ylabel("logship RSS (MiB)")
    ax.set_ylim(bottom=0)
    bound_line(ax, "rss_mib")
    ceiling_line(ax, "rss_mib")
    ax = axes[1]
    ax.plot(*series("lag"), color="tab:brown", lw=1.2, label="lag")
    ax.set_ylabel("lag (lines written\nminus lines indexed)")
    ax.plot(
        *series("lag_with_lost"),
        color="tab:brown",
        lw=0.8,
        linestyle=":",
        label="with the lines copytruncate destroyed unread",
    )
    ax.legend(loc="upper right", fontsize=8)
    ax = axes[2]
    ax.plot(*series("indexed_per_s"), color="tab:green", lw=1.2, label="indexed (stand-in)")
    ax.plot(
        *series("acked_per_s"), color="tab:blue", lw=0.8, alpha=0.7, label="acknowledged (logship)"
    )
    ax.axhline(2000, color="grey", lw=0.8, linestyle="--", label="written: 2,000")
    ax.set_ylabel("throughput (lines/s)")
    ax.legend(loc="upper right", fontsize=8)
    ax = axes[3]
    t, r = series("retries_in_interval")
    ax.bar(t, r, width=5.0 / scale, color="tab:red", align="edge")
    ax.set_ylabel("retries per 5 s")
    ax.set_ylim(bottom=0)
    ax.set_xlabel(f"time ({unit})")
    for ax in axes:
        mark(ax)
    fig.suptitle(title, y=0.99)
    legend(fig)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    fig.savefig(out / "soak.png", dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(5, 1, figsize=(12, 12), sharex=True)
    panels = [
        ("fds", "open descriptors", "tab:blue"),
        ("threads", "threads", "tab:purple"),
        ("asyncio_tasks", "asyncio tasks", "tab:brown"),
        ("registry_bytes", "registry.json (bytes)", "tab:olive"),
        ("standin_rss_mib", "stand-in RSS (MiB)", "tab:grey"),
    ]
    others = {"fds": "other_fds", "asyncio_tasks": "other_tasks", "threads": "threads"}
    for ax, (name, label, color) in zip(axes, panels, strict=True):
        ax.plot(*series(name), color=color, lw=1.2)
        if name in ("fds", "asyncio_tasks"):
            ax.plot(*series(others[name]), color=color, lw=0.8, linestyle="--",
                    label="besides the harvesters' (one per open file)")  # fmt: skip
            ax.set_ylabel(f"{label}\n(dashed: besides\nthe harvesters')")
        else:
            ax.set_ylabel(label)
        ax.set_ylim(bottom=0)
        bound_line(ax, name)
        if name in others:
            ceiling_line(ax, others[name])
        mark(ax)
    entries = axes[3].twinx()
    entries.plot(*series("registry_entries"), color="tab:cyan", lw=0.8, linestyle="--")
    entries.set_ylabel("entries (dashed)")
    entries.set_ylim(bottom=0)
    axes[-1].set_xlabel(f"time ({unit})")
    fig.suptitle(title.replace("logship soak", "logship soak, resources"), y=0.99)
    legend(fig)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    fig.savefig(out / "resources.png", dpi=110)
    plt.close(fig)


# --- judging a finished run again ---------------------------------------------------------


@dataclass
class Recorded:
    duration: float
    seed: int
    failures: list[str]
    events: list[Event]


def bound_failure(text: str) -> bool:
    """Whether a failure is one check_bounds says (and a rejudge says again)."""
    labels = [label for label, _ in BOUNDS.values()] + [label for label, _ in CEILINGS.values()]
    again = ("the registry held", "copytruncate loss:")
    return text.startswith(again) or any(text.startswith(f"{x}:") for x in labels)


def number(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def rejudge(out: Path) -> tuple[str, bool]:
    """A finished run's samples judged by today's bounds: summary.json, summary.txt,
    samples.csv and the plots rewritten; the other checks' verdicts kept."""
    from tests.soak.soak import Event

    summary = json.loads((out / "summary.json").read_text())
    with (out / "samples.csv").open(newline="") as fh:
        rows = [
            with_others({k: number(v) for k, v in row.items() if v != ""})
            for row in csv.DictReader(fh)
        ]
    failures = [f for f in summary["failures"] if not bound_failure(f)]
    events = [Event(x["kind"], x["at_s"], x["until_s"], x["detail"]) for x in summary["faults"]]
    run = Recorded(float(summary["duration_s"]), int(summary["seed"]), failures, events)
    bounds = check_bounds(run.duration, rows, failures, recorded=True) if rows else {}
    summary.pop("missing_metrics", None)
    summary.update(bounds=bounds, faults=recoveries(run, rows))
    windows = summary["lines"].get("per_file", {}).get("ct", {}).get("windows", [])
    if "ct_started_s" in summary:
        summary["copytruncate"] = truncation_losses(
            summary["ct_started_s"], windows, summary["faults"], failures
        )
    else:
        summary["copytruncate"] = {"verdict": "n/a: the run did not say when ct.log began"}
    summary.update(verdict="pass" if not failures else "fail", failures=failures)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    write_csv(out / "samples.csv", rows)
    text = summary_text(summary)
    (out / "summary.txt").write_text(text)
    if rows:
        plot(run, rows, bounds, out)
    return text, not failures


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    parser = argparse.ArgumentParser(
        prog="python -m tests.soak.report",
        description="Judge a finished soak's samples again with today's bounds, rewriting "
        "its summary and plots (the exactly-once verdict is kept as it was).",
    )
    parser.add_argument("out", type=Path, help="the soak's output folder")
    args = parser.parse_args(argv)
    if not (args.out / "summary.json").is_file() or not (args.out / "samples.csv").is_file():
        parser.error(f"{args.out} holds no soak results (summary.json and samples.csv)")
    text, passed = rejudge(args.out)
    print(text, end="", file=sys.stdout)
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
