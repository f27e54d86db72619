import os
from pathlib import Path

import pytest

from agents.logship.identity import HEAD_LIMIT, FileId, document_id, head_of, identify


def open_fd(path: Path) -> int:
    return os.open(path, os.O_RDONLY)


def test_identity_is_stable_as_the_file_grows(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"starting\n")
    fd = open_fd(log)
    try:
        first = identify(fd)
        with log.open("ab") as f:
            f.write(b"more\n" * 1000)
        assert identify(fd) == first
    finally:
        os.close(fd)


def test_a_one_line_file_has_an_identity(tmp_path: Path) -> None:
    log = tmp_path / "one.log"
    log.write_bytes(b"x\n")
    fd = open_fd(log)
    try:
        assert identify(fd) is not None
    finally:
        os.close(fd)


def test_incomplete_first_line_has_no_identity_until_final(tmp_path: Path) -> None:
    log = tmp_path / "partial.log"
    log.write_bytes(b"no newline yet")
    fd = open_fd(log)
    try:
        assert identify(fd) is None
        assert identify(fd, final=True) is not None
    finally:
        os.close(fd)
    empty = tmp_path / "empty.log"
    empty.touch()
    fd = open_fd(empty)
    try:
        assert identify(fd, final=True) is None
    finally:
        os.close(fd)


def test_rename_keeps_identity(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"line one\nline two\n")
    fd = open_fd(log)
    before = identify(fd)
    os.close(fd)
    log.rename(tmp_path / "app.log.1")
    fd = open_fd(tmp_path / "app.log.1")
    try:
        assert identify(fd) == before
    finally:
        os.close(fd)


def test_same_inode_different_first_line_is_a_different_file() -> None:
    a = FileId(1, 42, head_of(b"old file header\n") or "")
    b = FileId(1, 42, head_of(b"new file header\n") or "")
    assert a != b and a.key != b.key


def test_same_first_line_on_different_inodes_differs() -> None:
    head = head_of(b"same header\n") or ""
    assert FileId(1, 1, head).key != FileId(1, 2, head).key


def test_long_first_line_is_identified_by_its_first_kib() -> None:
    long_line = b"a" * (HEAD_LIMIT + 500)
    assert head_of(long_line) == head_of(long_line[:HEAD_LIMIT] + b"different tail")
    assert head_of(b"a" * (HEAD_LIMIT - 1)) is None


def test_document_ids_are_deterministic_and_distinct() -> None:
    key = FileId(1, 2, "h").key
    assert document_id(key, 0, 100) == document_id(key, 0, 100)
    ids = {document_id(key, gen, off) for gen in (0, 1) for off in (0, 100, 4096)}
    assert len(ids) == 6
    assert len(document_id(key, 3, 2**40)) < 64


@pytest.mark.parametrize("content", [b"\n", b"\r\n", b"x" * 10 + b"\n"])
def test_heads_are_hex_strings(content: bytes) -> None:
    head = head_of(content)
    assert head is not None and int(head, 16) >= 0
