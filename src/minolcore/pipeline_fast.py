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
import operator
from collections.abc import Sequence
from typing import Any, Final, NamedTuple

import msgspec
import numpy as np

from minolcore._layout_plans import (
    NUMBER,
    SPECIAL,
    TIME_QUANTITIES,
    ReadingColumn,
    ReadingTimes,
    ei_head,
    plain_main,
    read_by_layout,
)
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
from minolcore.readings import READING_QUANTITIES, iso_minute, reading_stamp
from minolcore.wmbus.columns import Mode5Status, decrypt_mode5_columns
from minolcore.wmbus.compact import FormatSignatureCache
from minolcore.wmbus.frame import MAX_FRAME_INPUT, FrameStatus, parse_frame
from minolcore.wmbus.headers import (
    AFL_KI_PRESENT,
    AFL_MAC_LENGTHS,
    AFL_MAC_PRESENT,
    AFL_MCL_PRESENT,
    AFL_MCR_PRESENT,
    AFL_ML_PRESENT,
    CI_AFL,
    COMPACT_CIS,
)
from minolcore.wmbus.record_batch import WalkStatus, _header, _value, walk
from minolcore.wmbus.records import decode_records
from minolcore.wmbus.scan import Flag, ScanResult, pack_frames, scan
from minolcore.wmbus.security import STATUS_DECRYPTED, OMSKey, as_key, open_mode7, unseal
from minolcore.wmbus.vif import CODING_REAL

