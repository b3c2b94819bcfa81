"""Columnar mode-5 decryption: a scanned batch decrypted without a Python object per telegram.

One AES-ECB call per distinct key decrypts every ciphertext block of that key's telegrams;
the CBC chaining (each block XORed with the ciphertext block before it, the first with the
IV M || A || ACC x 8) is done over numpy arrays. With the C record walker
(:func:`minolcore.wmbus.record_batch.decode_record_columns`) this is the fast path from
gateway bytes to record columns.
"""

from __future__ import annotations

import enum
import itertools
import operator
from collections.abc import Sequence
from typing import cast

import numpy as np
import numpy.typing as npt

from minolcore.errors import InputError
from minolcore.secret import AesKey
from minolcore.wmbus.frame import FrameStatus
from minolcore.wmbus.scan import Flag, ScanResult

__all__ = ["Mode5Columns", "Mode5Status", "decrypt_mode5_columns"]

_BLOCK = 16


class Mode5Status(enum.IntEnum):
    """Per-frame outcome of :func:`decrypt_mode5_columns`."""

    DECRYPTED = 0  # the plaintext starts with the 2F2F key check
    NOT_MODE5 = 1  # not a valid frame with a mode-5 TPL header and encrypted blocks
    NO_KEY = 2
    WRONG_KEY = 3  # decrypted, but the key check failed (wrong key or stored decrypted)
    TRUNCATED = 4  # the configuration field announces more blocks than the frame holds


class Mode5Columns:
    """The application layers of a batch: ``plain[apl_offset[i] : apl_offset[i] + apl_length[i]]``
    is frame ``i``'s application layer (decrypted where ``status[i]`` is DECRYPTED), offsets
    and lengths in bytes."""

    __slots__ = ("apl_length", "apl_offset", "plain", "status")

    def __init__(
        self,
        plain: npt.NDArray[np.uint8],
        apl_offset: npt.NDArray[np.int64],
        apl_length: npt.NDArray[np.int64],
        status: npt.NDArray[np.uint8],
    ) -> None:
        self.plain = plain
        self.apl_offset = apl_offset
        self.apl_length = apl_length
        self.status = status

    def __len__(self) -> int:
        return len(self.status)


def _ivs(info: npt.NDArray[np.void], rows: npt.NDArray[np.intp]) -> npt.NDArray[np.uint8]:
    """Mode-5 IVs of ``rows``: the meter's M (2, LE), ID (4, LE), version, type, then ACC x 8."""
    iv = np.empty((len(rows), _BLOCK), dtype=np.uint8)
    iv[:, 0:2] = np.ascontiguousarray(info["meter_manufacturer"][rows]).view(np.uint8).reshape(-1, 2)
    iv[:, 2:6] = np.ascontiguousarray(info["meter_id"][rows]).view(np.uint8).reshape(-1, 4)
    iv[:, 6] = info["meter_version"][rows]
    iv[:, 7] = info["meter_device_type"][rows]
    iv[:, 8:] = info["acc"][rows][:, None]
    return iv


def decrypt_mode5_columns(result: ScanResult, keys: Sequence[AesKey | None]) -> Mode5Columns:
    """Decrypt the mode-5 frames of a scanned batch; ``keys[i]`` is frame ``i``'s key (or None).

    Frames that are not mode 5 keep their bytes (their ``status`` says why). Raises
    :class:`InputError` when ``keys`` does not have one entry per frame.
    """
    info = result.info
    count = len(info)
    if len(keys) != count:
        raise InputError(f"{len(keys)} keys for {count} frames")
    apl_offset = info["out_offset"].astype(np.int64) + info["apl_offset"]
    apl_length = info["out_length"].astype(np.int64) - info["apl_offset"]
    plain = result.output.copy()
    size = info["encrypted_blocks"].astype(np.int64) * _BLOCK
    candidate = (
        (info["status"] == FrameStatus.OK)
        & ((info["flags"] & (Flag.TPL | Flag.HIDDEN)) == Flag.TPL)
        & (info["security_mode"] == 5)
        & (size > 0)
    )
    status = np.full(count, Mode5Status.NOT_MODE5, dtype=np.uint8)
    status[candidate & (size > apl_length)] = Mode5Status.TRUNCATED
    candidate &= size <= apl_length
    chosen = np.flatnonzero(candidate)
    chosen_keys = list(map(keys.__getitem__, chosen.tolist()))
    has_key = np.fromiter(
        map(operator.is_not, chosen_keys, itertools.repeat(None)), dtype=np.bool_, count=len(chosen)
    )
    status[chosen[~has_key]] = Mode5Status.NO_KEY
    if has_key.any():
        # All frames at once, each key's frames side by side: one ECB call per key is all
        # that is done key by key (a meter has its own key, so a batch has hundreds).
        # Frames are grouped by key object (the pipeline holds one per meter), without a
        # Python loop or a hash of the key per frame; equal keys in two objects would just
        # take two calls.
        keyed = np.flatnonzero(has_key)
        objects = np.fromiter(
            map(id, map(chosen_keys.__getitem__, keyed.tolist())), dtype=np.uint64, count=len(keyed)
        )
        # One stable sort puts each key's frames together, in batch order within the key.
        order = np.argsort(objects, kind="stable")
        grouped = objects[order]
        group_starts = np.flatnonzero(np.concatenate(([True], grouped[1:] != grouped[:-1])))
        rows = chosen[keyed[order]]
        sizes = size[rows]
        blocks = sizes // _BLOCK
        first_block = np.cumsum(blocks) - blocks
        # Blocks are gathered and put back as 16-byte rows of a view of plain with a row
        # starting at every byte: one index per block, not per byte. A frame's blocks never
        # overlap another's, so writing through the view changes each byte once.
        windows = np.lib.stride_tricks.as_strided(
            plain, shape=(len(plain) - _BLOCK + 1, _BLOCK), strides=(1, 1)
        )
        block_at = np.repeat(apl_offset[rows] - first_block * _BLOCK, blocks)
        block_at += np.arange(len(block_at), dtype=np.int64) * _BLOCK
        cipher = windows[block_at]
        ciphertext = cipher.tobytes()
        byte_ends = np.cumsum(sizes)[np.append(group_starts[1:], len(order)) - 1].tolist()
        pieces = []
        start = 0
        for first, end in zip(keyed[order[group_starts]].tolist(), byte_ends, strict=True):
            key = cast(AesKey, chosen_keys[first])
            pieces.append(key.ecb_decrypt(ciphertext[start:end]))
            start = end
        decrypted = np.frombuffer(b"".join(pieces), dtype=np.uint8).reshape(-1, _BLOCK)
        chain = np.empty_like(cipher)
        chain[1:] = cipher[:-1]
        chain[first_block] = _ivs(info, rows)
        windows[block_at] = decrypted ^ chain
        starts = apl_offset[rows]
        ok = (plain[starts] == 0x2F) & (plain[starts + 1] == 0x2F)
        status[rows] = np.where(ok, Mode5Status.DECRYPTED, Mode5Status.WRONG_KEY)
    return Mode5Columns(plain, apl_offset, apl_length, status)
