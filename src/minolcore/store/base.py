"""What the pipeline stores, and the small interface every store implements.

Every row has a natural key, and writes are "insert or ignore" on it, in one transaction
per batch: feeding the same input twice changes nothing, and a process killed during a
write loses nothing that feeding the input again does not restore.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, Protocol, cast

import numpy as np
import numpy.typing as npt

from minolcore._model import Record
from minolcore.errors import InputError

__all__ = [
    "DeviceRow",
    "ReadingBlock",
    "ReadingFields",
    "ReadingPlace",
    "ReadingRow",
    "ReadingValues",
    "ReceptionRow",
    "RejectedRow",
    "StatusEventRow",
    "Store",
    "StoreBatch",
    "UplinkBlock",
    "UplinkRow",
    "UplinkValues",
    "content_key",
]


def content_key(device_uid: str, frame: bytes) -> str:
    """Stable key of an uplink: the device and a BLAKE2b digest of its canonical bytes (hex).

    Unlike the per-pipeline SipHash fingerprint it is the same in every process, so a
    restarted pipeline recognises what it stored before.
    """
    digest = _UPLINK_DIGEST.copy()  # copying the keyed-up state costs half of making it
    digest.update(frame)
    digest.update(device_uid.encode())
    return digest.hexdigest()


_UPLINK_DIGEST = hashlib.blake2b(digest_size=16, person=b"minolcore-uplink")


class DeviceRow(Record):
    """A sender seen by the pipeline (when it was heard follows from its receptions)."""

    device_uid: str
    radio: str
    manufacturer: str
    meter_id: str
    version: int
    device_type: int
    kind: str


class ReceptionRow(Record, array_like=True):
    """One gateway's copy of an uplink (time in ms since the epoch, RSSI dBm, SNR dB).

    Stored inside its uplink's row, as a JSON array ``[gateway_id, received_at_ms, rssi,
    snr]`` (array-like: it encodes as one)."""

    gateway_id: str
    received_at_ms: int
    rssi: float | None = None
    snr: float | None = None


class UplinkRow(Record):
    """One transmission after dedupe, with the receptions it was heard in.

    Rows with the same key merge: the stored uplink holds the union of their receptions
    (so late copies, repeated input and any input order leave the same row)."""

    uplink_key: str
    device_uid: str
    size: int
    security_status: str
    decode_errors: str = ""
    receptions: tuple[ReceptionRow, ...] = ()


# An uplink as the uplinks table holds it, in column order: (uplink_key, device_uid, size,
# security_status, decode_errors, first_received_ms, last_received_ms, receptions), its
# receptions already the stored JSON text of
# :func:`minolcore.store.receptions.encode_reception_columns`, the times in ms since the epoch.
UplinkValues = tuple[str, str, int, str, str, int, int, str]


class UplinkBlock(Record):
    """Uplinks as columns (the pipeline's columnar path makes one per batch): row ``i`` is the
    :data:`UplinkValues` ``(uplink_keys[i], device_uids[i], size[i], security_status[i],
    decode_errors[i], first_ms[i], last_ms[i], receptions)``, its receptions' stored text
    being ``receptions[offsets[e]:offsets[e + 1]]`` (UTF-8) for ``e = reception_entry[i]``.
    ``size`` (bytes), ``first_ms``, ``last_ms`` (ms since the epoch) and ``reception_entry``
    are int64 arrays."""

    uplink_keys: Sequence[str]
    device_uids: Sequence[str]
    size: npt.NDArray[np.int64]
    security_status: Sequence[str]
    decode_errors: Sequence[str]
    first_ms: npt.NDArray[np.int64]
    last_ms: npt.NDArray[np.int64]
    receptions: bytes
    offsets: npt.NDArray[np.int64]
    reception_entry: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.uplink_keys)

    def check(self) -> None:
        """Raise :class:`~minolcore.errors.InputError` unless the columns are one per row,
        the numbers integers within 64 bits, the receptions UTF-8 bytes with ascending
        offsets, and every row's entry within them."""
        count = len(self)
        columns = (self.device_uids, self.size, self.security_status, self.decode_errors, self.first_ms)
        if any(len(column) != count for column in (*columns, self.last_ms, self.reception_entry)):
            raise InputError("an uplink block's columns must have one value per uplink")
        for numbers in (self.size, self.first_ms, self.last_ms, self.reception_entry, self.offsets):
            if not _int64_column(numbers):
                raise InputError("an uplink block's sizes, times and offsets must be 64-bit integers")
        if not isinstance(self.receptions, bytes):
            raise InputError("an uplink block's receptions must be bytes")
        offsets = np.asarray(self.offsets)
        if (
            not len(offsets)
            or offsets[0] < 0
            or offsets[-1] > len(self.receptions)
            or np.any(np.diff(offsets) < 0)
        ):
            raise InputError("an uplink block's receptions offsets must ascend within its bytes")
        entry = np.asarray(self.reception_entry)
        if count and (entry.min() < 0 or entry.max() >= len(offsets) - 1):
            raise InputError("an uplink's receptions entry outside its table")
        if not self.receptions.isascii():
            try:
                self.receptions.decode()
            except UnicodeDecodeError:
                raise InputError("an uplink block's receptions are not UTF-8") from None

    def reception_texts(self) -> list[str]:
        """Each row's receptions' stored text (see :meth:`check` for what it raises)."""
        self.check()
        bounds = np.asarray(self.offsets).tolist()
        return [
            self.receptions[bounds[entry] : bounds[entry + 1]].decode()
            for entry in self.reception_entry.tolist()
        ]

    @classmethod
    def from_rows(cls, rows: Sequence[UplinkValues]) -> UplinkBlock:
        """The block of uplinks given as value tuples (texts, then integers, as the uplinks
        table holds them). Raises :class:`~minolcore.errors.InputError` for a row that does
        not have the 8 values of an uplink, or a receptions text that is not a ``str`` (or not
        encodable)."""
        if any(len(row) != _UPLINK_WIDTH for row in rows):
            raise InputError(f"an uplink row of {_UPLINK_WIDTH} values expected")
        keys, uids, sizes, statuses, errors, first, last, texts = (
            list(column) for column in (zip(*rows, strict=True) if rows else [()] * _UPLINK_WIDTH)
        )
        if not all(isinstance(text, str) for text in texts):
            raise InputError("an uplink's receptions must be stored reception text")
        try:
            encoded = [text.encode() for text in texts]
        except UnicodeEncodeError as error:
            raise InputError(f"an uplink's receptions text cannot be stored: {error}") from None
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(text) for text in encoded], out=offsets[1:])
        if not set(map(type, (*sizes, *first, *last))) <= {int, bool}:
            raise InputError("an uplink's size and times must be integers")
        try:
            numbers = [np.asarray(column, dtype=np.int64) for column in (sizes, first, last)]
        except OverflowError:
            raise InputError("an uplink's size and times must be integers within 64 bits") from None
        return cls(
            uplink_keys=keys,
            device_uids=uids,
            size=numbers[0],
            security_status=statuses,
            decode_errors=errors,
            first_ms=numbers[1],
            last_ms=numbers[2],
            receptions=b"".join(encoded),
            offsets=offsets,
            reception_entry=np.arange(len(encoded), dtype=np.int64),
        )

    def rows(self) -> list[UplinkValues]:
        """The rows as value tuples, in order (see :meth:`check` for what it raises)."""
        texts = self.reception_texts()
        return list(
            zip(
                self.uplink_keys,
                self.device_uids,
                self.size.tolist(),
                self.security_status,
                self.decode_errors,
                self.first_ms.tolist(),
                self.last_ms.tolist(),
                texts,
                strict=True,
            )
        )