__all__ = [
    "FastRead",
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
_FAST_MODE7_FLAGS: Final = tuple(
    int(Flag.AFL | Flag.TPL | extra) for extra in (0, Flag.MCR, Flag.LONG_TPL, Flag.MCR | Flag.LONG_TPL)
)
# The mode-7 shape _unseal_mode7 reads from the bytes: an AFL with MCL, MCR and MAC (FCL
# bits), the TPL CIs of _FAST_TPL_CIS, and the smallest input holding the AFL's FCL and MCL.
_AFL_NEEDED: Final = AFL_MCL_PRESENT | AFL_MCR_PRESENT | AFL_MAC_PRESENT
_CI_SHORT_TPL: Final = 0x7A
_CI_LONG_TPL: Final = 0x72
_MODE7: Final = 7
_KDF_SELECTION_OMS: Final = 1
_MODE7_MIN_INPUT: Final = 15  # bytes
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


class FastRecords(msgspec.Struct, gc=False):
    """What the fast path read from one telegram.

    ``readings``: (reading time, quantity, storage, tariff, subunit, function, value, unit,
    valid) per reading row of a telegram read record by record (a telegram read by its
    layout's plan has its rows in the batch's :class:`ReadingColumn` list);
    ``event_minute``: the model's reading time "YYYY-MM-DDTHH:MM" as a number of the batch's
    :class:`ReadingTimes` (:attr:`FastRead.times`); ``status_key``: the
    inputs of the profile's kind and faults; ``data``, ``apl_offset`` and ``apl_length``:
    where the plaintext application layer lies in the batch's plaintexts (bytes), read as
    :attr:`apl` only to learn a new layout or build the model of a new status key. A
    struct, not a class with ``__init__``: one is made per telegram, and the struct's
    constructor runs in C.
    """

    readings: list[tuple[Any, ...]]
    event_minute: int
    sts: int
    status_key: tuple[Any, ...]
    data: bytes
    apl_offset: int
    apl_length: int
    layout: tuple[str, ...]
    signature: int

    @property
    def apl(self) -> bytes:
        """The plaintext application layer (sliced when asked for: rarely needed)."""
        return self.data[self.apl_offset : self.apl_offset + self.apl_length]


class FastRead(NamedTuple):
    """What :func:`fast_records` read of a batch of telegrams."""

    #: Per telegram its :class:`FastRecords`, or None for the object path.
    records: list[FastRecords | None]
    #: Which telegrams depend on the format-signature cache as it stands before them.
    dependent: np.ndarray[Any, np.dtype[np.bool_]]
    #: The reading rows of the telegrams read by their layout's plan (telegrams by index).
    columns: list[ReadingColumn]
    #: The numbers of the reading times in ``columns``.
    times: ReadingTimes


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
    frames: Sequence[bytes] | None = None,
) -> FastRead:
    """What the columnar path reads of a batch of telegrams (see :class:`FastRead`).

    ``eligible``: telegrams whose device the fast path may map (see
    :func:`memoisable_profile`); ``received_at``: first reception time per telegram in s;
    ``frames``: the frames as received, which lets mode-7 telegrams (AFL, plain TPL
    header) take the fast path too. The layouts of the telegrams read here are not learnt:
    :func:`learn_layout` does that in batch order.
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
        return FastRead(out, dependent, [], ReadingTimes())
    decrypted = decrypt_mode5_columns(scanned, keys)
    chosen = (
        eligible
        & (decrypted.status == Mode5Status.DECRYPTED)
        & np.isin(info["flags"], _FAST_FLAGS)
        & np.isin(tpl_ci, _FAST_TPL_CIS)
    )
    index = np.flatnonzero(chosen)
    # The mode-5 application layers stay where decryption put them (walked in place, not
    # copied out one by one); the mode-7 ones follow them in one buffer.
    plain = decrypted.plain.tobytes()
    apl_offsets = decrypted.apl_offset[index]
    apl_lengths = decrypted.apl_length[index].astype(np.int32)
    sealed: list[bytes] = []
    positions = index.tolist()
    sts_column = scanned.output[info["out_offset"][index] + info["apl_offset"][index] - 3].tolist()
    if frames is not None:
        mode7 = (
            eligible
            & (info["status"] == FrameStatus.OK)
            & (info["security_mode"] == 7)
            & np.isin(info["flags"], _FAST_MODE7_FLAGS)
            & np.isin(tpl_ci, _FAST_TPL_CIS)
        )
        for row in np.flatnonzero(mode7).tolist():
            found = _unseal_mode7(frames[row], keys[row])
            if found is not None:
                positions.append(row)
                sealed.append(found[0])
                sts_column.append(found[1])
    if not positions:
        return FastRead(out, dependent, [], ReadingTimes())
    data = plain
    if sealed:
        _, sealed_offsets, sealed_lengths = pack_frames(sealed)
        data = plain + b"".join(sealed)
        apl_offsets = np.concatenate((apl_offsets, sealed_offsets + len(plain)))
        apl_lengths = np.concatenate((apl_lengths, sealed_lengths))
    buffer = np.frombuffer(data, dtype=np.uint8)
    walked = walk(buffer, apl_offsets, apl_lengths)
    starts = apl_offsets.tolist()
    sizes = apl_lengths.tolist()
    ok = walked.info["status"] == WalkStatus.OK
    walked_signatures = walked.info["signature"].tolist()
    received = [received_at[row] for row in positions]
    times = ReadingTimes()
    layout_reads, columns = read_by_layout(
        buffer,
        apl_offsets,
        walked.rows,
        walked.info["first_record"],
        walked.info["record_count"],
        np.flatnonzero(ok),
        received,
        _minute_of,
        times,
    )
    telegram_of = np.asarray(positions, dtype=np.int64)
    for column in columns:
        column.telegrams = telegram_of[column.telegrams]
    rest = ok.copy()  # left: the layouts without a plan, read record by record
    for read in layout_reads:
        layout = read.layout
        for position, event_minute, error_flags, head in zip(
            read.positions, read.event_minutes, read.error_flags, read.heads, strict=True
        ):
            sts = sts_column[position]
            out[positions[position]] = FastRecords(
                [],
                event_minute,
                sts,
                (sts, error_flags, head),
                data,
                starts[position],
                sizes[position],
                layout,
                walked_signatures[position],
            )
        rest[read.positions] = False
    if not rest.any():
        return FastRead(out, dependent, columns, times)
    entries = _entries(data, apl_offsets, walked.rows, rest[walked.rows["telegram"]])
    counts = walked.info["record_count"].tolist()
    firsts = walked.info["first_record"].tolist()
    for position in np.flatnonzero(rest).tolist():
        first = firsts[position]
        out[positions[position]] = _read(
            data,
            starts[position],
            sizes[position],
            entries[first : first + counts[position]],
            received[position],
            sts_column[position],
            walked_signatures[position],
            times,
        )
    return FastRead(out, dependent, columns, times)


def _unseal_mode7(raw: bytes, key: Any) -> tuple[bytes, int] | None:
    """(application layer, TPL status) of a mode-7 telegram the object path decrypts, or
    None when it does not (the object path then reports it).

    Exactly :func:`_unseal_mode7_objects` (parse, key derivation, MAC check, CBC), read
    straight from the bytes for the shape the scan hands over: link header, AFL with MCL,
    MCR and MAC (KI and ML optional), short or long TPL header announcing mode 7. Any
    other shape, and any header that does not fit, takes the objects themselves.
    """
    if key is None:
        return None
    if type(raw) is not bytes or not _MODE7_MIN_INPUT <= len(raw) <= MAX_FRAME_INPUT or raw[10] != CI_AFL:
        return _unseal_mode7_objects(raw, key)
    size = raw[0] + 1
    if not _MODE7_MIN_INPUT <= size <= len(raw):
        return _unseal_mode7_objects(raw, key)
    # Mode 7 never reads the bytes beyond L (only ciphertext inside L is authenticated):
    # every index below is checked against ``size``, and slices reaching the end stop there.
    fcl = raw[12] | (raw[13] << 8)
    if fcl & _AFL_NEEDED != _AFL_NEEDED:
        return _unseal_mode7_objects(raw, key)
    mac_length = AFL_MAC_LENGTHS.get(raw[14] & 0x0F)
    tpl_at = 12 + raw[11]  # the AFL ends where AFLL says
    mcr_at = 17 if fcl & AFL_KI_PRESENT else 15
    mac_at = mcr_at + 4
    if mac_length is None or tpl_at >= size:
        return _unseal_mode7_objects(raw, key)
    mac_end = mac_at + mac_length
    fields_end = mac_end + 2 if fcl & AFL_ML_PRESENT else mac_end
    tpl_ci = raw[tpl_at]
    if tpl_ci == _CI_SHORT_TPL:
        cf_at = tpl_at + 3
        id_at = 4  # the link-layer ID keys a short header's telegram
    elif tpl_ci == _CI_LONG_TPL:
        cf_at = tpl_at + 11
        id_at = tpl_at + 1  # the real meter behind the radio converter
    else:
        return _unseal_mode7_objects(raw, key)
    payload_at = cf_at + 3  # CF (2) and the mode-7 CF extension
    cf = raw[cf_at] | (raw[cf_at + 1] << 8) if payload_at <= size else 0
    if fields_end > tpl_at or (cf >> 8) & 0x1F != _MODE7:
        return _unseal_mode7_objects(raw, key)
    # From here on the object path fails exactly when these checks do: a KDF other than
    # the OMS one, no encrypted block ("not encrypted"), blocks reaching beyond L, then
    # (open_mode7) the MAC and the 2F2F prefix.
    cipher_end = payload_at + ((cf >> 4) & 0x0F) * 16
    if (raw[cf_at + 2] >> 4) & 0x3 != _KDF_SELECTION_OMS or cipher_end == payload_at or cipher_end > size:
        return None
    if type(key) is not OMSKey:  # the keys of a key file are OMSKeys already
        try:
            key = as_key(key)
        except MinolcoreError:
            return None
    authenticated = raw[14:mac_at] + raw[mac_end:fields_end] + raw[tpl_at:size]
    plain = open_mode7(
        key,
        raw[mcr_at:mac_at] + raw[id_at : id_at + 4],
        authenticated,
        raw[mac_at:mac_end],
        raw[payload_at:cipher_end],
    )
    if plain is None:
        return None
    return plain + raw[cipher_end:size], raw[cf_at - 1]


def _unseal_mode7_objects(raw: bytes, key: Any) -> tuple[bytes, int] | None:
    """:func:`_unseal_mode7` through the frame objects: the object path's own calls."""
    try:
        unsealed = unseal(parse_frame(raw, crc="absent"), key, allow_plaintext=False)
    except MinolcoreError:
        return None
    tpl = unsealed.frame.tpl
    if unsealed.status != STATUS_DECRYPTED or unsealed.frame.hidden or tpl is None:
        return None
    return unsealed.apl, tpl.sts


