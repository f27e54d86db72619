"""The runner's rules, driven by scripted checks: no sockets, real (short) time."""

import asyncio
import io
import json
from collections.abc import Iterable

import pytest

from agents._log import Logger
from agents.waitfor.checks import NotReady
from agents.waitfor.config import Config
from agents.waitfor.runner import Exit, Runner
from agents.waitfor.targets import parse_target


class Scripted:
    """Answers from a script: True = up, a string = not ready for that reason."""

    def __init__(self, answers: Iterable[bool | str], then: bool | str = True) -> None:
        self.answers = list(answers)
        self.then = then
        self.calls = 0
        self.closed = False

    async def probe(self) -> str:
        self.calls += 1
        answer = self.answers.pop(0) if self.answers else self.then
        if answer is True:
            return "up"
        raise NotReady(str(answer))

    async def close(self) -> None:
        self.closed = True


class Hangs:
    async def probe(self) -> str:
        await asyncio.sleep(3600)
        return "never"

    async def close(self) -> None:
        pass


def config(**overrides: object) -> Config:
    values: dict[str, object] = {
        "targets": ("x",),
        "timeout": 2.0,
        "interval": 0.02,
        "min_interval": 0.001,
        "attempt_timeout": 1.0,
    }
    values.update(overrides)
    return Config(**values)  # type: ignore[arg-type]


def run(cfg: Config, checks: dict[str, object]) -> tuple[Exit, list[dict[str, object]]]:
    stream = io.StringIO()
    log = Logger("waitfor", json_lines=True, stream=stream)
    pairs = [(parse_target(raw), check) for raw, check in checks.items()]
    code = asyncio.run(Runner(cfg, pairs, log).run())  # type: ignore[arg-type]
    return code, [json.loads(line) for line in stream.getvalue().splitlines()]


def messages(events: list[dict[str, object]]) -> list[object]:
    return [e["message"] for e in events]


def test_ready_after_failures_logs_state_changes_not_attempts() -> None:
    check = Scripted(["refused"] * 20)
    code, events = run(config(), {"tcp://db:1": check})
    assert code == Exit.READY
    assert check.calls == 21
    assert messages(events) == ["waiting", "not ready", "ready", "summary", "all targets ready"]
    assert check.closed


def test_a_changed_reason_is_a_state_change() -> None:
    check = Scripted(["refused", "refused", "HTTP 503", "HTTP 503"])
    _, events = run(config(), {"tcp://db:1": check})
    errors = [e["error"] for e in events if e["message"] == "not ready"]
    assert errors == ["refused", "HTTP 503"]


def test_timeout_names_the_target_and_the_last_reason() -> None:
    code, events = run(
        config(timeout=0.3), {"tcp://ok:1": Scripted([]), "tcp://db:1": Scripted([], "refused")}
    )
    assert code == Exit.TIMEOUT
    final = events[-1]
    assert final["log.level"] == "error"
    assert "1 of 2 not ready: tcp://db:1 (refused)" in str(final["message"])
    summaries = {e["target"]: e for e in events if e["message"] == "summary"}
    assert summaries["tcp://ok:1"]["outcome"] == "ready"
    assert summaries["tcp://db:1"]["outcome"] == "not ready"
    assert summaries["tcp://db:1"]["last_error"] == "refused"
    assert int(summaries["tcp://db:1"]["attempts"]) > 3  # type: ignore[call-overload]


def test_deadline_bounds_a_check_that_never_answers() -> None:
    code, events = run(config(timeout=0.3, attempt_timeout=10), {"tcp://db:1": Hangs()})
    assert code == Exit.TIMEOUT
    # The attempt outlived what was left of the deadline: the reason says which limit hit.
    assert "no answer before the 0.3s deadline" in str(events[-1]["message"])


def test_attempt_timeout_is_reported_as_the_reason() -> None:
    code, events = run(config(timeout=0.5, attempt_timeout=0.05), {"tcp://db:1": Hangs()})
    assert code == Exit.TIMEOUT
    assert "no answer within 0.05s" in str(events[-1]["message"])


