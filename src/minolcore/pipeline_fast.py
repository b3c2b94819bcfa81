"""The columnar wireless M-Bus path of the pipeline: store rows without telegram objects.

For a batch of uplinks after the network stage, the mode-5 telegrams with a plain TPL
header are decrypted together (:func:`~minolcore.wmbus.columns.decrypt_mode5_columns`, one
AES call per key) and their records walked in one call into the C core
(:func:`~minolcore.wmbus.record_batch.walk`). Reading rows, the device kind and the status
events are then derived from the walked rows with the very functions the object path
uses for each value (:func:`~minolcore.wmbus.record_batch._header` and ``_value``), so the
rows are the same; everything else (other modes, records the C walker hands over,
profiles whose choice depends on the records, compact frames) takes the object path.

The kind and the status of a built-in profile depend only on the TPL status byte, the
first plain main-unit error-flag record and (EI Electronics) the 0xFF 0x2C head record.
The fast path therefore builds a typed model once per distinct combination of those, with
the object path's own code, and reuses its kind and faults.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Final

import numpy as np

from minolcore.devices import ProfileRegistry
from minolcore.devices.models import DeviceIdentity
from minolcore.devices.profiles import (
    EiSmokeDetectorProfile,
    GenericProfile,
    HeatCostAllocatorProfile,
    HeatMeterProfile,
    SmokeDetectorProfile,
    WaterMeterProfile,
    ZennerWaterProfile,
)
from minolcore.errors import MinolcoreError
from minolcore.readings import READING_QUANTITIES, iso_minute
from minolcore.store.base import ReadingRow
from minolcore.wmbus.columns import Mode5Status, decrypt_mode5_columns
from minolcore.wmbus.compact import FormatSignatureCache
from minolcore.wmbus.frame import FrameStatus
from minolcore.wmbus.headers import COMPACT_CIS
from minolcore.wmbus.record_batch import RecordFlag, WalkStatus, _header, _value, walk
from minolcore.wmbus.records import decode_records
from minolcore.wmbus.scan import Flag, ScanResult, pack_frames, scan
from minolcore.wmbus.vif import CODING_REAL

__all__ = [
    "FastRecords",
    "LayoutLearner",
    "fast_records",
    "memoisable_profile",
    "minute",
    "scan_uplink_frames",
]

# Built-in profiles that accept every record set and whose kind and faults depend only on
# the inputs named in the module docstring (checked by exact type: a subclass may differ).
_MEMOISABLE: Final = (
    HeatCostAllocatorProfile,
    HeatMeterProfile,
    WaterMeterProfile,
    ZennerWaterProfile,
    SmokeDetectorProfile,
    EiSmokeDetectorProfile,
    GenericProfile,
)
_FAST_FLAGS: Final = (int(Flag.TPL), int(Flag.TPL | Flag.LONG_TPL))
_FAST_TPL_CIS: Final = (0x7A, 0x72)
_TIME_QUANTITIES: Final = frozenset(("date", "datetime"))
_NEUTRAL: Final = frozenset(("standard_conform_data_content", "forward_flow", "value_at_base_conditions"))
_SPECIAL: Final = int(RecordFlag.MANUFACTURER_DATA | RecordFlag.GLOBAL_READOUT)
_NUMBER: Final = int(RecordFlag.NUMBER)
_ROW_COLUMNS: Final = (
    "telegram",
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


def memoisable_profile(registry: ProfileRegistry, identity: DeviceIdentity) -> object | None:
    """The profile that maps every telegram of ``identity`` when it is a built-in one whose
    kind and faults the fast path may memoise, else None."""
    first = registry.candidates(identity)[0]
    return first if type(first) in _MEMOISABLE else None


class FastRecords:
    """What the fast path read from one telegram.

    ``readings``: (reading time, quantity, storage, tariff, subunit, function, value, unit,
    valid) per reading row; ``event_time``: the model's reading time as "YYYY-MM-DDTHH:MM";
    ``status_key``: the inputs of the profile's kind and faults; ``apl``: the plaintext
    application layer (for building the model of a new status key).
    """

    __slots__ = ("apl", "event_time", "layout", "readings", "signature", "status_key", "sts")

    def __init__(
        self,
        readings: list[tuple[Any, ...]],
        event_time: str,
        sts: int,
        status_key: tuple[Any, ...],
        apl: bytes,
        layout: tuple[str, ...],
        signature: int,
    ) -> None:
        self.readings = readings
        self.event_time = event_time
        self.sts = sts
        self.status_key = status_key
        self.apl = apl
        self.layout = layout
        self.signature = signature


def _stamp(value: str) -> str:
    return value if "T" in value else f"{value}T00:00"


def minute(text: str) -> str:
    """An ISO time as "YYYY-MM-DDTHH:MM" in UTC, the form reading rows use."""
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        return text
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M")


def scan_uplink_frames(frames: Sequence[bytes]) -> ScanResult:
    """The canonical frames of the uplinks, scanned as the object path decodes them."""
    buffer, offsets, lengths = pack_frames(frames)
    return scan(buffer, offsets, lengths, crc="absent")


def fast_records(
    scanned: ScanResult,
    keys: Sequence[Any],
    eligible: np.ndarray[Any, np.dtype[np.bool_]],
    received_at: Sequence[float],
    signatures: FormatSignatureCache,
) -> tuple[list[FastRecords | None], np.ndarray[Any, np.dtype[np.bool_]]]:
    """(per telegram its :class:`FastRecords` or None for the object path, which telegrams
    depend on the format-signature cache as it stands before them).

    ``eligible``: telegrams whose device the fast path may map (see
    :func:`memoisable_profile`); ``received_at``: first reception time per telegram in s.
    The layouts of the telegrams read here are not learnt: :func:`learn_layout` does that
    in batch order.
    """
    info = scanned.info
    count = len(info)
    out: list[FastRecords | None] = [None] * count
    ci = info["ci"]
    tpl_ci = info["tpl_ci"]
    dependent = ((info["flags"] & Flag.HIDDEN) != 0) | np.isin(ci, list(COMPACT_CIS))
    dependent |= np.isin(tpl_ci, list(COMPACT_CIS))
    dependent &= info["status"] == FrameStatus.OK
    if not count:
        return out, dependent
    decrypted = decrypt_mode5_columns(scanned, keys)
    chosen = (
        eligible
        & (decrypted.status == Mode5Status.DECRYPTED)
        & np.isin(info["flags"], _FAST_FLAGS)
        & np.isin(tpl_ci, _FAST_TPL_CIS)
    )
    index = np.flatnonzero(chosen)
    if not len(index):
        return out, dependent
    starts = decrypted.apl_offset[index]
    lengths = decrypted.apl_length[index]
    walked = walk(decrypted.plain, starts, lengths.astype(np.int32))
    plain = decrypted.plain.tobytes()
    statuses = walked.info["status"].tolist()
    walked_signatures = walked.info["signature"].tolist()
    counts = walked.info["record_count"].tolist()
    firsts = walked.info["first_record"].tolist()
    sts_column = scanned.output[info["out_offset"][index] + info["apl_offset"][index] - 3].tolist()
    columns = [walked.rows[name].tolist() for name in _ROW_COLUMNS]
    rows = list(zip(*columns, strict=True)) if columns[0] else []
    for position, row in enumerate(index.tolist()):
        if statuses[position] != WalkStatus.OK:
            continue
        start = int(starts[position])
        apl = plain[start : start + int(lengths[position])]
        first = firsts[position]
        out[row] = _read(
            apl,
            rows[first : first + counts[position]],
            received_at[row],
            sts_column[position],
            walked_signatures[position],
        )
    return out, dependent


def _read(
    apl: bytes, rows: list[tuple[Any, ...]], received_at: float, sts: int, signature: int
) -> FastRecords:
    """The reading rows and status inputs of one application layer, as the object path
    derives them from its record objects (readings.reading_rows, profiles._reading_time,
    profiles.standard_status and the EI Electronics head)."""
    records: list[tuple[Any, ...]] = []
    layout: list[str] = []
    for (
        _,
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
    ) in rows:
        if flags & _SPECIAL:
            # Manufacturer data and global readout: no value, no date, no status.
            layout.append(f"{apl[offset]:02X}")
            continue
        header = _header(apl[offset:data_offset], dib_length, storage, tariff, subunit, fn)
        layout.append(header[0] + header[1])
        number = real if coding == CODING_REAL else value
        decoded, valid = _value(
            header, coding, apl[data_offset : data_offset + size], bool(flags & _NUMBER), number
        )
        records.append((header, decoded, valid))
    now: str | None = None
    dates: dict[tuple[int, int, int], str] = {}
    datetime_rec: tuple[Any, ...] | None = None
    date_rec: tuple[Any, ...] | None = None
    error_flags: int | None = None
    error_found = False
    head: int | None = None
    for record in records:
        header, decoded, valid = record
        quantity = header[2]
        storage, tariff, subunit, function = header[9], header[10], header[11], header[12]
        plain_main = (
            storage == 0
            and tariff == 0
            and subunit == 0
            and function == "instantaneous"
            and all(name in _NEUTRAL for name in header[6])
        )
        if quantity in _TIME_QUANTITIES:
            if valid and isinstance(decoded, str):
                stamp = _stamp(decoded)
                if now is None and storage == 0 and function == "instantaneous":
                    now = stamp
                dates.setdefault((storage, tariff, subunit), stamp)
                dates.setdefault((storage, -1, -1), stamp)
            if plain_main:
                if quantity == "datetime" and datetime_rec is None:
                    datetime_rec = record
                elif quantity == "date" and date_rec is None:
                    date_rec = record
        elif quantity == "error_flags":
            if plain_main and not error_found:
                error_found = True
                if isinstance(decoded, int) and not isinstance(decoded, bool):
                    error_flags = decoded
        elif (
            quantity == "manufacturer_specific"
            and head is None
            and header[1] == "FF2C"
            and subunit == 1
            and storage == 0
            and isinstance(decoded, int)
            and not isinstance(decoded, bool)
        ):
            head = decoded
    current = iso_minute(received_at) if now is None else now
    readings: list[tuple[Any, ...]] = []
    for header, decoded, valid in records:
        quantity = header[2]
        if quantity not in READING_QUANTITIES:
            continue
        if not (
            (isinstance(decoded, int | float) and not isinstance(decoded, bool))
            or (decoded is None and not valid)
        ):
            continue
        storage = header[9]
        if storage == 0:
            stamp = current
        else:
            found = dates.get((storage, header[10], header[11])) or dates.get((storage, -1, -1))
            if found is None:
                continue
            stamp = found
        readings.append(
            (
                stamp,
                quantity,
                storage,
                header[10],
                header[11],
                header[12],
                float(decoded) if isinstance(decoded, int | float) else None,
                header[3],
                valid,
            )
        )
    if datetime_rec is not None and isinstance(datetime_rec[1], str):
        event_time = minute(datetime_rec[1])
    elif date_rec is not None and isinstance(date_rec[1], str):
        event_time = minute(date_rec[1])
    else:
        event_time = iso_minute(received_at)
    return FastRecords(readings, event_time, sts, (sts, error_flags, head), apl, tuple(layout), signature)


class LayoutLearner:
    """Teaches a signature cache the layouts of fast-path telegrams, as the object path
    does for every full frame. ``known`` mirrors what the cache holds for the signatures
    seen (cleared with :meth:`forget` whenever the object path may have learnt)."""

    def __init__(self, signatures: FormatSignatureCache) -> None:
        self.signatures = signatures
        self.known: dict[int, tuple[str, ...]] = {}

    def forget(self) -> None:
        self.known.clear()

    def learn(self, fast: FastRecords) -> None:
        if not fast.layout:
            return
        if self.known.get(fast.signature) == fast.layout:
            return
        try:
            held: tuple[str, ...] | None = self.signatures.layout(fast.signature)
        except MinolcoreError:
            held = None
        if held != fast.layout:
            # Rare (a layout not seen before): the cache learns from the record objects,
            # exactly as in the object path.
            signature = self.signatures.learn(decode_records(fast.apl))
            if signature is None:
                return
            self.known[signature] = self.signatures.layout(signature)
            return
        self.known[fast.signature] = fast.layout


def reading_row_objects(
    readings: list[tuple[Any, ...]],
    *,
    device_uid: str,
    uplink_key: str,
    building_id: str | None,
    unit_id: str | None,
) -> list[ReadingRow]:
    """:class:`ReadingRow` objects of the tuples :func:`fast_records` read."""
    return [
        ReadingRow(
            device_uid=device_uid,
            reading_time=stamp,
            quantity=quantity,
            storage=storage,
            tariff=tariff,
            subunit=subunit,
            function=function,
            value=value,
            unit=unit,
            valid=valid,
            building_id=building_id,
            unit_id=unit_id,
            uplink_key=uplink_key,
        )
        for stamp, quantity, storage, tariff, subunit, function, value, unit, valid in readings
    ]
