"""LoRaWAN 1.0.x cryptography: MICs, FRMPayload encryption, join keys.

Every AES and CMAC operation goes through ``cryptography`` (via the contexts cached on
:class:`~minolcore.lorawan.keys.AesKey`); nothing here implements AES itself.

Byte order: DevAddr, FCnt, AppNonce, NetID and DevNonce are little-endian on the air
and in every block below; the functions take them as integers (the value of the
little-endian field, e.g. DevAddr ``0x49BE7DF1`` for the wire bytes ``F1 7D BE 49``).
"""

from __future__ import annotations

import struct
from typing import TypeAlias

from minolcore.errors import InputError, LoRaWANError
from minolcore.lorawan.keys import KEY_SIZE, AesKey, as_key

__all__ = [
    "AI",
    "B0",
    "KEY_DERIVATION_BLOCK",
    "MIC_SIZE",
    "FRMPayloadSizeError",
    "KeyLike",
    "b0_block",
    "compute_data_mic",
    "compute_join_mic",
    "crypt_frm_payload",
    "derive_session_keys",
    "join_accept_decrypt",
    "join_accept_encrypt",
]

MIC_SIZE = 4
"""Length of a LoRaWAN MIC in bytes."""

B0 = struct.Struct("<B4xBIIxB")
"""B0 = 0x49 | 0x00 x4 | Dir | DevAddr (LE) | FCnt32 (LE) | 0x00 | len(msg)."""

AI = struct.Struct("<B4xBIIxB")
"""A_i = 0x01 | 0x00 x4 | Dir | DevAddr (LE) | FCnt32 (LE) | 0x00 | i."""

KEY_DERIVATION_BLOCK = struct.Struct("<B3s3sH7x")
"""0x01/0x02 | AppNonce (3, LE) | NetID (3, LE) | DevNonce (2, LE) | 7 zero bytes of pad."""

_B0_TAG = 0x49
_AI_TAG = 0x01
_NWK_S_KEY_TAG = 0x01
_APP_S_KEY_TAG = 0x02
_MAX_FRM_BLOCKS = 255  # i is one byte, so at most 255 keystream blocks (4080 bytes)
_MAX_MSG = 0xFF

KeyLike: TypeAlias = bytes | bytearray | memoryview | AesKey


class FRMPayloadSizeError(LoRaWANError, InputError):
    """A payload or message longer than the LoRaWAN blocks can describe (length in bytes)."""

    def __init__(self, length: int) -> None:
        super().__init__(f"{length} bytes exceed what the LoRaWAN B0/A_i blocks can describe")
        self.length = length


def b0_block(dev_addr: int, fcnt32: int, msg_len: int, *, uplink: bool) -> bytes:
    """The 16-byte B0 block for a data frame; ``msg_len`` in bytes (MHDR..FRMPayload)."""
    if not 0 <= msg_len <= _MAX_MSG:
        raise FRMPayloadSizeError(msg_len)
    return B0.pack(_B0_TAG, 0 if uplink else 1, dev_addr, fcnt32, msg_len)


def compute_data_mic(nwk_s_key: KeyLike, msg: bytes, *, dev_addr: int, fcnt32: int, uplink: bool) -> bytes:
    """The 4-byte MIC of a data frame: CMAC(NwkSKey, B0 | msg)[0:4].

    ``msg`` is MHDR through FRMPayload (the PHYPayload without its MIC); ``fcnt32`` is
    the full 32-bit frame counter, not the 16 transmitted bits.
    """
    if len(msg) > _MAX_MSG:
        # B0 holds the length in one byte; a longer message cannot be a LoRaWAN frame.
        raise FRMPayloadSizeError(len(msg))
    ctx = as_key(nwk_s_key).cmac_context()
    ctx.update(B0.pack(_B0_TAG, 0 if uplink else 1, dev_addr, fcnt32, len(msg)))
    ctx.update(msg)
    return ctx.finalize()[:MIC_SIZE]


def compute_join_mic(app_key: KeyLike, msg: bytes) -> bytes:
    """The 4-byte MIC of a JoinRequest or (plaintext) JoinAccept: CMAC(AppKey, msg)[0:4]."""
    ctx = as_key(app_key).cmac_context()
    ctx.update(msg)
    return ctx.finalize()[:MIC_SIZE]


def crypt_frm_payload(key: KeyLike, payload: bytes, *, dev_addr: int, fcnt32: int, uplink: bool) -> bytes:
    """Encrypt or decrypt an FRMPayload (the same XOR keystream operation both ways).

    ``key`` is the AppSKey for FPort 1..255 and the NwkSKey for FPort 0; the caller picks.
    Raises :class:`FRMPayloadSizeError` for payloads over 4080 bytes, which no frame can carry.
    """
    n = len(payload)
    if n == 0:
        return b""
    blocks = (n + 15) // 16
    if blocks > _MAX_FRM_BLOCKS:
        raise FRMPayloadSizeError(n)
    direction = 0 if uplink else 1
    a_blocks = b"".join([AI.pack(_AI_TAG, direction, dev_addr, fcnt32, i) for i in range(1, blocks + 1)])
    stream = as_key(key).ecb_encrypt(a_blocks)
    # XOR through integers: one C-level operation instead of a Python loop per byte.
    xored = int.from_bytes(payload, "little") ^ int.from_bytes(stream[:n], "little")
    return xored.to_bytes(n, "little")


def derive_session_keys(
    app_key: KeyLike, *, app_nonce: int, net_id: int, dev_nonce: int
) -> tuple[AesKey, AesKey]:
    """(NwkSKey, AppSKey) = AES-ECB(AppKey, 0x01|0x02 | AppNonce | NetID | DevNonce | pad).

    ``app_nonce`` and ``net_id`` are 24-bit and ``dev_nonce`` 16-bit integers (values of
    the little-endian fields).
    """
    key = as_key(app_key)
    nonce = app_nonce.to_bytes(3, "little")
    net = net_id.to_bytes(3, "little")
    blocks = KEY_DERIVATION_BLOCK.pack(_NWK_S_KEY_TAG, nonce, net, dev_nonce) + KEY_DERIVATION_BLOCK.pack(
        _APP_S_KEY_TAG, nonce, net, dev_nonce
    )
    out = key.ecb_encrypt(blocks)
    return AesKey(out[:KEY_SIZE]), AesKey(out[KEY_SIZE:])


def join_accept_encrypt(app_key: KeyLike, plaintext: bytes) -> bytes:
    """Encrypt a JoinAccept body (everything after MHDR, MIC included; 16 or 32 bytes).

    The network side uses AES *decryption* so that devices only need AES encryption.
    """
    return as_key(app_key).ecb_decrypt(plaintext)


def join_accept_decrypt(app_key: KeyLike, ciphertext: bytes) -> bytes:
    """Decrypt a JoinAccept body (16 or 32 bytes): the device runs AES *encryption*."""
    return as_key(app_key).ecb_encrypt(ciphertext)
