"""Date and time types of EN 13757-3 Annex A: G (date), J (time), F (date-time), I (date-time with seconds).

Every reader returns an ISO 8601 string, or ``None`` when the field is marked invalid
(IV bit, all bits set) or does not name a real calendar date. A periodic date (day 0,
month 15, year 127 mean "every day / month / year") is not one point in time either, so it
also reads as ``None``: callers get "not set", never a strange date such as 2127-15-31.
"""

from __future__ import annotations

from typing import Any, Final, TypeAlias

import numpy as np
import numpy.typing as npt

__all__ = [
    "NO_MINUTE",
    "decode_timepoint",
    "minute_text",
    "minute_texts",
    "type_f",
    "type_f_column",
    "type_f_minutes",
    "type_g",
    "type_g_column",
    "type_g_minutes",
    "type_i",
    "type_j",
]

_Ints: TypeAlias = npt.NDArray[np.int64]
_Bools: TypeAlias = np.ndarray[Any, np.dtype[np.bool_]]

_DAYS_IN_MONTH: Final = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _date(year: int, month: int, day: int) -> str | None:
    if not (1 <= month <= 12 and 1 <= day <= _DAYS_IN_MONTH[month]):
        return None
    if month == 2 and day == 29 and not (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)):
        return None
    return f"{year:04d}-{month:02d}-{day:02d}"


def _g_fields(lo: int, hi: int) -> tuple[int, int, int]:
    """(year within the century, month, day) of a type G date."""
    return ((lo & 0xE0) >> 5) | ((hi & 0xF0) >> 1), hi & 0x0F, lo & 0x1F


def type_g(data: bytes) -> str | None:
    """Type G, 2 bytes: a date "YYYY-MM-DD" (years 2000-2099)."""
    lo, hi = data[0], data[1]
    if lo == 0xFF and hi == 0xFF:
        return None
    year, month, day = _g_fields(lo, hi)
    return _date(2000 + year, month, day)


def type_j(data: bytes) -> str | None:
    """Type J, 3 bytes: a time of day "HH:MM:SS"."""
    second, minute, hour = data[0] & 0x3F, data[1] & 0x3F, data[2] & 0x1F
    if data[0] == data[1] == data[2] == 0xFF or second > 59 or minute > 59 or hour > 23:
        return None
    return f"{hour:02d}:{minute:02d}:{second:02d}"


def type_f(data: bytes) -> str | None:
    """Type F, 4 bytes: date and time "YYYY-MM-DDTHH:MM".

    The hundred-year field (bits 13-14) counts centuries from 1900; meters that leave it
    at 0 mean 2000-2099, the same reading as type G.
    """
    b0, b1, b2, b3 = data[0], data[1], data[2], data[3]
    if b0 & 0x80 or (b0 == b1 == b2 == b3 == 0xFF):
        return None
    minute, hour = b0 & 0x3F, b1 & 0x1F
    if minute > 59 or hour > 23:
        return None
    hundred = (b1 >> 5) & 0x03
    year, month, day = _g_fields(b2, b3)
    year += 1900 + 100 * hundred if hundred else 2000
    date = _date(year, month, day)
    if date is None:
        return None
    return f"{date}T{hour:02d}:{minute:02d}"


def type_i(data: bytes) -> str | None:
    """Type I, 6 bytes: date and time with seconds "YYYY-MM-DDTHH:MM:SS" (years 2000-2099)."""
    b0, b1, b2, b3, b4 = data[0], data[1], data[2], data[3], data[4]
    if b1 & 0x80 or all(b == 0xFF for b in data[:6]):
        return None
    second, minute, hour = b0 & 0x3F, b1 & 0x3F, b2 & 0x1F
    if second > 59 or minute > 59 or hour > 23:
        return None
    year, month, day = _g_fields(b3, b4)
    date = _date(2000 + year, month, day)
    if date is None:
        return None
    return f"{date}T{hour:02d}:{minute:02d}:{second:02d}"


def decode_timepoint(data: bytes) -> str | None:
    """A date/time point chosen by its length: 2 bytes G, 3 bytes J, 4 bytes F, 6 bytes I.

    Any other length gives ``None``.
    """
    n = len(data)
    if n == 4:
        return type_f(data)
    if n == 2:
        return type_g(data)
    if n == 6:
        return type_i(data)
    if n == 3:
        return type_j(data)
    return None


# --- whole columns -----------------------------------------------------------------------------
# The same readings for many values at once (the pipeline's batch path): the checks run on
# numpy columns, and only the valid dates are formatted one by one.

_MONTH_DAYS: Final = np.array((*_DAYS_IN_MONTH, 0, 0, 0), dtype=np.int64)


def _valid_dates(year: _Ints, month: _Ints, day: _Ints) -> _Bools:
    in_month = (month >= 1) & (month <= 12) & (day >= 1) & (day <= _MONTH_DAYS[month])
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    valid: _Bools = in_month & ~((month == 2) & (day == 29) & ~leap)
    return valid


def _g_columns(lo: _Ints, hi: _Ints) -> tuple[_Ints, _Ints, _Ints]:
    return ((lo & 0xE0) >> 5) | ((hi & 0xF0) >> 1), hi & 0x0F, lo & 0x1F


