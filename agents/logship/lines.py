"""Bytes from a file → lines with their offsets. Pure: no I/O, testable with any chunking.

A line is what ends in `\n` (a `\r` before it is dropped too). The bytes after the last
newline wait for more data; at drain they are shipped as they are. A line longer than
`max_bytes` keeps its first `max_bytes` and is flagged `truncated`; the rest, up to its
newline, is skipped. Invalid UTF-8 is replaced (U+FFFD), never an error.

`feed_runs()` is the hot path: complete lines come back as `LineRun`s, the file's bytes
as they are, so that a whole read can become documents without a Python object per line;
`feed()` hands out the same lines one `Line` each.
"""

from __future__ import annotations


class Line:
    __slots__ = ("end", "offset", "text", "truncated")

    def __init__(self, offset: int, end: int, text: str, truncated: bool = False) -> None:
        self.offset = offset  # where the line starts in the file
        self.end = end  # just past its newline: where the next line starts
        self.text = text
        self.truncated = truncated

    def __repr__(self) -> str:
        flag = ", truncated" if self.truncated else ""
        return f"Line({self.offset}-{self.end}, {self.text[:40]!r}{flag})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Line) and (
            self.offset,
            self.end,
            self.text,
            self.truncated,
        ) == (other.offset, other.end, other.text, other.truncated)


class LineRun:
    """Complete lines, consecutive in the file: `data` is their bytes, each `\\n` included,
    starting at file offset `offset`. Lines longer than the splitter's `max_bytes` are in
    it whole; `lines()` truncates them."""

    __slots__ = ("data", "offset")

    def __init__(self, offset: int, data: bytes) -> None:
        self.offset, self.data = offset, data

    @property
    def end(self) -> int:
        return self.offset + len(self.data)

    def lines(self, max_bytes: int) -> list[Line]:
        out: list[Line] = []
        offset = self.offset
        for raw in self.data.split(b"\n")[:-1]:
            end = offset + len(raw) + 1
            if len(raw) > max_bytes:
                out.append(Line(offset, end, _decode(raw[:max_bytes]), truncated=True))
            else:
                out.append(Line(offset, end, _decode(raw)))
            offset = end
        return out

    def __repr__(self) -> str:
        count = self.data.count(b"\n")
        return f"LineRun({self.offset}-{self.end}, {count} lines)"


def _decode(raw: bytes) -> str:
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    return raw.decode("utf-8", "replace")


class LineSplitter:
    """Feed consecutive chunks of one file; get complete lines back."""

    def __init__(self, offset: int = 0, *, max_bytes: int = 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self._pending = bytearray()
        self._pending_offset = offset  # file offset of the first pending byte
        self._skipping = False  # inside an overlong line, after its kept part
        self._overlong = Line(0, 0, "")

    @property
    def position(self) -> int:
        """Offset just past everything fed so far."""
        return self._pending_offset + len(self._pending)

    @property
    def pending_bytes(self) -> int:
        return len(self._pending)

    def feed(self, data: bytes) -> list[Line]:
        lines: list[Line] = []
        for item in self.feed_runs(data):
            if isinstance(item, LineRun):
                lines += item.lines(self.max_bytes)
            else:
                lines.append(item)
        return lines

    def feed_runs(self, data: bytes) -> list[Line | LineRun]:
        """The lines `data` completes, in file order: the kept head of an overlong line
        (a `Line`, flagged truncated), then the complete lines (one `LineRun`)."""
        out: list[Line | LineRun] = []
        base = self._pending_offset + len(self._pending)  # file offset of data[0]
        start = 0
        if self._skipping:
            newline = data.find(b"\n")
            if newline < 0:
                self._pending_offset = base + len(data)
                return out
            # The tail of an overlong line ends here: emit its kept head.
            self._overlong.end = base + newline + 1
            out.append(self._overlong)
            self._skipping = False
            start = newline + 1
            self._pending_offset = base + start
        last = data.rfind(b"\n", start)
        if last >= 0:
            if self._pending:
                self._pending += data[start : last + 1]
                run = LineRun(self._pending_offset, bytes(self._pending))
                self._pending.clear()
            else:
                run = LineRun(base + start, data[start : last + 1])
            out.append(run)
            start = last + 1
            self._pending_offset = base + start
        rest = data[start:]
        if rest:
            self._pending += rest
            if len(self._pending) > self.max_bytes:
                self._start_overlong()
        return out

    def _line(self, offset: int, raw: bytes) -> Line:
        end = offset + len(raw)
        body = raw[:-1]  # without "\n"
        if len(body) > self.max_bytes:
            return Line(offset, end, _decode(body[: self.max_bytes]), truncated=True)
        return Line(offset, end, _decode(body))

    def _start_overlong(self) -> None:
        """The pending line passed max_bytes without a newline: keep its head, skip the rest."""
        kept = bytes(self._pending[: self.max_bytes])
        self._overlong = Line(self._pending_offset, -1, _decode(kept), truncated=True)
        self._pending_offset += len(self._pending)
        self._pending.clear()
        self._skipping = True

    def flush(self) -> Line | None:
        """At drain: the bytes after the last newline, as a line of their own."""
        if self._skipping:
            line = self._overlong
            line.end = self._pending_offset
            self._skipping = False
            return line
        if not self._pending:
            return None
        raw = bytes(self._pending)
        line = Line(self._pending_offset, self._pending_offset + len(raw), _decode(raw))
        if len(raw) > self.max_bytes:
            line.text, line.truncated = _decode(raw[: self.max_bytes]), True
        self._pending_offset += len(raw)
        self._pending.clear()
        return line
