import pytest

from agents.logship.lines import LineSplitter
from agents.logship.multiline import Joiner, MultilineError


def events(joiner: Joiner, text: str) -> list[str]:
    out = []
    for line in LineSplitter().feed(text.encode()):
        out += joiner.feed(line)
    out += joiner.flush()
    return [e.text for e in out]


JAVA = """2026-11-21 ERROR request failed
java.lang.IllegalStateException: boom
\tat com.example.App.handle(App.java:42)
\tat com.example.App.main(App.java:7)
Caused by: java.io.IOException: disk
\tat com.example.Disk.write(Disk.java:9)
\t... 3 more
2026-11-21 INFO next request
"""


def test_java_preset_joins_the_stack_trace_onto_its_message() -> None:
    got = events(Joiner.preset("java"), JAVA)
    assert len(got) == 3
    assert got[0] == "2026-11-21 ERROR request failed"
    assert got[1].startswith("java.lang.IllegalStateException: boom\n\tat com.example.App")
    assert got[1].endswith("\t... 3 more")
    assert got[2] == "2026-11-21 INFO next request"


PYTHON = """ERROR:app:handler crashed
Traceback (most recent call last):
  File "/app/x.py", line 3, in <module>
    main()
ZeroDivisionError: division by zero
INFO:app:still serving
"""


def test_python_preset_joins_the_traceback_onto_the_log_line() -> None:
    got = events(Joiner.preset("python"), PYTHON)
    assert got == [
        "ERROR:app:handler crashed\nTraceback (most recent call last):\n"
        '  File "/app/x.py", line 3, in <module>\n    main()\n'
        "ZeroDivisionError: division by zero",
        "INFO:app:still serving",
    ]


def test_negate_after_joins_lines_that_do_not_start_with_a_timestamp() -> None:
    joiner = Joiner(r"^\[", negate=True, match="after")
    got = events(joiner, "[1] a\ncontinued\nmore\n[2] b\n")
    assert got == ["[1] a\ncontinued\nmore", "[2] b"]


def test_match_before_joins_backslash_continuations_with_the_next_line() -> None:
    joiner = Joiner(r"\\$", match="before")
    got = events(joiner, "one \\\ntwo \\\nthree\nfour\n")
    assert got == ["one \\\ntwo \\\nthree", "four"]


def test_event_spans_the_offsets_of_its_lines() -> None:
    joiner = Joiner.preset("java")
    lines = LineSplitter().feed(b"msg\n\tat x\n\tat y\nnext\n")
    out = [e for line in lines for e in joiner.feed(line)] + joiner.flush()
    assert [(e.offset, e.end) for e in out] == [(0, 16), (16, 21)]


def test_max_lines_caps_and_flags_but_consumes_the_whole_range() -> None:
    joiner = Joiner.preset("java", max_lines=3)
    lines = LineSplitter().feed(b"msg\n" + b"\tat x\n" * 10 + b"next\n")
    out = [e for line in lines for e in joiner.feed(line)] + joiner.flush()
    assert out[0].text.count("\n") == 2 and out[0].truncated
    assert out[0].end == out[1].offset  # dropped lines are still consumed: no gap
    assert not out[1].truncated


def test_flush_releases_a_pending_event() -> None:
    joiner = Joiner.preset("java")
    for line in LineSplitter().feed(b"msg\n\tat x\n"):
        assert joiner.feed(line) == []
    assert joiner.pending
    assert [e.text for e in joiner.flush()] == ["msg\n\tat x"]
    assert not joiner.pending


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pattern": "("}, "multiline pattern"),
        ({"pattern": "x", "match": "around"}, "'after' or 'before'"),
        ({"pattern": "x", "max_lines": 0}, "at least 1"),
    ],
)
def test_bad_settings_are_named(kwargs: dict, message: str) -> None:  # type: ignore[type-arg]
    pattern = kwargs.pop("pattern")
    with pytest.raises(MultilineError, match=message):
        Joiner(pattern, **kwargs)


def test_unknown_preset() -> None:
    with pytest.raises(MultilineError, match="unknown multiline preset 'ruby'"):
        Joiner.preset("ruby")