_UPLINK_WIDTH = 8


class ReadingRow(Record):
    """One value of one device at one time, assigned to a building and unit.

    ``reading_time`` is an ISO 8601 local date-time to the minute, "YYYY-MM-DDTHH:MM", or to
    the second (the time the value refers to: a record's date for historic values, else the
    telegram's time; the store compares and sorts them as text, so no other form is
    accepted); ``value`` is in ``unit``.
    """

    device_uid: str
    reading_time: str
    quantity: str
    storage: int
    tariff: int
    subunit: int
    function: str
    value: float | None
    unit: str
    valid: bool
    building_id: str | None
    unit_id: str | None
    uplink_key: str


# A reading as the readings table holds it, in column order: (device_uid, reading_time,
# quantity, storage, tariff, subunit, function, value, unit, valid, building_id, unit_id,
# uplink_key), the fields of :class:`ReadingRow`. ``valid`` is 1 or 0 as the pipeline makes
# it (True and False store the same, but Python's sqlite3 binds a bool at several times
# the cost of an int).
ReadingValues = tuple[str, str, str, int, int, int, str, float | None, str, int, str | None, str | None, str]


# (quantity, storage, tariff, subunit, function, unit) of a reading, and (building id, unit id).
ReadingFields = tuple[str, int, int, int, str, str]
ReadingPlace = tuple[str | None, str | None]


