"""waitfor's HTTP/2 codec (agents/waitfor/checks/_h2.py) against python-hyper's hpack, an
independent implementation: its tables, its encoder (Huffman, indexing, table size
updates, eviction) and its decoder reading what we send; and RFC 7541's own examples."""

from __future__ import annotations

import hpack
import pytest
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH
from hpack.table import HeaderTable
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.waitfor.checks._h2 import (
    STATIC,
    Decoder,
    H2Error,
    encode_headers,
    encode_int,
    huffman_codes,
    huffman_decode,
)


def test_the_static_table_is_the_rfcs() -> None:
    assert [(n.encode(), v.encode()) for n, v in STATIC] == list(HeaderTable.STATIC_TABLE)


def test_the_huffman_code_is_the_rfcs() -> None:
    ours = {symbol: (length, code) for (length, code), symbol in huffman_codes().items()}
    assert ours == {s: (REQUEST_CODES_LENGTH[s], REQUEST_CODES[s]) for s in range(257)}


# RFC 7541 Appendix C.4: requests with Huffman, one dynamic table across the three.
C4 = [
    ("828684418cf1e3c2e5f23a6ba0ab90f4ff",
     [(":method", "GET"), (":scheme", "http"), (":path", "/"),
      (":authority", "www.example.com")]),
    ("828684be5886a8eb10649cbf",
     [(":method", "GET"), (":scheme", "http"), (":path", "/"),
      (":authority", "www.example.com"), ("cache-control", "no-cache")]),
    ("828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf",
     [(":method", "GET"), (":scheme", "https"), (":path", "/index.html"),
      (":authority", "www.example.com"), ("custom-key", "custom-value")]),
]  # fmt: skip


def test_rfc_7541_c4_requests_with_huffman() -> None:
    decoder = Decoder()
    for wire, headers in C4:
        assert decoder.decode(bytes.fromhex(wire)) == headers
    assert decoder.size == 164  # the table's size the RFC gives after C.4.3


# RFC 7541 Appendix C.6: responses with Huffman and a 256-byte table, so entries are evicted.
C6_FIRST = (
    "488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff6e919d29ad171863"
    "c78f0b97c8e9ae82ae43d3"
)


def test_rfc_7541_c6_eviction_after_a_table_size_update() -> None:
    decoder = Decoder()
    decoder.decode(bytes.fromhex("3fe101"))  # a size update to 256 (C.6 assumes that size)
    assert decoder.max_size == 256
    headers = decoder.decode(bytes.fromhex(C6_FIRST))
    assert headers == [
        (":status", "302"),
        ("cache-control", "private"),
        ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
        ("location", "https://www.example.com"),
    ]
    assert decoder.size == 222
    # C.6.2: ":status 307" is added and ":status 302" (the oldest) is evicted
    assert decoder.decode(bytes.fromhex("4883640effc1c0bf")) == [
        (":status", "307"),
        ("cache-control", "private"),
        ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
        ("location", "https://www.example.com"),
    ]
    assert decoder.size == 222
    assert (":status", "302") not in decoder.table


header_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=300)
header_name = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-0123456789", min_size=1, max_size=40)
blocks = st.lists(st.lists(st.tuples(header_name, header_text), max_size=8), min_size=1, max_size=6)


@settings(max_examples=200, deadline=None)
@given(blocks=blocks, huffman=st.booleans(), table=st.sampled_from([0, 64, 256, 4096]))
def test_we_read_whatever_hpacks_encoder_writes(
    blocks: list[list[tuple[str, str]]], huffman: bool, table: int
) -> None:
    encoder = hpack.Encoder()
    encoder.header_table_size = table  # sends a size update at the next block
    decoder = Decoder()
    for headers in blocks:
        wire = encoder.encode(headers, huffman=huffman)
        assert decoder.decode(wire) == headers


@settings(max_examples=100, deadline=None)
@given(headers=st.lists(st.tuples(header_name, header_text), max_size=8))
def test_hpacks_decoder_reads_what_we_write(headers: list[tuple[str, str]]) -> None:
    decoded = hpack.Decoder().decode(encode_headers(headers))
    assert decoded == headers


@pytest.mark.parametrize(
    ("value", "prefix", "wire"),
    [(10, 5, "0a"), (1337, 5, "1f9a0a"), (42, 8, "2a"), (127, 7, "7f00")],  # RFC 7541 C.1
)
def test_integers(value: int, prefix: int, wire: str) -> None:
    assert encode_int(value, prefix, 0) == bytes.fromhex(wire)


@pytest.mark.parametrize(
    ("block", "problem"),
    [
        ("80", "index 0 is in no table"),
        ("be", "index 62 is in no table"),  # the dynamic table is empty
        ("3fe21f", "over the 4096 allowed"),  # a size update to 4097
        ("40", "a cut string"),  # a new name promised, nothing follows
        ("40850102", "runs past the header block"),
        ("1f" + "ff" * 6, "a cut or oversized integer"),
    ],
)
def test_broken_header_blocks(block: str, problem: str) -> None:
    with pytest.raises(H2Error, match=problem):
        Decoder().decode(bytes.fromhex(block))


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ("ffffffff", "EOS inside"),  # 30 ones are EOS
        ("00", "bad padding"),  # '0' (00000), then 000: padding must be ones
        ("07ff", "bad padding"),  # '0', then 11 ones: padding is at most 7 bits
    ],
)
def test_broken_huffman_strings(data: str, problem: str) -> None:
    with pytest.raises(H2Error, match=problem):
        huffman_decode(bytes.fromhex(data))


def test_huffman_padding_of_ones_ends_a_string() -> None:
    assert huffman_decode(bytes.fromhex("07")) == b"0"  # '0', then 111


def test_huffman_round_trip_of_every_byte() -> None:
    text = bytes(range(256))
    encoded = hpack.huffman.HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH).encode(text)
    assert huffman_decode(encoded) == text
