"""CRC-16/EN-13757 and SipHash-2-4: published check values, C equals the reference."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minolcore import _native
from minolcore._reference.crc import crc16 as reference_crc16
from minolcore._reference.siphash import siphash24 as reference_siphash24
from minolcore.wmbus import crc16


def test_check_value() -> None:
    assert crc16(b"123456789") == 0xC2B7


def test_oms_block_one() -> None:
    # OMS Vol. 2 Annex N.2.1: the first block of the mode-5 example carries CRC 3363.
    assert crc16(bytes.fromhex("2E449315785634123303")) == 0x3363


def test_residue() -> None:
    # A block followed by its big-endian CRC leaves the catalogue residue 0xA366 in the
    # register (before the final xorout).
    block = bytes.fromhex("2E449315785634123303")
    whole = block + crc16(block).to_bytes(2, "big")
    assert crc16(whole) ^ 0xFFFF == 0xA366


def test_not_dnp() -> None:
    # CRC-16/DNP shares the polynomial but is reflected; its check value must not come out.
    assert crc16(b"123456789") != 0xEA82


def test_empty() -> None:
    assert crc16(b"") == 0xFFFF


@pytest.mark.equivalence
@given(st.binary(max_size=300))
def test_crc_c_equals_reference(data: bytes) -> None:
    assert _native.crc16(data) == reference_crc16(data)


def test_siphash_reference_vectors() -> None:
    # Vectors from the SipHash paper: key 00..0f, messages 00..(n-1).
    key = bytes(range(16))
    assert reference_siphash24(key, b"") == 0x726FDB47DD0E0E31
    assert reference_siphash24(key, bytes(range(15))) == 0xA129CA6149BE45E5
    assert _native.siphash24(key, bytes(range(15))) == 0xA129CA6149BE45E5


@pytest.mark.equivalence
@given(st.binary(min_size=16, max_size=16), st.binary(max_size=200))
def test_siphash_c_equals_reference(key: bytes, data: bytes) -> None:
    assert _native.siphash24(key, data) == reference_siphash24(key, data)
