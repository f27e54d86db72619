"""The `logship` command: argv, env and YAML → Config → App.run() → exit code."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping, Sequence

from agents._log import Logger
from agents._options import OptionError
from agents.logship.memory import tune_malloc


def log_format_before_config(argv: Sequence[str], env: Mapping[str, str]) -> str:
    """The --log-format asked for (flag, then LOGSHIP_LOG_FORMAT), for errors said before a
    Config exists; as `auto` when none (or a bad one) is given."""
    from agents._options import pick

    given: str | None = None
    for i, arg in enumerate(argv):
        if arg == "--log-format" and i + 1 < len(argv):
            given = argv[i + 1]
        elif arg.startswith("--log-format="):
            given = arg.split("=", 1)[1]
    picked = pick(given, flag="--log-format", env=env, variable="LOGSHIP_LOG_FORMAT")
    asked = str(picked[0]).strip() if picked is not None else "auto"
    return resolve_log_format(asked if asked in ("json", "text") else "auto")


def resolve_log_format(asked: str) -> str:
    """auto: readable text for a person at a terminal, JSON lines for a log pipeline."""
    if asked != "auto":
        return asked
    try:
        return "text" if os.isatty(sys.stderr.fileno()) else "json"
    except (AttributeError, ValueError, OSError):  # no real stderr
        return "json"


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    tune_malloc()
    argv = sys.argv[1:] if argv is None else list(argv)
    env = os.environ if env is None else env
    if argv[:1] == ["check"]:  # `logship check [options] [--json]`: test, ship nothing
        from agents.logship.check import run

        return run(argv[1:], env)
    json_lines = log_format_before_config(argv, env) != "text"
    from agents.logship.config import load_config

    try:
        config = load_config(argv, env)
    except OptionError as exc:
        Logger("logship", json_lines=json_lines).error(f"configuration error: {exc}")
        return 2
    log = Logger("logship", json_lines=resolve_log_format(config.log_format) == "json",
                 min_level=config.log_level)  # fmt: skip
    from agents._stray import route_stray_errors

    undo = route_stray_errors(log)  # a thread's or a library's traceback is one event, too
    from agents.logship.app import App

    try:
        app = App(config, log, env)  # the build step: its blocking I/O before the loop
        return asyncio.run(app.run())
    except OptionError as exc:  # found while building (data dir, secrets files, patterns)
        log.error(f"configuration error: {exc}")
        return 2
    except Exception as exc:
        # A bug of ours, not a user mistake: say what and where, exit 1.
        from agents._stray import one_line_stack

        log.error("internal error", error=f"{type(exc).__name__}: {exc}", stack=one_line_stack(exc))
        return 1
    finally:
        undo()
