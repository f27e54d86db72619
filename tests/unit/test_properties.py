"""Property tests (hypothesis): whatever the input, the parsers and joiners answer with a
result or with their own documented error — never another exception — and keep their
invariants. Each property names what it protects."""

from __future__ import annotations

import json
import string
from collections.abc import Callable

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from agents._log import Logger
from agents._options import OptionError
from agents.logship.bulk import ItemResult, Verdict, classify_response, stored_summary
from agents.logship.lines import Line, LineSplitter
from agents.logship.multiline import PRESETS, Joiner, MultilineError
from agents.logship.registry import Entry, RegistryDamaged, parse
from agents.waitfor.checks import BuildContext, build_check
from agents.waitfor.targets import SCHEMES, parse_target, split_targets

PROPERTY = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class _Quiet:
    def write(self, _text: str) -> None:
        pass

    def flush(self) -> None:
        pass


def refusal(
    call: Callable[[], object], errors: type[Exception] | tuple[type[Exception], ...]
) -> str | None:
    """The message of a documented error `call` raised, or None when it succeeded; any
    other exception fails the test."""
    try:
        call()
    except errors as exc:
        return str(exc)
    return None


CTX = BuildContext(log=Logger("waitfor", stream=_Quiet()))  # type: ignore[arg-type]

# --- waitfor's target URIs ---------------------------------------------------------------

OPTION_NAMES = [
    "timeout",
    "status",
    "json",
    "body",
    "consecutive",
    "tls",
    "insecure",
    "ca",
    "method",
    "header",
    "sslmode",
    "record",
    "server",
    "user",
    "password",
    "db",
]
URI_CHARS = string.ascii_letters + string.digits + ":/@[]?#&=%.,_-+~!$'()*; \t\"\\\x00é中"


@st.composite
def uri_like(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from([*SCHEMES, "HTTP", "ftp", "", "tcp:"]))
    authority = draw(st.text(URI_CHARS, max_size=30))
    path = draw(st.text(URI_CHARS, max_size=20))
    pairs = draw(
        st.lists(
            st.tuples(st.sampled_from(OPTION_NAMES), st.text(URI_CHARS, max_size=8)), max_size=3
        )
    )
    fragment = "&".join(f"{k}={v}" for k, v in pairs)
    sep = draw(st.sampled_from(["#", "?", ""]))
    return f"{scheme}://{authority}{path}{sep}{fragment}"


@PROPERTY
@given(st.one_of(uri_like(), st.text(max_size=60)))
@example("tcp://[::1")
@example("http://h:99999")
@example("postgres://u:p@:5432/db")
@example("exec:")
@example("http://0#ca=\x00")  # a NUL in a TLS path: ssl raises ValueError
def test_a_target_is_parsed_and_built_or_refused_with_a_target_error(raw: str) -> None:
    """No input reaches the user as a traceback: parsing and building a check raise
    OptionError (TargetError) with a message, or succeed."""
    problem = refusal(lambda: build_check(parse_target(raw), CTX), OptionError)
    assert problem is None or problem.strip()


SECRET = st.text(string.ascii_letters + string.digits, min_size=10, max_size=16)


@PROPERTY
@given(
    st.sampled_from(["postgres", "mysql", "redis", "amqp", "http", "tcp"]),
    SECRET,
    st.text(URI_CHARS, max_size=20),
)
def test_a_password_in_a_target_never_appears_in_its_display_or_errors(
    scheme: str, secret: str, rest: str
) -> None:
    assume(secret not in rest)
    raw = f"{scheme}://user:{secret}@{rest}"
    shown: list[str] = []

    def parse_and_build() -> None:
        target = parse_target(raw)
        shown.append(target.display)
        build_check(target, CTX)

    problem = refusal(parse_and_build, OptionError)
    assert secret not in (problem or "")
    assert all(secret not in text for text in shown)


SIMPLE_TARGET = st.builds(
    lambda scheme, host, port: f"{scheme}://{host}:{port}",
    st.sampled_from(["tcp", "http", "redis", "postgres"]),
    st.text(string.ascii_lowercase + string.digits + ".-", min_size=1, max_size=12),
    st.integers(1, 65535),
)


@PROPERTY
@given(
    st.lists(SIMPLE_TARGET, min_size=1, max_size=5),
    st.lists(st.sampled_from([" ", ",", ", ", "\n", "\t", " , "]), min_size=5, max_size=5),
)
def test_waitfor_targets_splits_back_into_the_targets_it_was_made_of(
    targets: list[str], separators: list[str]
) -> None:
    text = "".join(t + separators[i] for i, t in enumerate(targets))
    assert split_targets(text) == targets


@PROPERTY
@given(st.text(max_size=80))
@example('""')  # an empty quoted target became an empty target (found by CI)
@example("tcp://a:1 '  '")
def test_waitfor_targets_splits_or_names_the_quote_problem(text: str) -> None:
    pieces: list[str] = []
    problem = refusal(lambda: pieces.extend(split_targets(text)), OptionError)
    if problem is not None:
        assert "WAITFOR_TARGETS" in problem
    assert all(pieces)


