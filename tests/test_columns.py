"""Columnar mode-5 decryption equals the per-telegram path."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from minolcore.secret import AesKey
from minolcore.wmbus import decode, parse_frame, scan_frames
from minolcore.wmbus.columns import Mode5Status, decrypt_mode5_columns
from minolcore.wmbus.headers import TPLHeader, TPLKind
from minolcore.wmbus.security import seal_frame, unseal
from tests.test_frame import V1, V4, V5_B_WITH_CRC

V1_KEY = AesKey.from_hex("0102030405060708090A0B0C0D0E0F11")
V4_KEY = AesKey.from_hex("000102030405060708090A0B0C0D0E0F")


def test_vectors() -> None:
    frames = [bytes.fromhex(x) for x in (V1, V4, V5_B_WITH_CRC, V1, V4)]
    result = scan_frames(frames)
    keys = [V1_KEY, V4_KEY, None, V4_KEY, None]
    columns = decrypt_mode5_columns(result, keys)
    assert list(columns.status) == [
        Mode5Status.DECRYPTED,
        Mode5Status.DECRYPTED,
        Mode5Status.NOT_MODE5,
        Mode5Status.WRONG_KEY,
        Mode5Status.NO_KEY,
    ]
    for index, (frame, key) in enumerate(zip(frames[:2], keys[:2], strict=True)):
        start, length = int(columns.apl_offset[index]), int(columns.apl_length[index])
        apl = columns.plain[start : start + length].tobytes()
        assert apl == unseal(parse_frame(frame), key).apl
    v1 = decode(frames[0], key=V1_KEY)
    assert v1.records[0].value == 28504.27
    plain_v5 = columns.plain[int(columns.apl_offset[2]) : int(columns.apl_offset[2] + columns.apl_length[2])]
    assert plain_v5.tobytes() == parse_frame(frames[2]).payload


@given(
    st.lists(
        st.tuples(st.binary(min_size=2, max_size=60), st.integers(0, 255), st.integers(0, 2), st.booleans()),
        min_size=1,
        max_size=12,
    )
)
def test_equals_the_plain_path(items: list[tuple[bytes, int, int, bool]]) -> None:
    keys = [AesKey(bytes([k]) * 16) for k in range(3)]
    frames, row_keys = [], []
    for payload, acc, key_index, long_header in items:
        tpl = TPLHeader(
            ci=0x72 if long_header else 0x7A,
            kind=TPLKind.LONG if long_header else TPLKind.SHORT,
            acc=acc,
            sts=0,
            cf=0x0500,
            address=parse_frame(V4).tpl.address if long_header else None,
        )  # type: ignore[union-attr]
        frames.append(
            seal_frame(
                keys[key_index],
                manufacturer="QDS",
                id="12345678",
                version=1,
                device_type=7,
                tpl=tpl,
                payload=payload,
                shape="A",
            )
        )
        row_keys.append(keys[key_index])
    columns = decrypt_mode5_columns(scan_frames(frames), row_keys)
    assert np.all(columns.status == Mode5Status.DECRYPTED)
    for index, (frame, key) in enumerate(zip(frames, row_keys, strict=True)):
        start, length = int(columns.apl_offset[index]), int(columns.apl_length[index])
        assert columns.plain[start : start + length].tobytes() == unseal(parse_frame(frame), key).apl
