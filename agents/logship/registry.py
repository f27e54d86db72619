"""The registry: how far each file has been shipped *and acknowledged*, keyed by identity.

Stored in `<data-dir>/registry.json`, replaced atomically (tmp, fsync, rename, directory
fsync) and only when something changed. Loading never fails: a damaged file is set aside
with a warning and logship starts over from the beginning of every file — the
deterministic document ids make Elasticsearch drop what it already has (409), so a lost
registry costs time, not duplicates.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from agents._atomic import write_atomic
from agents.logship.fingerprint import FileId, starts_with

FORMAT_VERSION = 1
FILENAME = "registry.json"


class Entry:
    """One file's committed position. `offset` is where the next unacknowledged line starts."""

    __slots__ = ("dev", "generation", "head", "head_len", "ino", "key", "offset", "path", "tail",
                 "updated")  # fmt: skip

    def __init__(
        self,
        key: str,
        *,
        dev: int,
        ino: int,
        head: str,
        path: str,
        offset: int = 0,
        generation: int = 0,
        updated: float | None = None,
        tail: str = "",
        head_len: int = 0,
    ) -> None:
        self.key, self.dev, self.ino, self.head = key, dev, ino, head
        self.head_len = head_len  # first bytes `head` covers (0: written before it was kept)
        self.path, self.offset, self.generation = path, offset, generation
        # A hash of the bytes just before `offset` (see tail_of): tells, on resuming,
        # whether the file still holds what was shipped, or was rewritten meanwhile.
        self.tail = tail
        self.updated = time.time() if updated is None else updated

    def to_json(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_json(cls, raw: object) -> Entry:
        if not isinstance(raw, dict):
            raise ValueError("entry is not an object")
        try:
            entry = cls(
                str(raw["key"]),
                dev=int(raw["dev"]),
                ino=int(raw["ino"]),
                head=str(raw["head"]),
                path=str(raw["path"]),
                offset=int(raw["offset"]),
                generation=int(raw.get("generation", 0)),
                updated=float(raw.get("updated", 0.0)),
                tail=str(raw.get("tail", "")),
                head_len=int(raw.get("head_len", 0)),
            )
        except (KeyError, TypeError, ValueError, OverflowError) as exc:  # 1e400 → inf → int
            raise ValueError(f"bad entry: {exc}") from None
        if entry.offset < 0 or entry.generation < 0 or entry.head_len < 0:
            raise ValueError("bad entry: negative offset or generation")
        return entry


TAIL_BYTES = 64


def tail_hash(data: bytes) -> str:
    """The hash kept for the bytes before an offset (the TAIL_BYTES bytes, or all there
    are before it); "" for none (the start of a file)."""
    return hashlib.blake2b(data, digest_size=8).hexdigest() if data else ""


def tail_of(fd: int, offset: int) -> str:
    """Hash of the (up to) TAIL_BYTES bytes before `offset` in the file; "" at its start."""
    if offset <= 0:
        return ""
    return tail_hash(os.pread(fd, min(TAIL_BYTES, offset), max(0, offset - TAIL_BYTES)))


class RegistryDamaged(ValueError):
    pass


def parse(data: bytes) -> dict[str, Entry]:
    """Registry file content → entries. Raises RegistryDamaged with the reason."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RegistryDamaged(f"not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("version") != FORMAT_VERSION:
        raise RegistryDamaged("not a version 1 registry")
    raw_entries = document.get("entries")
    if not isinstance(raw_entries, list):
        raise RegistryDamaged("entries missing")
    entries: dict[str, Entry] = {}
    for raw in raw_entries:
        try:
            entry = Entry.from_json(raw)
        except ValueError as exc:
            raise RegistryDamaged(str(exc)) from None
        entries[entry.key] = entry
    return entries


def file_id(entry: Entry) -> FileId:
    """The identity an entry was recorded for."""
    return FileId(entry.dev, entry.ino, entry.head, entry.head_len)


class Registry:
    """In-memory entries plus their durable copy. Not thread-safe: one owner task."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / FILENAME
        self.entries: dict[str, Entry] = {}
        self._inodes: dict[tuple[int, int], set[str]] = {}  # (dev, ino) → keys
        self.dirty = False
        # A periodic write in a thread and the final one at shutdown must not interleave
        # (they share the tmp file), nor may an older snapshot be written after a newer.
        self._write_lock = threading.Lock()
        self._snapshots = 0
        self._written = 0

    def load(self) -> list[str]:
        """Read the durable copy; returns warnings (empty when all was well)."""
        warnings: list[str] = []
        tmp = self.path.with_name(self.path.name + ".tmp")
        for candidate in (tmp, self.path):
            # A complete tmp is a newer state whose rename a crash interrupted.
            try:
                data = candidate.read_bytes()
            except FileNotFoundError:
                continue
            except OSError as exc:
                warnings.append(f"cannot read {candidate}: {exc.strerror}")
                continue
            try:
                self._set_entries(parse(data))
            except RegistryDamaged as exc:
                if candidate is tmp:
                    warnings.append(f"ignored an interrupted write ({candidate.name}: {exc})")
                    continue
                aside = self.path.with_name(f"{self.path.name}.damaged-{int(time.time())}")
                try:
                    os.replace(self.path, aside)
                    where = f"; kept as {aside.name}"
                except OSError:
                    where = ""
                warnings.append(
                    f"registry damaged ({exc}){where}: every file is read again from its "
                    "start; document ids make Elasticsearch skip what it already has"
                )
                self._set_entries({})
                return warnings
            if candidate is tmp:
                self.dirty = True  # make it the real file on the next save
            return warnings
        return warnings

    def save(self) -> bool:
        """Write if anything changed; returns whether it wrote. OSError (ENOSPC…) propagates
        and the registry stays dirty, so the next save tries again."""
        snapshot = self.snapshot()
        if snapshot is None:
            return False
        self.write(snapshot)
        return True

    def snapshot(self) -> tuple[int, bytes] | None:
        """The current state as file content, or None when nothing changed. Call it where
        the entries are changed (the event loop); `write` may then run in a thread."""
        if not self.dirty:
            return None
        document = {
            "version": FORMAT_VERSION,
            "written": time.time(),
            "entries": [entry.to_json() for entry in self.entries.values()],
        }
        self.dirty = False
        self._snapshots += 1
        return self._snapshots, json.dumps(document, separators=(",", ":")).encode()

    def write(self, snapshot: tuple[int, bytes]) -> None:
        """Store a snapshot durably (skipped if a newer one is already stored); on failure
        the registry is marked dirty again."""
        number, data = snapshot
        with self._write_lock:
            if number <= self._written:
                return
            try:
                write_atomic(self.path, data)
            except OSError:
                self.dirty = True
                raise
            self._written = number

    def _set_entries(self, entries: dict[str, Entry]) -> None:
        self.entries = entries
        self._inodes = {}
        for entry in entries.values():
            self._inodes.setdefault((entry.dev, entry.ino), set()).add(entry.key)

    def get(self, key: str) -> Entry | None:
        return self.entries.get(key)

    def find(self, found: FileId, first_bytes: bytes) -> Entry | None:
        """The entry of the file identified as `found`, whose first bytes are
        `first_bytes`: its own, or that of an identity taken while its first line was
        still partial, which the file still starts with (see fingerprint)."""
        entry = self.entries.get(found.key)
        if entry is not None:
            return entry
        for key in self._inodes.get((found.dev, found.ino), ()):
            other = self.entries[key]
            if other.head_len and starts_with(first_bytes, file_id(other)):
                return other
        return None

    def put(self, entry: Entry) -> None:
        self.entries[entry.key] = entry
        self._inodes.setdefault((entry.dev, entry.ino), set()).add(entry.key)
        self.dirty = True

    def commit(self, key: str, offset: int, *, path: str | None = None, tail: str = "") -> None:
        """Record an acknowledged position (only ever forwards within a generation)."""
        entry = self.entries[key]
        if offset > entry.offset or (path is not None and path != entry.path):
            if offset > entry.offset:
                entry.tail = tail
            entry.offset = max(entry.offset, offset)
            if path is not None:
                entry.path = path
            entry.updated = time.time()
            self.dirty = True

    def restart(self, key: str) -> int:
        """The file was truncated: back to 0 in a new generation. Returns the generation."""
        entry = self.entries[key]
        entry.offset = 0
        entry.tail = ""
        entry.generation += 1
        entry.updated = time.time()
        self.dirty = True
        return entry.generation

    def forget(self, key: str) -> None:
        entry = self.entries.pop(key, None)
        if entry is not None:
            keys = self._inodes.get((entry.dev, entry.ino), set())
            keys.discard(key)
            if not keys:
                self._inodes.pop((entry.dev, entry.ino), None)
            self.dirty = True

    def stale(self, older_than: float) -> Iterator[Entry]:
        """Entries not touched since `older_than` (wall clock), for pruning."""
        return (e for e in list(self.entries.values()) if e.updated < older_than)