class ReadingBlock(Record):
    """Reading rows as columns of numbers into small tables: no Python object per row (the
    pipeline's columnar path makes one per batch, see :func:`ReadingBlock.from_rows` for
    rows made otherwise).

    Row ``i`` is the :data:`ReadingValues` ``(device_uids[device[i]], times[time[i]],
    quantity, storage, tariff, subunit, function, value, unit, valid[i], building_id, unit_id,
    uplink_keys[uplink[i]])`` where ``fields[field[i]]`` is ``(quantity, storage, tariff,
    subunit, function, unit)``, ``places[place[i]]`` is ``(building_id, unit_id)`` and the
    value is ``value[i]``, or None where ``has_value[i]`` is false. The five index arrays
    are int64, ``has_value`` bool; ``value`` is float64 and ``valid`` uint8 (1 or 0), or
    both hold any objects (rows converted from tuples)."""

    device_uids: Sequence[str]
    times: Sequence[str]
    fields: Sequence[ReadingFields]
    places: Sequence[ReadingPlace]
    uplink_keys: Sequence[str]
    device: npt.NDArray[np.int64]
    time: npt.NDArray[np.int64]
    field: npt.NDArray[np.int64]
    place: npt.NDArray[np.int64]
    uplink: npt.NDArray[np.int64]
    value: npt.NDArray[Any]
    has_value: npt.NDArray[np.bool_]
    valid: npt.NDArray[Any]

    def __len__(self) -> int:
        return len(self.device)

    def check(self) -> None:
        """Raise :class:`~minolcore.errors.InputError` unless every column has one value
        per row, the numbers are integers naming entries of their tables, ``has_value`` is
        boolean and every reading time is one (see :class:`ReadingRow`)."""
        count = len(self)
        indexes = (
            (self.device, self.device_uids),
            (self.time, self.times),
            (self.field, self.fields),
            (self.place, self.places),
            (self.uplink, self.uplink_keys),
        )
        if any(
            len(column) != count
            for column in (
                self.time,
                self.field,
                self.place,
                self.uplink,
                self.value,
                self.has_value,
                self.valid,
            )
        ):
            raise InputError("a reading block's columns must have one value per row")
        for numbers, table in indexes:
            numbers = np.asarray(numbers)
            if numbers.dtype.kind not in "iu" or (
                count and (numbers.min() < 0 or numbers.max() >= len(table))
            ):
                raise InputError("a reading block's numbers must name entries of its tables")
        if np.asarray(self.has_value).dtype != np.bool_:
            raise InputError("a reading block's has_value must be a bool array")
        bad = bad_reading_time(self.times)
        if bad is not None:
            raise InputError(
                f"a reading time must be an existing date-time 'YYYY-MM-DDTHH:MM[:SS]': {self.times[bad]!r}"
            )

    def rows(self) -> list[ReadingValues]:
        """The rows as value tuples, in order (see :meth:`check` for what it raises)."""
        self.check()
        if not len(self):
            return []
        quantity, storage, tariff, subunit, function, unit = zip(
            *map(self.fields.__getitem__, self.field.tolist()), strict=True
        )
        building, unit_id = zip(*map(self.places.__getitem__, self.place.tolist()), strict=True)
        values = self.value.tolist()
        for at in np.flatnonzero(~self.has_value).tolist():
            values[at] = None
        return list(
            zip(
                map(self.device_uids.__getitem__, self.device.tolist()),
                map(self.times.__getitem__, self.time.tolist()),
                quantity,
                storage,
                tariff,
                subunit,
                function,
                values,
                unit,
                self.valid.tolist(),
                building,
                unit_id,
                map(self.uplink_keys.__getitem__, self.uplink.tolist()),
                strict=True,
            )
        )

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[Any]]) -> ReadingBlock:
        """The block of reading rows given as value tuples (or anything indexable alike).

        Every value stays exactly as given (tables hold equal values of different types, 1
        and 1.0, apart). Raises :class:`~minolcore.errors.InputError` for a row that does not
        have the 13 values of a reading."""
        if any(len(row) != _READING_WIDTH for row in rows):
            raise InputError(f"a reading row of {_READING_WIDTH} values expected")
        tables: list[list[Any]] = [[], [], [], [], []]
        indexes: list[list[int]] = [[], [], [], [], []]
        seen: list[dict[Any, int]] = [{}, {}, {}, {}, {}]
        for row in rows:
            entries = (row[0], row[1], (*row[2:7], row[8]), (row[10], row[11]), row[12])
            for entry, table, index, known in zip(entries, tables, indexes, seen, strict=True):
                key = (tuple(map(type, entry)), entry) if type(entry) is tuple else (type(entry), entry)
                number = known.get(key)
                if number is None:
                    number = known[key] = len(table)
                    table.append(entry)
                index.append(number)
        values = _objects([row[7] for row in rows])
        device, time, field, place, uplink = (np.asarray(index, dtype=np.int64) for index in indexes)
        return cls(
            device_uids=tables[0],
            times=tables[1],
            fields=tables[2],
            places=tables[3],
            uplink_keys=tables[4],
            device=device,
            time=time,
            field=field,
            place=place,
            uplink=uplink,
            value=values,
            has_value=np.fromiter((value is not None for value in values), dtype=np.bool_, count=len(values)),
            valid=_objects([row[9] for row in rows]),
        )


