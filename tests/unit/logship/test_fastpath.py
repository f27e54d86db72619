"""The hot path against the reference: the byte-template documents equal the dict-built
ones, runs of events slice and count like single events, and the bulk-response shortcut
only ever says "all stored" when every event was."""

import gzip
import itertools
import json
import random

import pytest

from agents.logship.bulk import (
    AllStored,
    Docs,
    Event,
    Verdict,
    all_stored,
    classify_response,
    hex_digits_total,
    stored_summary,
)
from agents.logship.events import EventBuilder, escape_lines
from agents.logship.fingerprint import document_id
from agents.logship.lines import LineRun, LineSplitter
from agents.logship.output.elasticsearch import _parse, gzip_body
from agents.logship.output.http import Response
from agents.logship.pipeline import Pipeline, split_parts

PATH = '/var/log/app/"odd" \\ päth%s.log'
NOW = 1795000000.123

AWKWARD = [
    "plain line",
    'quotes "inside" and \\backslashes\\ and \\"both\\"',
    "tab\there, bell\x07, nul\x00, escape\x1b[31m, unit sep\x1f, del\x7f",
    "backspace\b formfeed\f and a lone \r in the middle",
    "non-BMP 😀 𝄞 and line/paragraph separators \u2028 \u2029",
    "grüße, 日本語, percent %s %d %% signs",
    "",
    " leading and trailing spaces ",
    '{"looks": "like json"}',
]


def builders() -> list[EventBuilder]:
    env = {"POD_NAME": 'web-"1"', "POD_NAMESPACE": "shop\\ns", "NODE_NAME": "node-😀",
           "CONTAINER_NAME": "app%s"}  # fmt: skip
    return [
        EventBuilder(env={}),
        EventBuilder(
            env=env,
            labels={"app": 'say "hi"', "tier": "back\\end", "pct": "100%"},
            fields={
                "service.name": "shop",
                "message": "static wins nothing",
                "log.level": "dropped like before",
                "@timestamp": "ignored",
                "env": "pro\u2028d",
            },
            data_stream=("app", "prod"),
        ),
    ]


def reference(builder: EventBuilder, docs: Docs, lines: list, flags: tuple[str, ...]) -> None:
    """Each event of `docs` is the document build() makes, with document_id()'s _id."""
    entries = docs.body.split(b"\n")
    assert entries.pop() == b""
    assert len(entries) == 2 * len(lines) == 2 * len(docs)
    for i, line in enumerate(lines):
        action, source = json.loads(entries[2 * i]), json.loads(entries[2 * i + 1])
        doc_id = document_id(docs.key, docs.generation, line.offset)
        assert action == {"create": {"_index": docs.index, "_id": doc_id}}
        line_flags = (*flags, "multiline") if "\n" in line.text else flags
        expected = json.loads(builder.build(line, PATH, flags=line_flags, now=NOW))
        assert source == expected
        assert (docs.starts[i], docs.starts[i + 1]) == (line.offset, line.end)


@pytest.mark.parametrize("builder", builders())
@pytest.mark.parametrize("flags", [(), ("truncated",)])
def test_template_documents_equal_the_dict_built_ones(
    builder: EventBuilder, flags: tuple[str, ...]
) -> None:
    raw = "".join(text + ("\r\n" if i % 3 == 0 else "\n") for i, text in enumerate(AWKWARD))
    data = raw.encode() + b"bad utf-8 \xff\xfe\xc3 and \xe2\x82\n\xed\xa0\x80 surrogate\n"
    run = LineRun(70000, data)
    docs = builder.render_run(run, index="logs-%Y", key="k3y", generation=2, path=PATH,
                              flags=flags, now=NOW, max_bytes=1 << 20)  # fmt: skip
    assert docs is not None
    lines = run.lines(1 << 20)
    reference(builder, docs, lines, flags)
    assert docs.end == run.end == lines[-1].end


def test_escape_lines_matches_json_dumps_on_random_bytes() -> None:
    rng = random.Random(11)
    alphabet = [bytes([b]) for b in range(256) if b != 0x0A] + ["é😀".encode()] * 20
    for _ in range(300):
        lines = [b"".join(rng.choices(alphabet, k=rng.randrange(0, 30))) for _ in range(5)]
        data = b"".join(line + b"\n" for line in lines)
        got = escape_lines(data).split(b"\n")
        assert got.pop() == b""
        want = [
            json.dumps(t.text, ensure_ascii=False)[1:-1].encode()
            for t in LineRun(0, data).lines(1 << 20)
        ]
        assert [json.loads(b'"' + g + b'"') for g in got] == [json.loads(b'"' + w + b'"')
                                                               for w in want]  # fmt: skip