# --- logship's multiline joiner ------------------------------------------------------------

LINE_TEXT = st.one_of(
    st.sampled_from(
        [
            "Exception in thread main",
            "\tat com.x.Y(Y.java:1)",
            "\t... 5 more",
            "Caused by: java.io.IOException",
            "Traceback (most recent call last):",
            '  File "x.py", line 1',
            "ValueError: bad",
            "plain line",
            "",
            "  ",
            "continued \\",
        ]
    ),
    st.text(max_size=20),
)


def lines_from(texts: list[str]) -> list[Line]:
    out, offset = [], 0
    for text in texts:
        end = offset + len(text.encode()) + 1
        out.append(Line(offset, end, text))
        offset = end
    return out


def joined(joiner: Joiner, lines: list[Line]) -> list[Line]:
    events = []
    for line in lines:
        events.extend(joiner.feed(line))
    events.extend(joiner.flush())
    return events


JOINERS = st.one_of(
    st.sampled_from(sorted(PRESETS)).map(lambda name: Joiner.preset(name)),
    st.builds(
        lambda pattern, negate, match: Joiner(pattern, negate=negate, match=match),
        st.sampled_from([r"^\s", r"\\$", r"^\[", r"^\d{4}-", r"^$"]),
        st.booleans(),
        st.sampled_from(["after", "before"]),
    ),
)


@PROPERTY
@given(JOINERS, st.lists(LINE_TEXT, max_size=40))
def test_multiline_events_cover_every_line_once_in_order(joiner: Joiner, texts: list[str]) -> None:
    """What was read is shipped once: the events' byte ranges tile the input exactly, and
    (under max_lines) their texts are the input lines, joined by newlines."""
    lines = lines_from(texts)
    events = joined(joiner, lines)
    position = 0
    for event in events:
        assert event.offset == position
        assert event.end > event.offset
        position = event.end
    assert position == (lines[-1].end if lines else 0)
    assert "\n".join(e.text for e in events) == "\n".join(texts)
    assert not any(e.truncated for e in events)


@PROPERTY
@given(st.integers(1, 5), st.lists(st.sampled_from(["head", "\tat x", "\tat y"]), max_size=40))
def test_multiline_max_lines_caps_each_event_and_flags_it(limit: int, texts: list[str]) -> None:
    groups: list[list[str]] = []
    for i, text in enumerate(texts):
        if i == 0 or not text.startswith("\t"):
            groups.append([])
        groups[-1].append(text)
    events = joined(Joiner.preset("java", max_lines=limit), lines_from(texts))
    assert [e.text for e in events] == ["\n".join(g[:limit]) for g in groups]
    assert [e.truncated for e in events] == [len(g) > limit for g in groups]


@PROPERTY
@given(st.text(max_size=30), st.booleans(), st.text(max_size=8), st.integers(-3, 3))
@example("(", False, "after", 5)
@example("a", False, "sideways", 5)
def test_a_multiline_setting_is_accepted_or_refused_with_a_multiline_error(
    pattern: str, negate: bool, match: str, max_lines: int
) -> None:
    problem = refusal(
        lambda: Joiner(pattern, negate=negate, match=match, max_lines=max_lines), MultilineError
    )
    assert problem is None or problem.startswith("multiline")


# --- logship's registry file ------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
ENTRY_KEYS = ["key", "dev", "ino", "head", "path", "offset", "generation", "updated", "tail"]
ENTRY_LIKE = st.dictionaries(st.sampled_from(ENTRY_KEYS), JSON, max_size=9)


@PROPERTY
@given(
    st.one_of(
        st.binary(max_size=200),
        JSON.map(lambda v: json.dumps(v).encode()),
        st.lists(ENTRY_LIKE, max_size=4).map(
            lambda entries: json.dumps({"version": 1, "entries": entries}).encode()
        ),
    )
)
@example(
    b'{"version": 1, "entries": [{"key": "k", "dev": 1, "ino": 2, "head": "h", '
    b'"path": "/x", "offset": -1}]}'
)
@example(
    b'{"version": 1, "entries": [{"key": "k", "dev": 1e400, "ino": 2, "head": "h", '
    b'"path": "/x", "offset": 1}]}'
)
def test_a_registry_file_loads_or_is_reported_damaged(data: bytes) -> None:
    """A damaged registry is set aside with a warning (RegistryDamaged), never a crash."""
    entries: dict[str, Entry] = {}
    problem = refusal(lambda: entries.update(parse(data)), RegistryDamaged)
    assert problem is None or problem.strip()
    for entry in entries.values():
        assert entry.offset >= 0
        assert entry.generation >= 0


ENTRIES = st.lists(
    st.builds(
        Entry,
        st.text(max_size=16),
        dev=st.integers(0, 2**63),
        ino=st.integers(0, 2**63),
        head=st.text(max_size=16),
        path=st.text(max_size=30),
        offset=st.integers(0, 2**62),
        generation=st.integers(0, 1000),
        updated=st.floats(0, 2e9),
        tail=st.text(string.hexdigits, max_size=16),
    ),
    max_size=5,
    unique_by=lambda e: e.key,
)