_RECORD_CACHE_LIMIT: Final = 1 << 16
# What a record contributes to the status inputs of its telegram (see _record).
_OTHER: Final = 0
_TIME: Final = 1
_ERROR: Final = 2
_HEAD: Final = 3
_Entry = tuple[str, int, tuple[Any, ...], tuple[Any, ...] | None]
# Record bytes (DIB, VIB, data) -> what _read needs of the record: a record's value depends
# on its bytes only, and meters repeat most of them (due dates, unchanged totals), so each
# distinct record is read once.
_records: dict[bytes, _Entry] = {}
_UNREAD: Final[_Entry] = ("", _OTHER, (), None)
_SPECIAL_ENTRIES: Final[tuple[_Entry, ...]] = tuple((f"{dif:02X}", _OTHER, (), None) for dif in range(256))


def _record(
    key: bytes,
    apl: bytes,
    offset: int,
    data_offset: int,
    size: int,
    dib_length: int,
    coding: int,
    flags: int,
    value: int,
    real: float,
    storage: int,
    tariff: int,
    subunit: int,
    fn: int,
) -> _Entry:
    """(layout entry, status kind, status data, reading) of one record. The status data
    of a date is (quantity, storage, tariff, subunit, current-time candidate, plain main
    unit, value or None); of error flags (plain main unit, value or None); of the EI head
    its value. The reading is (storage, tariff, subunit, the reading row without its time)
    or None."""
    header = _header(apl[offset:data_offset], dib_length, storage, tariff, subunit, fn)
    number = real if coding == CODING_REAL else value
    decoded, valid = _value(
        header, coding, apl[data_offset : data_offset + size], bool(flags & NUMBER), number
    )
    quantity, storage, tariff, subunit, function = header[2], header[9], header[10], header[11], header[12]
    plain = plain_main(header)
    integer = isinstance(decoded, int) and not isinstance(decoded, bool)
    kind: int = _OTHER
    data: tuple[Any, ...] = ()
    if quantity in TIME_QUANTITIES:
        stamp = reading_stamp(decoded) if valid and isinstance(decoded, str) else None
        current = storage == 0 and function == "instantaneous"
        kind, data = _TIME, (quantity, storage, tariff, subunit, current, plain, decoded, stamp)
    elif quantity == "error_flags":
        kind, data = _ERROR, (plain, decoded if integer else None)
    elif integer and ei_head(header):
        kind, data = _HEAD, (decoded,)
    reading = None
    if quantity in READING_QUANTITIES and (
        (isinstance(decoded, int | float) and not isinstance(decoded, bool))
        or (decoded is None and not valid)
    ):
        row = (
            quantity,
            storage,
            tariff,
            subunit,
            function,
            float(decoded) if isinstance(decoded, int | float) else None,
            header[3],
            int(valid),  # 1 or 0: see ReadingValues
        )
        reading = (storage, tariff, subunit, row)
    entry = (header[0] + header[1], kind, data, reading)
    if len(_records) >= _RECORD_CACHE_LIMIT:
        _records.clear()
    _records[key] = entry
    return entry


