"""The PostgreSQL login's pure parts: SCRAM-SHA-256 against RFC 7677's example exchange,
and the MD5 answer as the server computes it (the real server is in
tests/integration/test_waitfor_ready_for_app.py)."""

from __future__ import annotations

import hashlib

import pytest

from agents.waitfor.checks import NotReady
from agents.waitfor.checks.postgres import Scram, md5_password, table_query

# RFC 7677, section 3
NONCE = "rOprNGfwEbeRWgbNEkqO"
SERVER_FIRST = (b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                b"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")  # fmt: skip
CLIENT_FINAL = (b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")  # fmt: skip
SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def test_scram_sha_256_matches_the_rfc_7677_exchange() -> None:
    scram = Scram("pencil", nonce=NONCE, user="user")
    assert scram.first() == b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    assert scram.final(SERVER_FIRST) == CLIENT_FINAL
    scram.verify(SERVER_FINAL)  # the server proved it knows the password too


def test_scram_refuses_a_server_that_does_not_know_the_password() -> None:
    scram = Scram("pencil", nonce=NONCE, user="user")
    scram.final(SERVER_FIRST)
    with pytest.raises(NotReady, match="signature does not match"):
        scram.verify(b"v=" + b"A" * 44)


def test_scram_refuses_a_nonce_that_is_not_ours() -> None:
    with pytest.raises(NotReady, match="bad nonce"):
        Scram("pencil", nonce=NONCE).final(b"r=someone-else,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")


def test_md5_answer_is_md5_of_the_inner_hash_and_salt() -> None:
    inner = hashlib.md5(b"secretalice").hexdigest()  # noqa: S324
    expected = "md5" + hashlib.md5(inner.encode() + b"\x01\x02\x03\x04").hexdigest()  # noqa: S324
    assert md5_password("alice", "secret", b"\x01\x02\x03\x04") == expected.encode() + b"\0"


def test_a_table_name_cannot_break_out_of_its_quotes() -> None:
    assert table_query("it's") == "SELECT 1 WHERE to_regclass('it''s') IS NOT NULL"