def test_consecutive_successes_reset_on_failure() -> None:
    check = Scripted([True, True, "flap", True, True], then="down again")
    code, events = run(config(consecutive=3, timeout=0.5), {"tcp://db:1": check})
    assert code == Exit.TIMEOUT
    assert check.calls > 6
    check = Scripted([True, True, "flap", True, True, True])
    code, events = run(config(consecutive=3), {"tcp://db:1": check})
    assert code == Exit.READY
    assert check.calls == 6
    assert [e.get("streak") for e in events if e["message"] == "passing"] == ["1/3", "1/3"]


def test_invert_waits_until_down() -> None:
    check = Scripted([True, True, True], then="connection refused")
    code, events = run(config(invert=True), {"tcp://db:1": check})
    assert code == Exit.READY
    assert check.calls == 4
    assert events[-1]["message"] == "all targets down"
    stuck = Scripted([], then=True)
    code, events = run(config(invert=True, timeout=0.2), {"tcp://db:1": stuck})
    assert code == Exit.TIMEOUT
    assert "still up: up" in str(events[-1]["message"])


def test_any_succeeds_on_the_first_ready_target() -> None:
    code, events = run(
        config(any=True), {"tcp://a:1": Scripted([], "refused"), "tcp://b:1": Scripted([])}
    )
    assert code == Exit.READY
    assert events[-1]["message"] == "a target ready"


def test_all_targets_are_checked_concurrently() -> None:
    slow = {f"tcp://h{i}:1": Scripted([]) for i in range(5)}

    class Slow(Scripted):
        async def probe(self) -> str:
            await asyncio.sleep(0.2)
            return await super().probe()

    checks = {name: Slow([]) for name in slow}
    loop_time: list[float] = []

    async def timed() -> None:
        start = asyncio.get_running_loop().time()
        pairs = [(parse_target(k), v) for k, v in checks.items()]
        log = Logger("waitfor", stream=io.StringIO())
        assert await Runner(config(), pairs, log).run() == Exit.READY  # type: ignore[arg-type]
        loop_time.append(asyncio.get_running_loop().time() - start)

    asyncio.run(timed())
    assert loop_time[0] < 0.6  # five 0.2 s checks in parallel, not 1 s in series


@pytest.mark.parametrize("signum_name", ["SIGTERM", "SIGINT"])
def test_signal_stops_at_once_with_shell_exit_code(signum_name: str) -> None:
    import os
    import signal

    signum = getattr(signal, signum_name)

    async def main() -> Exit:
        log = Logger("waitfor", stream=io.StringIO())
        runner = Runner(config(timeout=30), [(parse_target("tcp://db:1"), Hangs())], log)
        asyncio.get_running_loop().call_later(0.1, os.kill, os.getpid(), signum)
        return await asyncio.wait_for(runner.run(), 5)

    assert asyncio.run(main()) == 128 + signum


def test_a_crashing_check_is_an_internal_error_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bug in a check must not pass for a timeout (124) nor leak a raw traceback."""
    import agents.waitfor.checks as checks
    from agents.waitfor import cli

    class Broken(Scripted):
        async def probe(self) -> str:
            raise RuntimeError("boom in the check")

    monkeypatch.setattr(checks, "build_check", lambda target, ctx: Broken([]))
    code = cli.main(["--timeout", "5s", "http://127.0.0.1:1/"], {})
    err = capsys.readouterr().err
    assert code == 1
    assert "internal error" in err and "RuntimeError: boom in the check" in err
    assert not err.startswith("Traceback")


def test_a_reason_that_changes_every_attempt_is_not_a_line_per_attempt() -> None:
    reasons = [f"exit status 1: attempt {i}" for i in range(40)]
    flapping = [r for i in range(20) for r in (f"refused {i}", f"HTTP 503 {'x' * i}")]
    code, events = run(
        config(timeout=0.6, interval=0.005),
        {
            "tcp://a:1": Scripted(reasons, then="exit status 1: attempt 99"),
            "tcp://b:1": Scripted(flapping, then="refused"),
        },
    )
    assert code == Exit.TIMEOUT
    lines = [e for e in events if e["message"] == "not ready"]
    assert [e["target"] for e in lines].count("tcp://a:1") == 1  # only digits changed
    assert [e["target"] for e in lines].count("tcp://b:1") <= 2  # spaced, not 40