def _minute_of(text: str) -> str:
    # Date-time records read as "YYYY-MM-DDTHH:MM" already, which minute() leaves as it is
    # (a valid naive time formats back to the same text, an invalid one is returned).
    if len(text) == 16 and text[10] == "T" and text[4] == "-" and text[0] != "0" and text.isascii():
        return text
    return minute(text)


def _entries(
    data: bytes, apl_offsets: np.ndarray[Any, Any], rows: np.ndarray[Any, Any], wanted: np.ndarray[Any, Any]
) -> list[_Entry]:
    """Per walked record its entry (see :func:`_record`); the records of application
    layers that are not ``wanted`` get a placeholder.

    Looked up for the whole batch at once: one slice and one dict lookup per record, with
    :func:`_record` only for record bytes not seen before.
    """
    base = apl_offsets[rows["telegram"]]
    starts = base + rows["offset"]
    ends = base + rows["data_offset"] + rows["data_length"]
    special = (rows["flags"] & SPECIAL) != 0
    cache = _records
    out: list[_Entry] = [_UNREAD] * len(rows)
    looked_up = np.flatnonzero(wanted & ~special)
    keys = [data[a:b] for a, b in zip(starts[looked_up].tolist(), ends[looked_up].tolist(), strict=True)]
    found = list(map(cache.get, keys))
    missing = [j for j, entry in enumerate(found) if entry is None]
    if missing:
        chosen = looked_up[missing]
        shifts = base[chosen].tolist()
        columns = [rows[name][chosen].tolist() for name in _ROW_COLUMNS[1:]]
        for j, shift, (offset, data_offset, size, *rest) in zip(
            missing, shifts, zip(*columns, strict=True), strict=True
        ):
            key = keys[j]
            entry = cache.get(key)
            if entry is None:
                entry = _record(key, data, offset + shift, data_offset + shift, size, *rest)
            found[j] = entry
    for index, entry in zip(looked_up.tolist(), found, strict=True):
        out[index] = entry  # type: ignore[assignment]  # every None was filled above
    # Manufacturer data and global readout: no value, no date, no status, only the DIF
    # in the layout.
    for index in np.flatnonzero(wanted & special).tolist():
        out[index] = _SPECIAL_ENTRIES[data[int(starts[index])]]
    return out