def test_every_control_character_alone_is_escaped() -> None:
    for code in (c for c in range(32) if c != 0x0A):
        escaped = escape_lines(b"a" + bytes([code]) + b"b\n").split(b"\n")[0]
        assert b"\\" in escaped, (code, escaped)  # escaped, not raw
        assert json.loads(b'"' + escaped + b'"') == "a" + chr(code) + "b", (code, escaped)


def test_multiline_truncated_and_partial_lines_go_one_by_one() -> None:
    builder = builders()[1]
    splitter = LineSplitter(0, max_bytes=12)
    data = b"short\n" + b"x" * 40 + b"\nlast without newline"
    assert builder.render_run(LineRun(0, data[:47]), index="i", key="k", generation=0, path=PATH,
                              flags=(), now=NOW, max_bytes=12) is None  # fmt: skip
    lines = splitter.feed(data)
    joined = [lines[0], *lines[1:]]
    tail = splitter.flush()
    assert tail is not None
    lines = [*joined, tail]
    from agents.logship.lines import Line

    multi = Line(100, 130, "ERROR boom\n\tat a.B(B.java:1)")
    (docs,) = builder.render_lines(lines, index="i", key="k", generation=0, path=PATH,
                                   flags=(), now=NOW)  # fmt: skip
    reference(builder, docs, lines, ())
    assert json.loads(docs.body.split(b"\n")[3])["log"]["flags"] == ["truncated"]
    gap = builder.render_lines([lines[0], multi], index="i", key="k", generation=0, path=PATH,
                               flags=("truncated",), now=NOW)  # fmt: skip
    assert [len(d) for d in gap] == [1, 1]  # not adjacent: two runs, two ranges
    reference(builder, gap[1], [multi], ("truncated",))


def test_json_lines_take_the_dict_path() -> None:
    builder = EventBuilder(env={}, json_mode="", timestamp_field="time")
    run = LineRun(0, b'{"time":"2026-11-21T10:00:00Z","level":"warn","message":"hi"}\nplain\n')
    assert builder.render_run(run, index="i", key="k", generation=0, path=PATH, flags=(),
                              now=NOW, max_bytes=1 << 20) is None  # fmt: skip
    lines = run.lines(1 << 20)
    (docs,) = builder.render_lines(lines, index="i", key="k", generation=0, path=PATH,
                                   flags=(), now=NOW)  # fmt: skip
    reference(builder, docs, lines, ())
    assert json.loads(docs.body.split(b"\n")[1])["level"] == "warn"


def sample_docs(count: int = 40, offset: int = 0) -> tuple[Docs, list[Event]]:
    events = []
    for i in range(count):
        start = offset + i * 7 + i * i  # offsets crossing several hex digit counts
        doc = json.dumps({"message": "m" * (i % 9), "n": i}).encode()
        events.append(Event("key", 1, start, 0, "idx", doc, "/p"))
    for event, after in itertools.pairwise(events):
        event.end = after.offset
    events[-1].end = events[-1].offset + 5
    entries = [e.ndjson() for e in events]
    action_bytes = Docs.of(events[0]).action_bytes
    starts = [*(e.offset for e in events), events[-1].end]
    docs = Docs("key", 1, "idx", "/p", entries=entries, starts=starts, action_bytes=action_bytes)
    return docs, events


def test_docs_slice_count_and_give_back_their_events() -> None:
    docs, events = sample_docs(offset=250)
    assert len(docs) == 40 and docs.start == 250 and docs.end == events[-1].end
    for lo, hi in [(0, 40), (0, 1), (3, 17), (39, 40), (5, 5)]:
        assert bytes(docs.body_of(lo, hi)) == b"".join(e.ndjson() for e in events[lo:hi])
        assert docs.source_bytes(lo, hi) == sum(len(e.doc) for e in events[lo:hi])
    for i in (0, 7, 39):
        got = docs.event(i)
        assert (got.offset, got.end, got.doc, got.id) == (
            events[i].offset, events[i].end, events[i].doc, events[i].id)  # fmt: skip
    limit = docs.bytes_of(4, 9)
    assert docs.cut_at_bytes(4, limit) == 9
    assert docs.cut_at_bytes(4, limit - 1) == 8
    assert docs.cut_at_bytes(4, 1) == 5  # one event bigger than the limit still goes alone
    one = Docs.of(events[3])
    assert one.source_bytes(0, 1) == len(events[3].doc) and one.end == events[3].end


def test_hex_digits_total_counts_like_format() -> None:
    rng = random.Random(5)
    starts = [*sorted(rng.randrange(0, 1 << 40) for _ in range(300)), 1 << 41]
    for lo, hi in [(0, 300), (10, 11), (0, 0), (150, 299)]:
        assert hex_digits_total(starts, lo, hi) == sum(len(f"{s:x}") for s in starts[lo:hi])
    assert hex_digits_total([0, 15, 16, 255, 256], 0, 5) == 1 + 1 + 2 + 2 + 3


