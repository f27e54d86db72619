import os
from pathlib import Path

import pytest

from agents.logship.fingerprint import (
    HEAD_LIMIT,
    FileId,
    document_id,
    fingerprint,
    head_of,
    starts_with,
)


def open_fd(path: Path) -> int:
    return os.open(path, os.O_RDONLY)


def test_identity_is_stable_as_the_file_grows(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"starting\n")
    fd = open_fd(log)
    try:
        first = fingerprint(fd)
        with log.open("ab") as f:
            f.write(b"more\n" * 1000)
        assert fingerprint(fd) == first
    finally:
        os.close(fd)


def test_a_one_line_file_has_an_identity(tmp_path: Path) -> None:
    log = tmp_path / "one.log"
    log.write_bytes(b"x\n")
    fd = open_fd(log)
    try:
        assert fingerprint(fd) is not None
    finally:
        os.close(fd)


def test_incomplete_first_line_has_no_identity_until_final(tmp_path: Path) -> None:
    log = tmp_path / "partial.log"
    log.write_bytes(b"no newline yet")
    fd = open_fd(log)
    try:
        assert fingerprint(fd) is None
        assert fingerprint(fd, final=True) is not None
    finally:
        os.close(fd)
    empty = tmp_path / "empty.log"
    empty.touch()
    fd = open_fd(empty)
    try:
        assert fingerprint(fd, final=True) is None
    finally:
        os.close(fd)


def test_rename_keeps_identity(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"line one\nline two\n")
    fd = open_fd(log)
    before = fingerprint(fd)
    os.close(fd)
    log.rename(tmp_path / "app.log.1")
    fd = open_fd(tmp_path / "app.log.1")
    try:
        assert fingerprint(fd) == before
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


def test_a_partial_first_line_keeps_its_identity_when_it_is_completed(tmp_path: Path) -> None:
    # The app was killed mid-line; at drain logship had to take the file as it was.
    log = tmp_path / "app.log"
    log.write_bytes(b"starting up, pid=")
    fd = open_fd(log)
    try:
        partial = fingerprint(fd, final=True)
        assert partial is not None and partial.length == len(b"starting up, pid=")
        with log.open("ab") as f:  # the next run of the app completes the line
            f.write(b"4242\nready\n")
        first = os.pread(fd, HEAD_LIMIT, 0)
        assert starts_with(first, partial)  # still the same file
        complete = fingerprint(fd)
        assert complete is not None and complete != partial  # a new look alone would differ
    finally:
        os.close(fd)


def test_a_final_identity_is_the_same_whoever_takes_it(tmp_path: Path) -> None:
    # A file opened at drain and a harvester's file re-identified at drain after a
    # truncation must name the file alike, or one file gets two registry entries.
    log = tmp_path / "app.log"
    log.write_bytes(b"no newline")
    fd = open_fd(log)
    try:
        assert fingerprint(fd, final=True) == fingerprint(fd, final=True)
        assert head_of(os.pread(fd, HEAD_LIMIT, 0), final=True) == fingerprint(fd, final=True).head
    finally:
        os.close(fd)


def test_a_file_rewritten_with_another_start_is_not_the_same(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"first version\n")
    fd = open_fd(log)
    try:
        before = fingerprint(fd)
        assert before is not None
        log.write_bytes(b"first vers")  # shorter than the head: cannot be the same start
        assert not starts_with(os.pread(fd, HEAD_LIMIT, 0), before)
        log.write_bytes(b"other version\n")
        assert not starts_with(os.pread(fd, HEAD_LIMIT, 0), before)
    finally:
        os.close(fd)


def test_an_identity_without_a_length_compares_first_lines() -> None:
    # Registries written before heads had lengths: the head is the first line's hash.
    old = FileId(1, 2, head_of(b"hello\n") or "")
    assert starts_with(b"hello\nmore\n", old)
    assert not starts_with(b"hellO\nmore\n", old)