def _type_g_fields(data: npt.NDArray[np.uint8]) -> tuple[_Bools, _Ints, _Ints, _Ints]:
    lo, hi = data[:, 0].astype(np.int64), data[:, 1].astype(np.int64)
    year, month, day = _g_columns(lo, hi)
    year = year + 2000
    valid = _valid_dates(year, month, day) & ~((lo == 0xFF) & (hi == 0xFF))
    return valid, year, month, day


def _type_f_fields(data: npt.NDArray[np.uint8]) -> tuple[_Bools, _Ints, _Ints, _Ints, _Ints, _Ints]:
    b0, b1, b2, b3 = (data[:, i].astype(np.int64) for i in range(4))
    minute, hour = b0 & 0x3F, b1 & 0x1F
    hundred = (b1 >> 5) & 0x03
    year, month, day = _g_columns(b2, b3)
    year = year + np.where(hundred != 0, 1900 + 100 * hundred, 2000)
    all_set = (b0 == 0xFF) & (b1 == 0xFF) & (b2 == 0xFF) & (b3 == 0xFF)
    valid = ((b0 & 0x80) == 0) & ~all_set & (minute <= 59) & (hour <= 23) & _valid_dates(year, month, day)
    return valid, year, month, day, hour, minute


def type_g_column(data: npt.NDArray[np.uint8]) -> list[str | None]:
    """:func:`type_g` of every row of an (n, 2) byte array."""
    return _format(*_type_g_fields(data))


def type_f_column(data: npt.NDArray[np.uint8]) -> list[str | None]:
    """:func:`type_f` of every row of an (n, 4) byte array."""
    return _format(*_type_f_fields(data))


# A minute as one integer, YYYYMMDDhhmm: "2024-01-31T23:50" is 202401312350.
NO_MINUTE: Final = -1  # an invalid date


def type_g_minutes(data: npt.NDArray[np.uint8]) -> _Ints:
    """The midnight starting each type G date of an (n, 2) byte array, as YYYYMMDDhhmm
    integers (``NO_MINUTE`` where :func:`type_g` reads None)."""
    valid, year, month, day = _type_g_fields(data)
    minutes: _Ints = np.where(valid, (year * 10000 + month * 100 + day) * 10000, NO_MINUTE)
    return minutes


def type_f_minutes(data: npt.NDArray[np.uint8]) -> _Ints:
    """Each type F date-time of an (n, 4) byte array as a YYYYMMDDhhmm integer
    (``NO_MINUTE`` where :func:`type_f` reads None)."""
    valid, year, month, day, hour, minute = _type_f_fields(data)
    minutes: _Ints = np.where(
        valid, (year * 10000 + month * 100 + day) * 10000 + hour * 100 + minute, NO_MINUTE
    )
    return minutes


def minute_text(minute: int) -> str:
    """ "YYYY-MM-DDThh:mm" of a YYYYMMDDhhmm integer (0 <= minute < 10**12)."""
    if not 0 <= minute < 10**12:
        raise ValueError(f"not a YYYYMMDDhhmm minute: {minute}")
    day, clock = divmod(minute, 10000)
    return (_DATE_TEXTS.get(day) or _date_text(day)) + (_TIME_TEXTS.get(clock) or _time_text(clock))


def minute_texts(minutes: list[int]) -> list[str | None]:
    """:func:`minute_text` of each YYYYMMDDhhmm integer, None for ``NO_MINUTE``."""
    # A day's and a clock's texts are cached (a few thousand of each), not whole minutes:
    # most minutes are seen once, in one telegram.
    get_date, get_time = _DATE_TEXTS.get, _TIME_TEXTS.get
    return [
        None
        if m == NO_MINUTE
        else (get_date(m // 10000) or _date_text(m // 10000)) + (get_time(m % 10000) or _time_text(m % 10000))
        for m in minutes
    ]


# Texts of the dates and times of day seen: a date repeats in many telegrams (due dates,
# month ends), and "THH:MM" has 1440 values.
_DATE_TEXTS: dict[int, str] = {}
_TIME_TEXTS: dict[int, str] = {}
_DATE_TEXT_LIMIT: Final = 1 << 16


def _date_text(key: int) -> str:
    text = _DATE_TEXTS.get(key)
    if text is None:
        if len(_DATE_TEXTS) >= _DATE_TEXT_LIMIT:
            _DATE_TEXTS.clear()
        text = _DATE_TEXTS[key] = f"{key // 10000:04d}-{key // 100 % 100:02d}-{key % 100:02d}"
    return text


def _time_text(key: int) -> str:
    text = _TIME_TEXTS.get(key)
    if text is None:
        text = _TIME_TEXTS[key] = f"T{key // 100:02d}:{key % 100:02d}"
    return text


def _format(valid: _Bools, *fields: _Ints) -> list[str | None]:
    out: list[str | None] = [None] * len(valid)
    chosen = np.flatnonzero(valid)
    year, month, day = (field[chosen] for field in fields[:3])
    dates = (year * 10000 + month * 100 + day).tolist()
    get = _DATE_TEXTS.get
    if len(fields) == 3:
        for index, key in zip(chosen.tolist(), dates, strict=True):
            out[index] = get(key) or _date_text(key)
    else:
        hour, minute = fields[3][chosen], fields[4][chosen]
        times = (hour * 100 + minute).tolist()
        get_time = _TIME_TEXTS.get
        for index, key, clock in zip(chosen.tolist(), dates, times, strict=True):
            out[index] = (get(key) or _date_text(key)) + (get_time(clock) or _time_text(clock))
    return out
