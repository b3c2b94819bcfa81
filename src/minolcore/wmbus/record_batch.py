"""Record decoding for many application layers at once, with the walker in the C core.

:func:`walk` walks the data records of a whole batch in one call into the C core
(``mc_walk_records``) and returns one row per record (:data:`RECORD_DTYPE`) plus one
status per application layer (:data:`WALK_INFO_DTYPE`). The C walker follows the DIF/VIF
structure and reads the unscaled numbers; the meaning of a VIB stays in the tables of
:mod:`minolcore.wmbus.vif`, looked up here once per distinct record header.

:func:`decode_records_batch` turns the rows into the same :class:`DecodedRecords` that
:func:`~minolcore.wmbus.records.decode_records` returns; an application layer the C walker
handed over (LVAR data such as text or compact profiles, a plain-text VIF) or found
malformed is decoded by the Python walker, so results and error texts are identical.
:func:`decode_record_columns` skips the record objects: numpy columns of scaled values.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from minolcore import _native
from minolcore.wmbus.dates import decode_timepoint
from minolcore.wmbus.records import FUNCTIONS, DataRecord, DecodedRecords, decode_records
from minolcore.wmbus.scan import _check_batch, pack_frames
from minolcore.wmbus.vif import (
    CODING_BCD,
    CODING_INT,
    CODING_NONE,
    CODING_REAL,
    FLAG_INVALID,
    FLAG_UNSIGNED,
    KIND_MANUFACTURER,
    KIND_NUMBER,
    KIND_TIMEPOINT,
    NO_OFFSET,
    read_vib,
    scale,
)

__all__ = [
    "RECORD_DTYPE",
    "WALK_INFO_DTYPE",
    "RecordColumns",
    "RecordFlag",
    "WalkResult",
    "WalkStatus",
    "decode_record_columns",
    "decode_records_batch",
    "walk",
]


class WalkStatus(enum.IntEnum):
    """Status of one application layer; the numbers are shared with the C core."""

    OK = 0
    HANDOVER = 1  # a record needs the Python walker (LVAR data, plain-text VIF)
    MALFORMED = 2
    NO_ROOM = 3  # the row array was full


class RecordFlag(enum.IntFlag):
    """Bits of the ``flags`` column. The numbers are shared with the C core."""

    NUMBER = 1  # value (integers, BCD) and real (every coding) hold the unscaled number
    MANUFACTURER_DATA = 2  # DIF 0x0F/0x1F: the data are the rest of the application layer
    MORE_FOLLOWS = 4  # DIF 0x1F
    GLOBAL_READOUT = 8  # DIF 0x7F/0xFF


# One row per record; the layout matches mc_record in csrc/minolcore.h.
RECORD_DTYPE = np.dtype(
    [
        ("value", "<i8"),
        ("real", "<f8"),
        ("storage", "<u8"),
        ("telegram", "<i4"),
        ("offset", "<i4"),
        ("data_offset", "<i4"),
        ("data_length", "<i4"),
        ("tariff", "<u4"),
        ("subunit", "<u2"),
        ("dib_length", "u1"),
        ("vib_length", "u1"),
        ("dib", "u1", (11,)),
        ("vib", "u1", (11,)),
        ("coding", "u1"),
        ("function", "u1"),
        ("flags", "u1"),
        ("reserved", "u1", (7,)),
    ]
)

# One row per application layer; the layout matches mc_walk_info.
WALK_INFO_DTYPE = np.dtype(
    [
        ("first_record", "<i8"),
        ("record_count", "<i4"),
        ("stop_offset", "<i4"),
        ("signature", "<u2"),
        ("status", "u1"),
        ("reserved", "u1", (5,)),
    ]
)

if _native.BACKEND == "cffi" and (
    _native.ffi.sizeof("mc_record") != RECORD_DTYPE.itemsize
    or _native.ffi.sizeof("mc_walk_info") != WALK_INFO_DTYPE.itemsize
):
    raise ImportError("mc_record/mc_walk_info and their dtypes disagree: rebuild the C core")


class WalkResult:
    """Rows of a walked batch: ``rows[info["first_record"][i] :][: info["record_count"][i]]``
    are the records of application layer ``i``; ``info["status"][i]`` says whether they are
    all of them (:class:`WalkStatus`)."""

    __slots__ = ("info", "rows")

    def __init__(self, rows: npt.NDArray[np.void], info: npt.NDArray[np.void]) -> None:
        self.rows = rows
        self.info = info

    def __len__(self) -> int:
        return len(self.info)


def walk(buffer: Any, offsets: Any, lengths: Any, *, max_rows: int | None = None) -> WalkResult:
    """Walk the records of the application layers ``buffer[offsets[i] : offsets[i] + lengths[i]]``.

    ``max_rows`` bounds the rows (by default one per byte, which always suffices). Raises
    :class:`~minolcore.errors.InputError` only for an inconsistent batch description.
    """
    buf, offs, lens = _check_batch(buffer, offsets, lengths)
    capacity = int(lens.sum()) if max_rows is None else max(0, max_rows)
    info = np.zeros(len(offs), dtype=WALK_INFO_DTYPE)
    if _native.BACKEND == "cffi":
        # Only the rows reported as used are read, so they need no zeroing.
        rows = np.empty(capacity, dtype=RECORD_DTYPE)
        ffi = _native.ffi
        used = _native.lib.mc_walk_records(
            ffi.from_buffer("uint8_t[]", buf),
            ffi.from_buffer("int64_t[]", offs),
            ffi.from_buffer("int32_t[]", lens),
            len(offs),
            ffi.from_buffer("mc_record[]", rows),
            capacity,
            ffi.from_buffer("mc_walk_info[]", info),
        )
    else:
        from minolcore._reference.records import walk_into  # noqa: PLC0415

        rows = np.zeros(capacity, dtype=RECORD_DTYPE)
        used = walk_into(buf, offs, lens, rows, info)
    return WalkResult(rows[:used], info)


# --- record objects -------------------------------------------------------------------------

_Header = tuple[str, str, str, str, int, int, tuple[str, ...], int, int, int, int, int, str, bool]
"""dif hex, vif hex, quantity, unit, exponent, kind, modifiers, VIB flags, offset exponent,
storage, tariff, subunit, function, signed"""

_HEADER_CACHE_LIMIT: Final = 4096
_headers: dict[bytes, _Header] = {}


def _header(head: bytes, dib_length: int, storage: int, tariff: int, subunit: int, function: int) -> _Header:
    """What the tables of :mod:`minolcore.wmbus.vif` say about a record header (DIB + VIB)."""
    found = _headers.get(head)
    if found is not None:
        return found
    dib, vib = head[:dib_length], head[dib_length:]
    _, _, quantity, unit, exponent, kind, modifiers, flags, offset_exp = read_vib(vib, 0, len(vib), 0)
    found = (
        dib.hex().upper(),
        vib.hex().upper(),
        quantity,
        unit,
        exponent,
        kind,
        modifiers,
        flags,
        offset_exp,
        storage,
        tariff,
        subunit,
        FUNCTIONS[function],
        kind == KIND_NUMBER and not flags & FLAG_UNSIGNED,
    )
    if len(_headers) >= _HEADER_CACHE_LIMIT:
        _headers.clear()
    _headers[head] = found
    return found


def _value(
    header: _Header, coding: int, data: bytes, has_number: bool, number: int | float
) -> tuple[float | int | str | bytes | None, bool]:
    """The value and validity of a fixed-length record, exactly as the Python walker reads it."""
    kind, flags, offset_exp = header[5], header[7], header[8]
    value: float | int | str | bytes | None
    if coding == CODING_NONE:
        value, valid = None, False
    elif kind == KIND_TIMEPOINT:
        value = decode_timepoint(data) if coding in (CODING_INT, CODING_BCD) else None
        valid = value is not None
    elif not has_number:
        value, valid = None, False
    else:
        if coding == CODING_INT and number < 0 and not header[13]:
            number += 1 << (8 * len(data))  # type C/D: the same bits read unsigned
        if kind == KIND_MANUFACTURER:
            value, valid = number, True
        else:
            exponent = header[4]
            value = scale(number, exponent) if exponent else number
            if offset_exp != NO_OFFSET:
                value = value + (10**offset_exp if offset_exp >= 0 else 1 / 10**-offset_exp)
            valid = True
    if flags & FLAG_INVALID:
        value, valid = None, False
    return value, valid


def _special(dif: int, apl: bytes, offset: int, flags: int) -> DataRecord:
    if flags & RecordFlag.MANUFACTURER_DATA:
        rest = apl[offset + 1 :]
        return DataRecord(
            dif=f"{dif:02X}",
            vif="",
            quantity="manufacturer_specific",
            unit="",
            value=rest,
            raw=rest.hex().upper(),
            offset=offset,
            more_follows=dif == 0x1F,
        )
    return DataRecord(
        dif=f"{dif:02X}", vif="", quantity="global_readout", unit="", value=None, valid=False, offset=offset
    )


_ROW_COLUMNS: Final = (
    "offset",
    "data_offset",
    "data_length",
    "dib_length",
    "coding",
    "flags",
    "value",
    "real",
    "storage",
    "tariff",
    "subunit",
    "function",
)


def records_from_rows(apls: Sequence[bytes], result: WalkResult) -> list[DecodedRecords]:
    """The :class:`DecodedRecords` of every application layer of a walked batch; layers the
    C walker did not finish are decoded by the Python walker."""
    info = result.info
    statuses = info["status"].tolist()
    counts = info["record_count"].tolist()
    signatures = info["signature"].tolist()
    # Whole columns to Python objects at once: field access on numpy rows costs more than
    # building the record.
    columns = [result.rows[name].tolist() for name in _ROW_COLUMNS]
    rows = zip(*columns, strict=True) if columns[0] else iter(())
    out: list[DecodedRecords] = []
    header_of = _header
    real_coding = CODING_REAL
    number_flag = int(RecordFlag.NUMBER)
    special_flags = int(RecordFlag.MANUFACTURER_DATA | RecordFlag.GLOBAL_READOUT)
    for apl, status, count, signature in zip(apls, statuses, counts, signatures, strict=True):
        records: list[DataRecord] = []
        for _ in range(count):
            (
                offset,
                data_offset,
                size,
                dib_length,
                coding,
                flags,
                value,
                real,
                storage,
                tariff,
                subunit,
                fn,
            ) = next(rows)
            if status != WalkStatus.OK:
                continue
            if flags & special_flags:
                records.append(_special(apl[offset], apl, offset, flags))
                continue
            header = header_of(apl[offset:data_offset], dib_length, storage, tariff, subunit, fn)
            data = apl[data_offset : data_offset + size]
            number = real if coding == real_coding else value
            decoded, valid = _value(header, coding, data, bool(flags & number_flag), number)
            records.append(
                DataRecord(
                    dif=header[0],
                    vif=header[1],
                    quantity=header[2],
                    unit=header[3],
                    value=decoded,
                    storage=header[9],
                    tariff=header[10],
                    subunit=header[11],
                    function=header[12],
                    valid=valid,
                    raw=data.hex().upper(),
                    offset=offset,
                    modifiers=header[6],
                )
            )
        if status == WalkStatus.OK:
            out.append(DecodedRecords(records=tuple(records), signature=signature))
        else:
            out.append(decode_records(apl))
    return out


def decode_records_batch(apls: Sequence[bytes]) -> list[DecodedRecords]:
    """:func:`~minolcore.wmbus.records.decode_records` of every application layer in
    ``apls`` (each from byte 0), with the same results, walked in one call into the C core."""
    if not apls:
        return []
    buffer, offsets, lengths = pack_frames(apls)
    return records_from_rows(apls, walk(buffer, offsets, lengths))


# --- columns ----------------------------------------------------------------------------------


class RecordColumns:
    """Records of a batch as numpy columns, one entry per record, without record objects.

    ``telegram`` (index into the batch), ``offset``, ``storage``, ``tariff``, ``subunit``,
    ``function`` (0-3, see :data:`~minolcore.wmbus.records.FUNCTIONS`), ``value`` (float64
    in ``units[unit[i]]``, scaled; NaN where not a number), ``valid``, ``quantity`` and
    ``unit`` (indexes into ``quantities`` and ``units``), ``timepoint`` (True for date and
    time records, whose ``value`` is NaN: their raw bytes are at ``data_offset`` /
    ``data_length`` of the walked rows). ``status`` has one :class:`WalkStatus` per
    application layer; the records of a layer whose status is not OK are left out (decode
    those with :func:`decode_records_batch`).
    """

    __slots__ = (
        "function",
        "offset",
        "quantities",
        "quantity",
        "status",
        "storage",
        "subunit",
        "tariff",
        "telegram",
        "timepoint",
        "unit",
        "units",
        "valid",
        "value",
    )

    telegram: npt.NDArray[np.int32]
    offset: npt.NDArray[np.int32]
    storage: npt.NDArray[np.uint64]
    tariff: npt.NDArray[np.uint32]
    subunit: npt.NDArray[np.uint16]
    function: npt.NDArray[np.uint8]
    value: npt.NDArray[np.float64]
    valid: npt.NDArray[np.bool_]
    quantity: npt.NDArray[np.int32]
    unit: npt.NDArray[np.int32]
    quantities: list[str]
    units: list[str]
    timepoint: npt.NDArray[np.bool_]
    status: npt.NDArray[np.uint8]

    def __init__(self, **columns: Any) -> None:
        for name in self.__slots__:
            setattr(self, name, columns[name])

    def __len__(self) -> int:
        return len(self.telegram)


def _vib_table(rows: npt.NDArray[np.void]) -> tuple[npt.NDArray[np.intp], list[tuple[Any, ...]]]:
    """(index of each row's VIB among the distinct VIBs, read_vib of each distinct VIB)."""
    lengths = rows["vib_length"]
    # VIBs of up to 7 bytes (nearly all) are told apart by one integer each, which sorts
    # several times faster than the 12-byte keys the longer ones need.
    packed = np.zeros((len(rows), 8), dtype=np.uint8)
    packed[:, :7] = rows["vib"][:, :7]
    packed[:, 7] = lengths
    keys = packed.view("<u8").ravel()
    long = lengths > 7
    inverse = np.empty(len(rows), dtype=np.intp)
    _, first, short_inverse = np.unique(keys[~long], return_index=True, return_inverse=True)
    inverse[~long] = short_inverse.ravel()
    vibs = [row[: row[7]] for row in map(bytes, packed[~long][first])]
    if long.any():
        wide = np.zeros((int(np.count_nonzero(long)), 12), dtype=np.uint8)
        wide[:, :11] = rows["vib"][long]
        wide[:, 11] = lengths[long]
        wide_keys = wide.view(np.dtype((np.void, 12))).ravel()
        wide_distinct, wide_inverse = np.unique(wide_keys, return_inverse=True)
        inverse[long] = len(vibs) + wide_inverse.ravel()
        vibs += [bytes(key)[: bytes(key)[11]] for key in wide_distinct]
    table = [read_vib(vib, 0, len(vib), 0)[2:] if vib else ("", "", 0, 0, (), 0, NO_OFFSET) for vib in vibs]
    return inverse, table


def decode_record_columns(buffer: Any, offsets: Any, lengths: Any) -> RecordColumns:
    """Walk and decode the records of a batch of application layers into numpy columns."""
    result = walk(buffer, offsets, lengths)
    ok = result.info["status"] == WalkStatus.OK
    rows = result.rows
    rows = rows[ok[rows["telegram"]]] if len(rows) else rows
    inverse, table = _vib_table(rows)
    quantities: list[str] = []
    units: list[str] = []
    quantity_ids: dict[str, int] = {}
    unit_ids: dict[str, int] = {}
    per_vib = np.zeros(
        len(table),
        dtype=[
            ("quantity", "<i4"),
            ("unit", "<i4"),
            ("exponent", "<i4"),
            ("kind", "u1"),
            ("flags", "u1"),
            ("offset_exp", "<i4"),
        ],
    )
    for index, (quantity, unit, exponent, kind, _, flags, offset_exp) in enumerate(table):
        per_vib[index] = (
            quantity_ids.setdefault(quantity, len(quantities)),
            unit_ids.setdefault(unit, len(units)),
            exponent,
            kind,
            flags,
            offset_exp,
        )
        if len(quantity_ids) > len(quantities):
            quantities.append(quantity)
        if len(unit_ids) > len(units):
            units.append(unit)
    vib = per_vib[inverse]
    special = (rows["flags"] & (RecordFlag.MANUFACTURER_DATA | RecordFlag.GLOBAL_READOUT)) != 0
    kind = vib["kind"]
    signed = (kind == KIND_NUMBER) & ((vib["flags"] & FLAG_UNSIGNED) == 0)
    coding = rows["coding"]
    number = rows["real"].copy()
    negative_unsigned = (coding == CODING_INT) & ~signed & (rows["value"] < 0)
    number[negative_unsigned] += np.ldexp(1.0, 8 * rows["data_length"][negative_unsigned])
    exponent = np.where(kind == KIND_MANUFACTURER, 0, vib["exponent"])
    scaled = np.where(exponent >= 0, number * 10.0 ** np.abs(exponent), number / 10.0 ** np.abs(exponent))
    with_offset = vib["offset_exp"] != NO_OFFSET
    scaled[with_offset] += 10.0 ** vib["offset_exp"][with_offset].astype(np.float64)
    timepoint = (kind == KIND_TIMEPOINT) & ~special
    valid = ((rows["flags"] & RecordFlag.NUMBER) != 0) & ~timepoint & ~special
    valid &= (vib["flags"] & FLAG_INVALID) == 0
    value = np.where(valid, scaled, np.nan)
    return RecordColumns(
        telegram=rows["telegram"].copy(),
        offset=rows["offset"].copy(),
        storage=rows["storage"].copy(),
        tariff=rows["tariff"].copy(),
        subunit=rows["subunit"].copy(),
        function=rows["function"].copy(),
        value=value,
        valid=valid,
        quantity=np.where(special, -1, vib["quantity"]),
        unit=np.where(special, -1, vib["unit"]),
        quantities=quantities,
        units=units,
        timepoint=timepoint,
        status=result.info["status"].copy(),
    )
