"""The `waitfor` command: argv and env → Config → run → exit code (or exec COMMAND)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence

from agents._log import Logger
from agents._options import OptionError
from agents.waitfor.checks import NotReady
from agents.waitfor.config import Config, load_config, wants_json
from agents.waitfor.report import Exit, Outcome, log_start, summarise

TYPE_CHECKING = False  # typing's own flag costs its import at start-up
if TYPE_CHECKING:
    from agents.waitfor.checks import Check
    from agents.waitfor.targets import Target

# How long the blocking first look may take in all before handing over to the runner.
FIRST_LOOK_BUDGET = 0.25


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


def first_look(config: Config, checks: list[tuple[Target, Check]], log: Logger) -> Exit | None:
    """Confirm already-ready dependencies with blocking probes, before any event loop exists.

    Dependencies are often up when an init container starts (a restarted pod, a scale-up);
    asyncio's import alone would double waitfor's start-up then. Only for checks with a
    blocking `probe_now` and only on plain "ready" runs; the first target that is not
    ready, or a look that outlasts FIRST_LOOK_BUDGET, hands over to the full runner,
    which starts afresh.
    """
    if config.invert or config.consecutive != 1:
        return None
    if not all(hasattr(check, "probe_now") for _, check in checks):
        return None
    started = time.monotonic()
    budget = min(FIRST_LOOK_BUDGET, config.attempt_timeout, config.timeout or FIRST_LOOK_BUDGET)
    outcomes = []
    for target, check in checks:
        remaining = budget - (time.monotonic() - started)
        if remaining <= 0:
            return None
        try:
            detail = check.probe_now(remaining)  # type: ignore[attr-defined]
        except (NotReady, OSError):
            if config.any:
                continue
            return None
        elapsed = time.monotonic() - started
        outcomes.append((Outcome(target, satisfied=True, attempts=1, elapsed=elapsed), detail))
        if config.any:
            break
    if not outcomes:
        return None
    log_start(config, log, len(checks))
    for outcome, detail in outcomes:
        log.info(
            "ready",
            target=outcome.target.display,
            elapsed=round(outcome.elapsed, 3),
            attempts=1,
            detail=detail,
        )
    reported = [o for o, _ in outcomes]
    if config.any:
        reported += [Outcome(t) for t, _ in checks if all(t is not o.target for o in reported)]
    return summarise(config, reported, log, elapsed=time.monotonic() - started)


def _which(program: str) -> str | None:
    import shutil

    return shutil.which(program)


def _run_loop(
    config: Config, checks: list[tuple[Target, Check]], log: Logger, started: float
) -> Exit:
    """Run the runner on a fresh loop and close it without waiting for resolver threads.

    asyncio.run would join the default executor at the end, and a getaddrinfo stuck on
    an unanswering nameserver would hold the exit (deadline or signal) for tens of
    seconds; loop.close() lets those threads go.
    """
    import asyncio

    from agents.waitfor.runner import Runner

    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(Runner(config, checks, log, started=started).run())
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


def run(config: Config, log: Logger) -> int:
    from agents.waitfor.checks import BuildContext, build_check
    from agents.waitfor.targets import parse_target

    ctx = BuildContext(log=log, resolv_conf=config.resolv_conf, kubeconfig=config.kubeconfig,
                       attempt_timeout=config.attempt_timeout)  # fmt: skip
    if config.command and _which(config.command[0]) is None:
        # Said before waiting, with the code exec would give it (as a shell does).
        missing = "/" not in config.command[0] or not os.path.exists(config.command[0])
        log.error("cannot run command", command=config.command[0],
                  error="not found" if missing else "not executable")  # fmt: skip
        return 127 if missing else 126
    try:
        targets = [parse_target(raw) for raw in config.targets]
        checks = [(target, build_check(target, ctx)) for target in targets]
    except OptionError as exc:
        log.error(f"configuration error: {exc}")
        return Exit.USAGE

    started = time.monotonic()
    try:
        code = first_look(config, checks, log)
        if code is None:
            code = _run_loop(config, checks, log, started)
    except Exception as exc:
        # A bug of ours, not a verdict on the targets: say so, exit 1 ("other failure").
        from agents._stray import one_line_stack

        log.error("internal error", error=f"{type(exc).__name__}: {exc}", stack=one_line_stack(exc))
        return Exit.FAILURE
    if code == Exit.READY and config.command:
        return exec_command(config.command, log)
    return int(code)


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    env = os.environ if env is None else env
    try:
        config = load_config(argv, env)
    except OptionError as exc:
        json_lines = wants_json(argv, env)
        Logger("waitfor", json_lines=json_lines).error(f"usage error: {exc}")
        if not json_lines:
            sys.stderr.write(
                "usage: waitfor [OPTIONS] TARGET... [-- COMMAND [ARGS...]]"
                " (waitfor --help for more)\n"
            )
        return 2
    log = Logger("waitfor", json_lines=config.json, min_level="error" if config.quiet else "info")
    return run(config, log)


def _stop_at_once(signum: int, frame: object) -> None:
    json_lines = wants_json(sys.argv[1:], os.environ)
    Logger("waitfor", json_lines=json_lines).warning(f"stopped by {signal.Signals(signum).name}")
    os._exit(128 + signum)


def entry() -> None:
    """Console-script entry point: a CLI that is done need not tear the interpreter down.

    Everything is flushed and every task has ended by now; skipping the interpreter's
    shutdown saves a tenth of waitfor's run time when its dependencies are already up.
    """
    # Until the runner installs its own handlers (and after a first look that needs
    # none), a signal stops waitfor at once with the shell's code, never a traceback.
    signal.signal(signal.SIGINT, _stop_at_once)
    signal.signal(signal.SIGTERM, _stop_at_once)
    code = main()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, OSError, ValueError):  # absent, closed, full
            stream.flush()
    os._exit(code)
