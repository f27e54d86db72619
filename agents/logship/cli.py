"""The `logship` command: argv, env and YAML → Config → App.run() → exit code."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Mapping, Sequence

from agents._log import Logger
from agents._options import OptionError

M_ARENA_MAX = -8  # glibc's mallopt parameter


def limit_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives each thread that allocates its own 64 MiB arena; with gzip and file
    reads in worker threads, memory freed in one arena is not reused by another, and a
    catch-up peaked ~5 MiB higher. Two arenas (the main one and one for the threads) is
    what MALLOC_ARENA_MAX=2 would give; an explicit MALLOC_ARENA_MAX wins. A no-op off
    glibc."""
    if "MALLOC_ARENA_MAX" in os.environ or not sys.platform.startswith("linux"):
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):  # musl and others: no mallopt
        ctypes.CDLL(None).mallopt(M_ARENA_MAX, arenas)


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    limit_malloc_arenas()
    argv = sys.argv[1:] if argv is None else list(argv)
    env = os.environ if env is None else env
    json_lines = env.get("LOGSHIP_LOG_FORMAT", "json") != "text" and "text" not in argv
    from agents.logship.config import load_config

    try:
        config = load_config(argv, env)
    except OptionError as exc:
        Logger("logship", json_lines=json_lines).error(f"configuration error: {exc}")
        return 2
    log = Logger("logship", json_lines=config.log_format == "json", min_level=config.log_level)
    from agents._stray import route_stray_errors

    route_stray_errors(log)  # a thread's or a library's traceback is one event, too
    from agents.logship.app import App

    try:
        return asyncio.run(App(config, log, env).run())
    except OptionError as exc:  # found while building (data dir, secrets files, patterns)
        log.error(f"configuration error: {exc}")
        return 2
    except Exception as exc:
        # A bug of ours, not a user mistake: say what and where, exit 1.
        from agents._stray import one_line_stack

        log.error("internal error", error=f"{type(exc).__name__}: {exc}", stack=one_line_stack(exc))
        return 1
