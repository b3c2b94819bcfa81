"""The reports' results and their rendering: heating-cost billing, monthly consumption
information, smoke detector inspection.

Reports are made only by :class:`minolcore.access.AccessLayer` (``billing_report``,
``monthly_report``, ``smoke_report``), which decides and audits each one and computes it over
the rows its reader may see. Each report carries a ``rules`` field naming every rule it applied;
where data is missing a figure is ``None`` with a ``reason``.
"""

from __future__ import annotations

from minolcore._reports import (
    BillingReport,
    DeviceBilling,
    MonthlyReport,
    MonthlyRow,
    Report,
    SmokeDetectorState,
    SmokeFault,
    SmokeReport,
    TenantShare,
    UnitBilling,
    render,
)

__all__ = [
    "BillingReport",
    "DeviceBilling",
    "MonthlyReport",
    "MonthlyRow",
    "Report",
    "SmokeDetectorState",
    "SmokeFault",
    "SmokeReport",
    "TenantShare",
    "UnitBilling",
    "render",
]