_READING_WIDTH = 13


# A reading time is "YYYY-MM-DDTHH:MM", or that and ":SS". Its first 16 bytes are read as
# two little-endian 64-bit words, eight characters at once: XOR with the shape puts each
# digit's value in its byte (0-9) and each separator's byte to 0.
_TIME_SHAPE = b"0000-00-00T00:00"
_TIME_WIDTHS = frozenset((16, 19))
_DIGIT_PLACES = [n for n, char in enumerate(_TIME_SHAPE) if char == ord("0")]


def _time_words(pattern: dict[int, int], default: int) -> tuple[int, int]:
    low, high = np.frombuffer(bytes(pattern.get(n, default) for n in range(16)), dtype="<i8").tolist()
    return low, high


_SHAPE_WORDS = np.frombuffer(_TIME_SHAPE, dtype="<i8")
# + 6 at a digit carries into its high nibble iff the digit is above 9.
_SIX_AT_DIGITS = _time_words(dict.fromkeys(_DIGIT_PLACES, 0x06), 0x00)
_MUST_BE_ZERO = _time_words(dict.fromkeys(_DIGIT_PLACES, 0xF0), 0xFF)
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def bad_reading_time(texts: Sequence[object]) -> int | None:
    """The position of a text in ``texts`` that is not a reading time (see
    :class:`ReadingRow`), or None where all are. Checked in numpy, eight characters at a
    time: a pipeline batch brings thousands of distinct times."""
    try:
        widths = set(map(len, texts))  # type: ignore[arg-type]  # anything else is refused here
        joined = "".join(texts)  # type: ignore[arg-type]
    except TypeError:
        return next(n for n, text in enumerate(texts) if not isinstance(text, str))
    strings = cast(Sequence[str], texts)
    if not widths <= _TIME_WIDTHS or not joined.isascii():
        return next(
            n for n, text in enumerate(strings) if len(text) not in _TIME_WIDTHS or not text.isascii()
        )
    lengths = np.fromiter(map(len, strings), dtype=np.int64, count=len(strings)) if len(widths) > 1 else None
    for width in widths:
        at = np.arange(len(strings)) if lengths is None else np.flatnonzero(lengths == width)
        chosen = joined if lengths is None else "".join(map(strings.__getitem__, at.tolist()))
        chars = np.frombuffer(chosen.encode(), dtype=np.uint8).reshape(-1, width)
        ok = _valid_minutes(np.ascontiguousarray(chars[:, :16]))
        if width == 19:
            seconds = chars[:, 17:19].astype(np.int64) - ord("0")
            ok &= (chars[:, 16] == ord(":")) & np.all((seconds >= 0) & (seconds <= 9), axis=1)
            ok &= seconds[:, 0] * 10 + seconds[:, 1] <= 59
        if not ok.all():
            return int(at[int(np.argmin(ok))])
    return None


