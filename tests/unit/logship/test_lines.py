import itertools
import random

import pytest

from agents.logship.lines import Line, LineSplitter


def split_all(data: bytes, chunks: list[int], *, max_bytes: int = 1 << 20, offset: int = 0):
    splitter = LineSplitter(offset, max_bytes=max_bytes)
    lines: list[Line] = []
    pos = 0
    for size in chunks:
        lines += splitter.feed(data[pos : pos + size])
        pos += size
    lines += splitter.feed(data[pos:])
    return lines, splitter


def test_lf_and_crlf() -> None:
    lines, _ = split_all(b"one\r\ntwo\nthree\r\n", [])
    assert [(ln.offset, ln.end, ln.text) for ln in lines] == [
        (0, 5, "one"), (5, 9, "two"), (9, 16, "three"),
    ]  # fmt: skip


def test_a_lone_cr_is_content() -> None:
    lines, _ = split_all(b"a\rb\n", [])
    assert lines[0].text == "a\rb"


def test_partial_last_line_waits_then_flushes() -> None:
    lines, splitter = split_all(b"done\nhalf a li", [])
    assert [ln.text for ln in lines] == ["done"]
    assert splitter.pending_bytes == 9
    assert splitter.feed(b"ne\n") == [Line(5, 17, "half a line")]
    splitter.feed(b"shutdown without newline")
    assert splitter.flush() == Line(17, 41, "shutdown without newline")
    assert splitter.flush() is None
    assert splitter.position == 41


def test_offsets_continue_from_a_resume_point() -> None:
    lines, _ = split_all(b"x\ny\n", [], offset=1000)
    assert [(ln.offset, ln.end) for ln in lines] == [(1000, 1002), (1002, 1004)]


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    lines, _ = split_all(b"ok \xff\xfe bad\n\xe2\x82\n", [])
    assert lines[0].text == "ok \ufffd\ufffd bad"
    assert lines[1].text == "\ufffd"


def test_multibyte_character_split_across_chunks() -> None:
    data = "grüße ✓\n".encode()
    for cut in range(1, len(data)):
        lines, _ = split_all(data, [cut])
        assert lines[0].text == "grüße ✓"


def test_empty_lines_and_nul_bytes() -> None:
    lines, _ = split_all(b"\n\n\x00x\n", [])
    assert [ln.text for ln in lines] == ["", "", "\x00x"]


def test_overlong_line_is_truncated_and_flagged() -> None:
    data = b"short\n" + b"A" * 50 + b"\nnext\n"
    lines, _ = split_all(data, [], max_bytes=10)
    assert lines[1] == Line(6, 57, "A" * 10, truncated=True)
    assert lines[2] == Line(57, 62, "next")


def test_overlong_line_across_many_chunks() -> None:
    data = b"B" * 100 + b"\nafter\n"
    lines, splitter = split_all(data, [7] * 20, max_bytes=16)
    assert lines[0] == Line(0, 101, "B" * 16, truncated=True)
    assert lines[1] == Line(101, 107, "after")
    assert splitter.pending_bytes == 0


def test_overlong_line_without_newline_at_drain() -> None:
    splitter = LineSplitter(0, max_bytes=8)
    assert splitter.feed(b"C" * 30) == []
    assert splitter.pending_bytes == 0  # memory stays bounded while skipping
    assert splitter.flush() == Line(0, 30, "C" * 8, truncated=True)


@pytest.mark.parametrize("seed", range(25))
def test_any_chunking_gives_the_same_lines(seed: int) -> None:
    rng = random.Random(seed)
    pieces = [b"\n", b"\r\n", b"abc", b"\xff", "é".encode(), b"x" * 40, b"\r"]
    data = b"".join(rng.choice(pieces) for _ in range(300))
    whole, s1 = split_all(data, [], max_bytes=32)
    chunks = [rng.randint(1, 17) for _ in range(len(data) // 9)]
    pieced, s2 = split_all(data, chunks, max_bytes=32)
    assert pieced == whole
    assert s1.flush() == s2.flush()
    covered = whole[-1].end if whole else 0
    assert all(a.end == b.offset for a, b in itertools.pairwise(whole))
    assert covered <= len(data)
