"""What each purpose may see: which readings (storage, device kinds) and which fields.

Data minimisation (GDPR Art. 5(1)(c)) as a table, so a data-protection officer can read it:

* billing: due-date values (storage 1) of heating and water devices; no day-by-day values.
* consumption_info: month-end and due-date values (storage >= 1) of heating and water devices,
  enough for the monthly information of HeizkostenV § 6a; no current (intra-month) values.
* smoke_inspection: smoke detectors only (their readings and status events); no consumption.
* analysis: every reading, but without device or unit identifiers (pseudonymous rows).
"""

from __future__ import annotations

from minolcore._model import Record
from minolcore.access.model import Purpose

__all__ = ["POLICIES", "READING_FIELDS", "STATUS_FIELDS", "PurposePolicy", "device_class"]

READING_FIELDS = (
    "device_uid",
    "reading_time",
    "quantity",
    "storage",
    "tariff",
    "subunit",
    "function",
    "value",
    "unit",
    "valid",
    "building_id",
    "unit_id",
)
STATUS_FIELDS = ("device_uid", "event_time", "event", "detail", "building_id", "unit_id")


class PurposePolicy(Record):
    """The rows and fields one purpose may see: storages from ``min_storage`` to ``max_storage``
    (None = no upper bound), device classes, reading and status fields (status empty = none)."""

    min_storage: int
    max_storage: int | None
    kinds: frozenset[str]
    reading_fields: frozenset[str]
    status_fields: frozenset[str]


_IDENTIFIED = frozenset(READING_FIELDS)
_METER = frozenset(("heating", "water"))

POLICIES: dict[Purpose, PurposePolicy] = {
    Purpose.BILLING: PurposePolicy(
        min_storage=1,
        max_storage=1,
        kinds=_METER,
        reading_fields=_IDENTIFIED,
        # Removal and manipulation flags decide whether a due-date value can be billed.
        status_fields=frozenset(STATUS_FIELDS),
    ),
    Purpose.CONSUMPTION_INFO: PurposePolicy(
        min_storage=1, max_storage=None, kinds=_METER, reading_fields=_IDENTIFIED, status_fields=frozenset()
    ),
    Purpose.SMOKE_INSPECTION: PurposePolicy(
        min_storage=0,
        max_storage=None,
        kinds=frozenset(("smoke",)),
        reading_fields=_IDENTIFIED,
        status_fields=frozenset(STATUS_FIELDS),
    ),
    Purpose.ANALYSIS: PurposePolicy(
        min_storage=0,
        max_storage=None,
        kinds=frozenset(("heating", "water", "smoke", "pulse", "other")),
        reading_fields=_IDENTIFIED - {"device_uid", "unit_id"},
        status_fields=frozenset(),
    ),
}

_CLASS_OF_KIND = {
    "heat_cost_allocator": "heating",
    "heat_meter": "heating",
    "water_meter": "water",
    "cold_water_meter": "water",
    "warm_water_meter": "water",
    "smoke_detector": "smoke",
    "pulse_module": "pulse",
    "pulse_counter": "pulse",
}


def device_class(kind: str) -> str:
    """The coarse class ("heating", "water", "smoke", "pulse", "other") of a site or store device kind."""
    return _CLASS_OF_KIND.get(kind, "other")
