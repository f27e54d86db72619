import io
import json

from agents._log import Logger


def test_text_lines_quote_values_that_need_it() -> None:
    stream = io.StringIO()
    Logger("waitfor", stream=stream).info(
        "not ready", target="tcp://db:1", error='refused "x"\nnext', attempts=3, gone=None
    )
    line = stream.getvalue()
    assert line.endswith("\n") and line.count("\n") == 1  # one event, one line
    assert ' INFO  waitfor: not ready target=tcp://db:1 error="refused \\"x\\"\\nnext" ' in line
    assert line.rstrip().endswith("attempts=3")
    assert "gone" not in line


def test_json_lines_use_fixed_ecs_names() -> None:
    stream = io.StringIO()
    Logger("waitfor", json_lines=True, stream=stream).error("timed out", elapsed=1.5)
    event = json.loads(stream.getvalue())
    assert event["log.level"] == "error"
    assert event["message"] == "timed out"
    assert event["process.name"] == "waitfor"
    assert event["elapsed"] == 1.5
    assert event["@timestamp"].endswith("Z")


def test_min_level_filters() -> None:
    stream = io.StringIO()
    log = Logger("waitfor", min_level="error", stream=stream)
    log.info("hidden")
    log.warning("hidden too")
    log.error("shown")
    assert "hidden" not in stream.getvalue() and "shown" in stream.getvalue()


def test_closed_stream_never_raises() -> None:
    stream = io.StringIO()
    stream.close()
    Logger("waitfor", stream=stream).error("nowhere to go")


def test_a_message_with_newlines_stays_one_line() -> None:
    stream = io.StringIO()
    Logger("waitfor", stream=stream).error("invalid HTTP response: 400, message:\n  bad\r\n")
    assert stream.getvalue().count("\n") == 1
    assert "message:\\n  bad\\r\\n" in stream.getvalue()


def test_full_or_missing_stream_never_raises() -> None:
    class Full(io.StringIO):
        def write(self, s: str) -> int:
            raise OSError(28, "No space left on device")

    Logger("waitfor", stream=Full()).error("lost")
    log = Logger("waitfor")
    log.stream = None  # what sys.stderr is when the process has no stderr
    log.error("nowhere")