def _valid_minutes(chars: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
    """Per row of 16 characters: whether they are "YYYY-MM-DDTHH:MM" of a day that exists."""
    words = chars.view("<i8") ^ _SHAPE_WORDS
    low, high = words[:, 0], words[:, 1]
    ok: npt.NDArray[np.bool_] = (
        ((low | (low + _SIX_AT_DIGITS[0])) & _MUST_BE_ZERO[0])
        | ((high | (high + _SIX_AT_DIGITS[1])) & _MUST_BE_ZERO[1])
    ) == 0
    # With every byte a digit 0-9 (or 0), byte k of 10 * word + (word >> 8) is the
    # two-digit number the characters k and k + 1 make (at most 99: no carries).
    pairs_low, pairs_high = low * 10 + (low >> 8), high * 10 + (high >> 8)
    year = (pairs_low & 0xFF) * 100 + ((pairs_low >> 16) & 0xFF)
    month, day = (pairs_low >> 40) & 0xFF, pairs_high & 0xFF
    hour, minute = (pairs_high >> 24) & 0xFF, (pairs_high >> 48) & 0xFF
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = _DAYS_IN_MONTH[np.clip(month, 0, 12)] + (leap & (month == 2))
    ok &= (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= month_days)
    ok &= (hour <= 23) & (minute <= 59)
    return ok


def _int64_column(numbers: npt.NDArray[Any]) -> bool:
    """Whether ``numbers`` are integers that int64 holds (numpy's int64 arrays, the pipeline's)."""
    array = np.asarray(numbers)
    if array.dtype.kind in "ib":
        return array.dtype.itemsize <= 8
    return array.dtype.kind == "u" and (not len(array) or int(array.max()) < 2**63)


def _objects(items: Sequence[Any]) -> npt.NDArray[Any]:
    """A one-dimensional object array of ``items`` (scalars, never split into sequences)."""
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array


class StatusEventRow(Record):
    """A status change or fault of a device at a time (ISO 8601)."""

    device_uid: str
    event_time: str
    event: str
    detail: str = ""


class RejectedRow(Record):
    """A reception the pipeline rejected, with its reason (time in ms since the epoch)."""

    gateway_id: str
    received_at_ms: int
    reason: str
    payload_hex: str
    detail: str = ""


class StoreBatch(Record):
    """Everything one pipeline batch writes, in one transaction."""

    devices: Sequence[DeviceRow] = ()
    uplinks: Sequence[UplinkRow] = ()
    # Uplinks as value tuples, their receptions already encoded: they merge with uplink rows
    # of the same key as uplink rows do.
    uplink_values: Sequence[UplinkValues] = ()
    # Uplinks as columns (the pipeline makes these): stored as ``uplink_values`` are.
    uplink_blocks: Sequence[UplinkBlock] = ()
    # Copies of uplinks stored before (a collector uploading late): (uplink key, copy),
    # merged into the uplink's receptions.
    late_receptions: Sequence[tuple[str, ReceptionRow]] = ()
    readings: Sequence[ReadingRow] = ()
    # Readings as value tuples: stored as ``readings`` are, without an object per reading.
    reading_values: Sequence[ReadingValues] = ()
    # Readings as columns (the pipeline makes these): stored as ``readings`` are, after
    # ``readings`` and ``reading_values`` in batch order.
    reading_blocks: Sequence[ReadingBlock] = ()
    status_events: Sequence[StatusEventRow] = ()
    rejected: Sequence[RejectedRow] = ()


class Store(Protocol):
    """The storage interface of the pipeline (SQLite now; PostgreSQL can follow): it writes
    and counts; reading readings back is the access layer's (:mod:`minolcore.access`)."""

    def write(self, batch: StoreBatch) -> None:
        """Write one batch atomically and idempotently."""

    def counts(self) -> dict[str, int]:
        """Rows per table."""

    def close(self) -> None:
        """Release the connection."""
