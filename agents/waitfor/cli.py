"""The `waitfor` command: argv and env → Config → run → exit code (or exec COMMAND)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
from collections.abc import Mapping, Sequence

from agents._log import Logger
from agents._options import OptionError
from agents.waitfor.config import Config, load_config


def exec_command(command: Sequence[str], log: Logger) -> int:
    """Replace this process with COMMAND, so signals and the exit code are the command's own.

    Python ignores SIGPIPE and SIGXFSZ at start-up and exec keeps ignored signals
    ignored; put them back so the command starts with a normal signal disposition.
    """
    for signum in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvp(command[0], list(command))
    except OSError as exc:
        log.error("cannot run command", command=command[0], error=exc.strerror)
        return 127 if isinstance(exc, FileNotFoundError) else 126
    raise AssertionError("unreachable")  # pragma: no cover


def run(config: Config, log: Logger) -> int:
    from agents.waitfor.checks import BuildContext, build_check
    from agents.waitfor.runner import Exit, Runner
    from agents.waitfor.targets import parse_target

    ctx = BuildContext(log=log, resolv_conf=config.resolv_conf)
    try:
        if config.command and shutil.which(config.command[0]) is None:
            raise OptionError(f"command {config.command[0]!r} not found or not executable")
        targets = [parse_target(raw) for raw in config.targets]
        checks = [(target, build_check(target, ctx)) for target in targets]
    except OptionError as exc:
        log.error(f"configuration error: {exc}")
        return Exit.USAGE

    async def main() -> Exit:
        return await Runner(config, checks, log).run()

    code = asyncio.run(main())
    if code == Exit.READY and config.command:
        return exec_command(config.command, log)
    return int(code)


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    env = os.environ if env is None else env
    try:
        config = load_config(argv, env)
    except OptionError as exc:
        json_lines = "--json" in argv or env.get("WAITFOR_JSON", "").lower() in ("1", "true")
        Logger("waitfor", json_lines=json_lines).error(f"usage error: {exc}")
        if not json_lines:
            sys.stderr.write(
                "usage: waitfor [OPTIONS] TARGET... [-- COMMAND [ARGS...]]"
                " (waitfor --help for more)\n"
            )
        return 2
    log = Logger("waitfor", json_lines=config.json, min_level="error" if config.quiet else "info")
    return run(config, log)