def bulk_response(statuses: list[int], *, pretty: bool = False) -> bytes:
    items = []
    for i, status in enumerate(statuses):
        body: dict[str, object] = {"_index": "idx", "_id": f"k-0-{i:x}", "status": status}
        if status >= 300:
            body["error"] = {"type": "x", "reason": 'says "status":201 and "errors":false'}
        items.append({"create": body})
    doc = {"took": 3, "errors": any(s >= 300 for s in statuses), "items": items}
    return json.dumps(doc, indent=2 if pretty else None).encode()


def test_stored_summary_only_for_all_stored() -> None:
    assert repr(stored_summary(bulk_response([201] * 5))) == "AllStored(5)"
    assert stored_summary(bulk_response([201, 409, 201])) is None  # errors: true
    assert stored_summary(bulk_response([201, 400])) is None
    assert stored_summary(b'{"error":{"type":"x"},"status":400}') is None
    assert stored_summary(b'{"items":[],"errors":false}') is None  # errors after items
    # Elasticsearch's own layout, errors first or after took
    assert stored_summary(b'{"errors":false,"took":1,"items":[{"create":{"status":201}}]}')
    # Written another way ("status" : 201): not counted, so the count cannot match...
    raw = bulk_response([201] * 3, pretty=True).replace(b'"status":', b'"status" :')
    summary = stored_summary(raw)
    assert summary is not None and not all_stored(summary, 3)
    # ...and the response is read in full: all three stored all the same.
    assert [r.verdict for r in classify_response(summary, 3)] == [Verdict.STORED] * 3


def test_all_stored_and_classify_response_read_the_summary() -> None:
    assert all_stored(AllStored(4), 4) and not all_stored(AllStored(3), 4)
    assert all_stored(json.loads(bulk_response([201] * 4)), 4)
    assert not all_stored(json.loads(bulk_response([201, 429])), 2)
    verdicts = [r.verdict for r in classify_response(AllStored(2), 2)]
    assert verdicts == [Verdict.STORED] * 2
    assert {r.verdict for r in classify_response(AllStored(1), 2)} == {Verdict.RETRY}


def test_answers_are_summarised_when_all_stored_and_read_as_json_otherwise() -> None:
    packed = gzip_body(b'{"create":{}}\n{}\n')
    assert gzip.decompress(packed) == b'{"create":{}}\n{}\n'  # no newline added

    def answer(body: bytes, kind: str = "application/json") -> object:
        return _parse(Response(200, {"content-type": kind}, body))

    assert isinstance(answer(bulk_response([201] * 3)), AllStored)
    assert answer(bulk_response([201, 429]))["errors"] is True  # type: ignore[index]
    big = 123456789012345678901234567890  # other responses read as before: json's ints
    assert answer(b'{"n": %d}' % big)["n"] == big  # type: ignore[index]
    assert answer(b"<html>bad gateway</html>", "text/html") == "<html>bad gateway</html>"
    assert answer(b"") is None


def test_split_parts_cuts_where_the_count_falls() -> None:
    a, _ = sample_docs(10)
    b, _ = sample_docs(10, offset=5000)
    parts = [(a, 2, 10), (b, 0, 10)]
    first, second = split_parts(parts, 9)
    assert first == [(a, 2, 10), (b, 0, 1)] and second == [(b, 1, 10)]
    assert split_parts(parts, 8) == ([(a, 2, 10)], [(b, 0, 10)])


class NoSender:
    async def send(self, body: bytes) -> object:
        raise AssertionError("not in this test")


async def nothing(*args: object) -> None:
    return None


@pytest.mark.asyncio
async def test_batches_keep_to_the_event_and_byte_limits() -> None:
    from agents._log import Logger

    docs, _ = sample_docs(40)
    per_event = docs.size // 40
    pipeline = Pipeline(NoSender(), commit=lambda *a: None, dead_letter=nothing,  # type: ignore[arg-type]
                        log=Logger("t"), batch_docs=15, batch_bytes=per_event * 10)  # fmt: skip
    pipeline.track("key", 1, 0)
    await pipeline.put_docs(docs)
    batches = []
    while pipeline._pending:
        batches.append(pipeline._take_batch())
    counts = [sum(hi - lo for _, lo, hi in batch) for batch in batches]
    assert sum(counts) == 40 and max(counts) <= 15
    for batch in batches:
        size = sum(d.bytes_of(lo, hi) for d, lo, hi in batch)
        assert size <= per_event * 10 or sum(hi - lo for _, lo, hi in batch) == 1
    assert [lo for batch in batches for _, lo, _ in batch] == sorted(
        lo for batch in batches for _, lo, _ in batch
    )