def _read(
    source: bytes,
    apl_offset: int,
    apl_length: int,
    entries: list[_Entry],
    received_at: float,
    sts: int,
    signature: int,
    times: ReadingTimes,
) -> FastRecords:
    """The reading rows and status inputs of one application layer (``apl_length`` bytes at
    ``apl_offset`` of ``source``), as the object path derives them from its record objects
    (readings.reading_rows, profiles._reading_time, profiles.standard_status and the EI
    Electronics head); its model time is numbered by ``times``."""
    layout = [entry[0] for entry in entries]
    now: str | None = None
    dates: dict[tuple[int, int, int], str] = {}
    # The value of the first plain main-unit date-time and date record (found or not).
    datetime_rec: Any = None
    datetime_found = False
    date_rec: Any = None
    date_found = False
    error_flags: int | None = None
    error_found = False
    head: int | None = None
    for _, kind, data, _ in entries:
        if kind == _OTHER:
            continue
        if kind == _TIME:
            quantity, storage, tariff, subunit, current, plain, decoded, stamp = data
            if stamp is not None:
                if now is None and current:
                    now = stamp
                dates.setdefault((storage, tariff, subunit), stamp)
                dates.setdefault((storage, -1, -1), stamp)
            if plain:
                if quantity == "datetime" and not datetime_found:
                    datetime_rec, datetime_found = decoded, True
                elif quantity == "date" and not date_found:
                    date_rec, date_found = decoded, True
        elif kind == _ERROR:
            if data[0] and not error_found:
                error_found = True
                error_flags = data[1]
        elif head is None:
            head = data[0]
    current_time = iso_minute(received_at) if now is None else now
    readings: list[tuple[Any, ...]] = []
    for _, _, _, reading in entries:
        if reading is None:
            continue
        storage, tariff, subunit, row = reading
        if storage == 0:
            stamp = current_time
        else:
            found = dates.get((storage, tariff, subunit)) or dates.get((storage, -1, -1))
            if found is None:
                continue
            stamp = found
        readings.append((stamp, *row))
    if isinstance(datetime_rec, str) and reading_stamp(datetime_rec) is not None:
        event_time = _minute_of(datetime_rec)
    elif isinstance(date_rec, str) and reading_stamp(date_rec) is not None:
        event_time = _minute_of(date_rec)
    else:
        event_time = iso_minute(received_at)
    return FastRecords(
        readings,
        times.number(event_time),
        sts,
        (sts, error_flags, head),
        source,
        apl_offset,
        apl_length,
        tuple(layout),
        signature,
    )


_SIGNATURE = operator.attrgetter("signature")
_LAYOUT = operator.attrgetter("layout")


class LayoutLearner:
    """Teaches a signature cache the layouts of fast-path telegrams, as the object path
    does for every full frame. ``known`` mirrors what the cache holds for the signatures
    seen (cleared with :meth:`forget` whenever the object path may have learnt)."""

    def __init__(self, signatures: FormatSignatureCache) -> None:
        self.signatures = signatures
        self.known: dict[int, tuple[str, ...]] = {}

    def forget(self) -> None:
        self.known.clear()

    def learn_all(self, items: Sequence[FastRecords]) -> None:
        """:meth:`learn` each of ``items`` in order. Most batches bring only layouts the
        cache already holds for their signatures (learning them changes nothing): that is
        checked first, in one C-level pass."""
        held = map(self.known.get, map(_SIGNATURE, items))
        if all(map(operator.eq, held, map(_LAYOUT, items))):
            return
        for item in items:
            self.learn(item)

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
