"""From decoded records to reading rows: which time each value refers to.

EN 13757-3 groups values by storage number: storage 0 is the current value, and a meter
that sends historic values (the due-date value, month-end values) puts a date record
(type G or F) with the same storage number beside them. Each value is therefore stamped
with the date record of its storage number (and tariff/subunit where one matches), the
current values with the telegram's own date-time record, else with the reception time.
Compact-profile series expand into one reading per element.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from minolcore.store.base import ReadingRow
from minolcore.wmbus.records import DataRecord

__all__ = ["READING_QUANTITIES", "iso_minute", "reading_rows", "reading_time_of_records"]

_TIME_QUANTITIES = frozenset(("date", "datetime"))
# What is stored as a reading: measured quantities only. Identifiers, access codes and
# configuration stay out of the store (data minimisation); error flags become status events.
READING_QUANTITIES = frozenset(
    (
        "energy",
        "volume",
        "mass",
        "power",
        "volume_flow",
        "mass_flow",
        "flow_temperature",
        "return_temperature",
        "temperature_difference",
        "external_temperature",
        "pressure",
        "hca_units",
        "voltage",
        "current",
        "on_time",
        "operating_time",
        "dimensionless",
        "reactive_energy",
        "apparent_energy",
        "reactive_power",
        "apparent_power",
        "relative_humidity",
        "frequency",
    )
)


def iso_minute(epoch_seconds: float) -> str:
    """ISO 8601 UTC time to the minute ("2026-01-31T23:50") of a Unix time in seconds."""
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%dT%H:%M")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def reading_stamp(value: str) -> str | None:
    """The reading time a date or date-time record's value gives: "YYYY-MM-DD" at midnight
    ("YYYY-MM-DDT00:00"), "YYYY-MM-DDTHH:MM[:SS]" as it is; None for any other text (a
    time of day alone, type J, names no day)."""
    stamp = f"{value}T00:00" if len(value) == 10 else value
    if len(stamp) not in (16, 19):
        return None
    try:
        parsed = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    canonical = parsed.isoformat(timespec="minutes" if len(stamp) == 16 else "seconds")
    return stamp if canonical == stamp else None


def reading_time_of_records(records: Iterable[DataRecord], received_at: float) -> str:
    """The time the current values refer to: the storage-0 date-time record, else the reception time."""
    for record in records:
        if (
            record.storage == 0
            and record.quantity in _TIME_QUANTITIES
            and record.valid
            and isinstance(record.value, str)
            and record.function == "instantaneous"
            and (stamp := reading_stamp(record.value)) is not None
        ):
            return stamp
    return iso_minute(received_at)


def reading_rows(
    records: tuple[DataRecord, ...],
    *,
    device_uid: str,
    received_at: float,
    uplink_key: str,
    building_id: str | None,
    unit_id: str | None,
) -> list[ReadingRow]:
    """One row per numeric value (and per compact-profile element) with its reference time."""
    now = reading_time_of_records(records, received_at)
    dates: dict[tuple[int, int, int], str] = {}
    for record in records:
        if (
            record.quantity in _TIME_QUANTITIES
            and record.valid
            and isinstance(record.value, str)
            and (stamp := reading_stamp(record.value)) is not None
        ):
            dates.setdefault((record.storage, record.tariff, record.subunit), stamp)
            dates.setdefault((record.storage, -1, -1), stamp)
    rows: list[ReadingRow] = []
    for record in records:
        if record.quantity not in READING_QUANTITIES:
            continue
        if record.series is not None:
            for when, value in record.series:
                stamp = None if when is None else reading_stamp(when)
                if stamp is None:
                    continue
                rows.append(
                    ReadingRow(
                        device_uid=device_uid,
                        reading_time=stamp,
                        quantity=record.quantity,
                        storage=record.storage,
                        tariff=record.tariff,
                        subunit=record.subunit,
                        function="history",
                        value=None if value is None else float(value),
                        unit=record.unit,
                        valid=value is not None,
                        building_id=building_id,
                        unit_id=unit_id,
                        uplink_key=uplink_key,
                    )
                )
            continue
        if not (_is_number(record.value) or (record.value is None and not record.valid)):
            continue
        if record.storage == 0:
            stamp = now
        else:
            found = dates.get((record.storage, record.tariff, record.subunit)) or dates.get(
                (record.storage, -1, -1)
            )
            if found is None:
                continue  # a historic value without its date cannot be placed in time
            stamp = found
        number = float(record.value) if isinstance(record.value, int | float) else None
        rows.append(
            ReadingRow(
                device_uid=device_uid,
                reading_time=stamp,
                quantity=record.quantity,
                storage=record.storage,
                tariff=record.tariff,
                subunit=record.subunit,
                function=record.function,
                value=number,
                unit=record.unit,
                valid=record.valid,
                building_id=building_id,
                unit_id=unit_id,
                uplink_key=uplink_key,
            )
        )
    return rows
