import json
from pathlib import Path

import pytest

from agents.logship.registry import FILENAME, Entry, Registry, RegistryDamaged, parse


def entry(key: str = "k1", offset: int = 0) -> Entry:
    return Entry(key, dev=1, ino=2, head="abc", path="/var/log/app.log", offset=offset)


def test_round_trip(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    reg.put(entry("a", 10))
    reg.put(entry("b", 20))
    assert reg.save() is True
    assert reg.save() is False  # nothing changed: no write
    again = Registry(tmp_path)
    assert again.load() == []
    assert {k: e.offset for k, e in again.entries.items()} == {"a": 10, "b": 20}


def test_commit_only_moves_forward(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    reg.put(entry("a", 100))
    reg.save()
    reg.commit("a", 50)
    assert reg.get("a").offset == 100  # type: ignore[union-attr]
    assert reg.dirty is False
    reg.commit("a", 150, path="/var/log/app.log.1")
    assert reg.get("a").offset == 150  # type: ignore[union-attr]
    assert reg.get("a").path == "/var/log/app.log.1"  # type: ignore[union-attr]
    assert reg.dirty is True


def test_restart_starts_a_new_generation(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    reg.put(entry("a", 100))
    assert reg.restart("a") == 1
    assert (reg.get("a").offset, reg.get("a").generation) == (0, 1)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"garbage\x00\xff",
        b"[]",
        b'{"version": 2, "entries": []}',
        b'{"version": 1}',
        b'{"version": 1, "entries": [{"key": "a"}]}',
        b'{"version": 1, "entries": [{"key":"a","dev":1,"ino":2,"head":"h","path":"p",'
        b'"offset":-5}]}',
        b'{"version": 1, "entries": [{"key":"a","dev":"x","ino":2,"head":"h","path":"p",'
        b'"offset":0}]}',
    ],
)
def test_damaged_registry_is_set_aside_with_a_warning(tmp_path: Path, content: bytes) -> None:
    (tmp_path / FILENAME).write_bytes(content)
    reg = Registry(tmp_path)
    warnings = reg.load()
    assert len(warnings) == 1 and "registry damaged" in warnings[0]
    assert reg.entries == {}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(FILENAME + ".damaged-")]
    reg.put(entry())
    reg.save()  # and it can write a good one again
    assert Registry(tmp_path).load() == []


def test_truncated_registry_file(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    for i in range(50):
        reg.put(entry(f"k{i}", i))
    reg.save()
    data = (tmp_path / FILENAME).read_bytes()
    (tmp_path / FILENAME).write_bytes(data[: len(data) // 2])
    again = Registry(tmp_path)
    assert "registry damaged" in again.load()[0]


def test_a_complete_tmp_from_an_interrupted_save_wins(tmp_path: Path) -> None:
    old = Registry(tmp_path)
    old.put(entry("a", 10))
    old.save()
    newer = {"version": 1, "entries": [entry("a", 99).to_json()]}
    (tmp_path / (FILENAME + ".tmp")).write_text(json.dumps(newer))
    reg = Registry(tmp_path)
    assert reg.load() == []
    assert reg.get("a").offset == 99  # type: ignore[union-attr]
    assert reg.dirty  # promoted to the real file on the next save
    reg.save()
    assert not (tmp_path / (FILENAME + ".tmp")).exists()
    assert parse((tmp_path / FILENAME).read_bytes())["a"].offset == 99


def test_a_partial_tmp_is_ignored(tmp_path: Path) -> None:
    old = Registry(tmp_path)
    old.put(entry("a", 10))
    old.save()
    (tmp_path / (FILENAME + ".tmp")).write_bytes(b'{"version": 1, "entr')
    reg = Registry(tmp_path)
    warnings = reg.load()
    assert reg.get("a").offset == 10  # type: ignore[union-attr]
    assert "interrupted write" in warnings[0]


def test_save_failure_keeps_it_dirty(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "missing-dir")
    reg.put(entry())
    with pytest.raises(FileNotFoundError):
        reg.save()
    assert reg.dirty


def test_parse_rejects_with_reason() -> None:
    with pytest.raises(RegistryDamaged, match="not JSON"):
        parse(b"{")


def test_forget_and_stale(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    old = Entry("old", dev=1, ino=1, head="h", path="p", updated=100.0)
    reg.put(old)
    reg.put(entry("new"))
    assert [e.key for e in reg.stale(older_than=1000.0)] == ["old"]
    reg.forget("old")
    assert list(reg.entries) == ["new"]


def test_snapshot_then_write_in_two_steps(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    reg.put(entry("a", 10))
    data = reg.snapshot()
    assert data is not None and not reg.dirty
    reg.put(entry("b", 20))  # changed after the snapshot: stays dirty for the next one
    reg.write(data)
    newer = reg.snapshot()
    assert newer is not None
    reg.write(newer)
    reg.write(data)  # an older snapshot arriving late is not written over the newer one
    assert set(parse((tmp_path / FILENAME).read_bytes())) == {"a", "b"}
    reg.put(entry("c", 30))
    assert reg.dirty
    assert reg.snapshot() is not None


def test_a_failed_write_marks_it_dirty_again(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "missing-dir")
    reg.put(entry())
    data = reg.snapshot()
    assert data is not None and not reg.dirty
    with pytest.raises(FileNotFoundError):
        reg.write(data)
    assert reg.dirty


def test_a_window_of_what_was_read_hashes_like_the_file(tmp_path: Path) -> None:
    import os
    import random

    from agents.logship.harvester import Window
    from agents.logship.registry import tail_of

    rng = random.Random(4)
    data = bytes(rng.randrange(256) for _ in range(1000))
    path = tmp_path / "f"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        for start, size in [(0, 1000), (0, 10), (30, 200), (64, 100), (500, 500), (990, 10)]:
            before = data[max(0, start - 64) : start]
            window = Window(before, data[start : start + size], start)
            for end in range(start, start + size + 1):
                assert window.tail_before(end) == tail_of(fd, end), (start, size, end)
        assert Window(b"", data[500:600], 500).tail_before(520) is None  # not all read here
        assert Window(data[436:500], data[500:600], 500).tail_before(700) is None
    finally:
        os.close(fd)