@PROPERTY
@given(ENTRIES)
def test_a_registry_written_reads_back_the_same(entries: list[Entry]) -> None:
    data = json.dumps({"version": 1, "entries": [e.to_json() for e in entries]}).encode()
    loaded = parse(data)
    assert [e.to_json() for e in loaded.values()] == [e.to_json() for e in entries]


# --- logship's line splitter -------------------------------------------------------------

FILE_BYTES = st.lists(
    st.sampled_from(
        [
            b"a",
            b"\n",
            b"\r",
            b"\r\n",
            b"\x00",
            b"\xff\xfe",
            b"\xe2\x82",
            b"\xac",
            "é中".encode(),
            b"long line " * 3,
        ]
    ),
    max_size=60,
).map(b"".join)


def split_with(data: bytes, cuts: list[int], max_bytes: int) -> list[Line]:
    splitter = LineSplitter(0, max_bytes=max_bytes)
    lines, previous = [], 0
    for cut in [*sorted(c % (len(data) + 1) for c in cuts), len(data)]:
        lines += splitter.feed(data[previous:cut])
        previous = cut
    last = splitter.flush()
    return [*lines, *([last] if last is not None else [])]


@PROPERTY
@given(FILE_BYTES, st.lists(st.integers(0, 10_000), max_size=8), st.integers(1, 40))
def test_lines_are_the_same_however_the_file_is_read(
    data: bytes, cuts: list[int], max_bytes: int
) -> None:
    """Reads end anywhere (a line, a UTF-8 sequence, a CRLF cut in two): the lines, their
    offsets and their flags do not depend on where."""
    whole = split_with(data, [], max_bytes)
    assert split_with(data, cuts, max_bytes) == whole
    position = 0
    for line in whole:  # the lines tile the file: nothing skipped, nothing twice
        assert line.offset == position
        position = line.end
        raw = data[line.offset : line.end].removesuffix(b"\n")
        if not line.truncated:
            assert line.text == raw.removesuffix(b"\r").decode("utf-8", "replace")
        else:
            assert len(raw) > max_bytes
    assert position == len(data)


# --- logship's bulk-response classifier ----------------------------------------------------

ITEM_STATUS = st.sampled_from([200, 201, 409, 429, 400, 404, 500, 503])


@st.composite
def bulk_response(draw: st.DrawFn) -> dict[str, object]:
    items = []
    for status in draw(st.lists(ITEM_STATUS, max_size=12)):
        body: dict[str, object] = {"_index": "logs", "_id": draw(st.text(max_size=6)),
                                   "status": status}  # fmt: skip
        if status >= 300:
            kind = ("version_conflict_engine_exception" if status == 409
                    else draw(st.sampled_from(["mapper_parsing_exception", "x"])))  # fmt: skip
            body["error"] = {"type": kind, "reason": draw(st.text(max_size=12))}
        items.append({draw(st.sampled_from(["create", "index"])): body})
    errors = any(next(iter(i.values()))["status"] >= 300 for i in items)  # type: ignore[index]
    return {"took": 3, "errors": draw(st.sampled_from([errors, errors, not errors])),
            "items": items}  # fmt: skip


@PROPERTY
@given(bulk_response(), st.integers(0, 14), st.booleans())
def test_the_unparsed_summary_never_disagrees_with_parsing_the_response(
    response: dict[str, object], count: int, compact: bool
) -> None:
    """`stored_summary` skips parsing a response that says all was stored: whatever the
    response, the verdicts are those of the full parse, and never raise."""
    raw = json.dumps(response, separators=(",", ":") if compact else None).encode()
    summary = stored_summary(raw)
    fast = classify_response(summary if summary is not None else json.loads(raw), count)
    full = classify_response(json.loads(raw), count)
    assert len(fast) == len(full) == count
    for quick, parsed in zip(fast, full, strict=True):
        # Stored is stored (the summary does not tell 200 from 201); anything else, as parsed.
        assert quick == parsed or quick.verdict is parsed.verdict is Verdict.STORED


@PROPERTY
@given(st.one_of(JSON, st.binary(max_size=80).map(stored_summary)), st.integers(0, 5))
def test_any_bulk_answer_gets_one_verdict_per_event(body: object, count: int) -> None:
    results = classify_response(body, count)
    assert len(results) == count
    assert all(isinstance(r, ItemResult) for r in results)


def test_a_pattern_python_warns_about_is_refused_as_a_pattern_not_a_warning() -> None:
    """`[[` makes `re` warn ("possible nested set") before it fails: the user gets the
    option's error, not a FutureWarning (an exception where warnings are errors)."""
    problem = refusal(lambda: Joiner("[[", negate=False, match="after", max_lines=5),
                      MultilineError)  # fmt: skip
    assert problem is not None and problem.startswith("multiline pattern '[['"), problem
