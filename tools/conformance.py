"""Conformance report: value recall of minolcore's decoder on the peer corpus.

Every case of the corpus (a JSON line with ``telegram_hex``, ``key``, optional
``preceding_telegrams_hex`` and the peer decoder's ``expected_json``) is decoded with
:func:`minolcore.wmbus.telegram.decode`; the preceding telegrams go first through the same
format-signature cache (one cache per case, so no case learns from another).

Scoring (value recall, as the corpus README defines it): every numeric expected value whose
field name ends in a unit suffix, and every date value, counts once; it is *found* when some
decoded record (or an element of a record's compact-profile series), converted to that
unit, has the same value (relative tolerance 1e-6, or half a unit of the printed sixth
decimal), or for dates when a decoded date starts with the expected date (to the minute
when the expected value has a time).

Each miss gets one cause, by the first rule that applies (see ``CAUSES``). The report goes
to ``docs/conformance.md``; the script always exits 0 when it could read the corpus.

    python tools/conformance.py [CORPUS] [--output docs/conformance.md]
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import re
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from minolcore.wmbus.compact import FormatSignatureCache
from minolcore.wmbus.telegram import Telegram, decode

REPO: Final = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS: Final = "../shared/corpus/wmbus-peer-cases.jsonl"
FALLBACK_CORPUS: Final = REPO / "tests" / "data" / "wmbus-peer-cases.jsonl"
DEFAULT_OUTPUT: Final = REPO / "docs" / "conformance.md"
REL_TOL: Final = 1e-6
# The expected output prints at most six decimals (13 s shows as 0.003611 h), so a value
# counts as equal when it rounds to what was printed: half a unit of the sixth decimal.
ABS_TOL: Final = 5e-7

_TIME_S: Final = {"s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


def _time_units(seconds: float) -> dict[str, float]:
    return {unit: factor / seconds for unit, factor in _TIME_S.items()}


# Field-name suffix -> {decoded record unit: factor that converts into the suffix's unit}.
# The suffixes are those of the corpus's field names that name a physical unit.
CONVERSIONS: Final[dict[str, dict[str, float]]] = {
    "m3": {"m3": 1.0},
    "l": {"m3": 1e3},
    "wh": {"Wh": 1.0, "J": 1 / 3600},
    "kwh": {"Wh": 1e-3, "J": 1 / 3.6e6},
    "mwh": {"Wh": 1e-6, "J": 1 / 3.6e9},
    "gj": {"J": 1e-9, "Wh": 3.6e-6},
    "mj": {"J": 1e-6, "Wh": 3.6e-3},
    "hca": {"HCA": 1.0},
    # EN 13757-3 gives temperature differences in K, numerically equal in degC.
    "c": {"degC": 1.0, "K": 1.0},
    "k": {"K": 1.0},
    "w": {"W": 1.0, "J/h": 1 / 3600},
    "kw": {"W": 1e-3, "J/h": 1 / 3.6e6},
    "m3h": {"m3/h": 1.0, "m3/min": 60.0, "m3/s": 3600.0},
    "lh": {"m3/h": 1e3, "m3/min": 6e4, "m3/s": 3.6e6},
    "kg": {"kg": 1.0},
    "s": _time_units(1.0),
    "min": _time_units(60.0),
    "h": _time_units(3600.0),
    "d": _time_units(86400.0),
    "y": _time_units(365.2425 * 86400.0),  # the mean Gregorian year
    "v": {"V": 1.0},
    "a": {"A": 1.0},
    "bar": {"bar": 1.0},
    "hz": {"Hz": 1.0},
    "kvarh": {"varh": 1e-3},
    "kvar": {"var": 1e-3},
    "kva": {"VA": 1e-3},
    "pct": {"%": 1.0},
    "rh": {"%RH": 1.0, "%": 1.0},
    "ppm": {"ppm": 1.0},
    "m3c": {},  # volume x temperature: no EN 13757-3 unit
}

# Why a value was missed, in the order the rules are tried, with the part of the
# project that owns it.
CAUSES: Final = {
    "input error": ("the telegram itself is malformed input (e.g. odd number of hex digits)", "corpus"),
    "frame error": ("the frame failed validation (L-field, CRC, header)", "frame/security"),
    "decrypt failed": ("no key, wrong key or MAC mismatch", "frame/security"),
    "unsupported security": (
        "a security mode or cipher minolcore does not implement (e.g. DES)",
        "frame/security",
    ),
    "compact frame without signature": (
        "compact frame whose format signature no earlier full frame taught",
        "signature cache",
    ),
    "manufacturer-specific CI": (
        "the whole application layer is manufacturer specific (CI 0xA0-0xB7)",
        "none",
    ),
    "invalid date in telegram": ("the peer prints a date with month or day 00 (invalid by type G/F)", "none"),
    "record error": ("the record walk stopped at a malformed record before the value", "record decoder"),
    "non-standard unit": ("the field's unit has no EN 13757-3 counterpart (e.g. m3 x degC)", "none"),
    "other unit or scale": (
        "the number is among the decoded values, but in another unit or power of ten",
        "record decoder / vendor scaling",
    ),
    "manufacturer-specific bytes": (
        "not found; the telegram has manufacturer-specific data (DIF 0x0F/0x1F, VIF 0x7F/0xFF)",
        "none",
    ),
    "vendor formula": (
        "records of that unit exist, but none has the value (computed or chosen by the peer's driver)",
        "none",
    ),
    "no such record": ("no decoded record of that unit or date at all", "record decoder"),
}

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_IGNORED_FIELDS: Final = frozenset(("timestamp",))  # the peer's own clock, not meter data
_SECURITY_FAILED: Final = frozenset(("no_key", "wrong_key", "mac_mismatch"))


@dataclass
class Expected:
    case: int
    driver: str
    name: str
    value: float | str
    suffix: str  # unit suffix, or "date"


@dataclass
class Tally:
    expected: int = 0
    found: int = 0

    @property
    def recall(self) -> float:
        return self.found / self.expected if self.expected else 1.0


@dataclass
class Report:
    numeric: Tally = field(default_factory=Tally)
    dates: Tally = field(default_factory=Tally)
    by_suffix: dict[str, Tally] = field(default_factory=lambda: collections.defaultdict(Tally))
    by_driver: dict[str, Tally] = field(default_factory=lambda: collections.defaultdict(Tally))
    causes: dict[str, list[int]] = field(default_factory=lambda: collections.defaultdict(lambda: [0, 0]))
    statuses: collections.Counter[str] = field(default_factory=collections.Counter)
    cases: int = 0
    seconds: float = 0.0
    misses: list[tuple[Expected, str]] = field(default_factory=list)


# --- expected values ---------------------------------------------------------------------------


def expected_values(case: int, driver: str, document: dict[str, Any]) -> Iterator[Expected]:
    """The scored values of one expected JSON: numbers with a unit suffix, and dates."""
    for name, value in document.items():
        if name in _IGNORED_FIELDS:
            continue
        if isinstance(value, str) and _DATE.match(value):
            yield Expected(case, driver, name, value, "date")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            suffix = name.rsplit("_", 1)[-1].lower()
            if suffix in CONVERSIONS and "_" in name:
                yield Expected(case, driver, name, float(value), suffix)


# --- decoded values ----------------------------------------------------------------------------


def _numbers(telegram: Telegram) -> list[tuple[str, float]]:
    """(unit, value) of every numeric record value and compact-profile element."""
    out: list[tuple[str, float]] = []
    for record in telegram.records:
        value = record.value
        if isinstance(value, int | float) and not isinstance(value, bool):
            out.append((record.unit, float(value)))
        if record.series:
            out.extend((record.unit, float(v)) for _, v in record.series if isinstance(v, int | float))
    return out


def _dates(telegram: Telegram) -> list[str]:
    """Every decoded date: date records, and the time grid of compact profiles (EN 13757-3
    Annex F defines each element's point in time from the base date and the spacing)."""
    out: list[str] = []
    for record in telegram.records:
        value = record.value
        if isinstance(value, str) and _DATE.match(value):
            out.append(value.replace("T", " "))
        if record.series:
            out.extend(date.replace("T", " ") for date, _ in record.series if date)
    return out


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def found_number(expected: Expected, numbers: Iterable[tuple[str, float]]) -> bool:
    """True when a decoded value, converted into the expected field's unit, equals it."""
    table = CONVERSIONS[expected.suffix]
    target = float(expected.value)
    return any(unit in table and _close(value * table[unit], target) for unit, value in numbers)


def _date_key(text: str) -> str:
    return text.replace("T", " ").rstrip("Z")[:16]


def found_date(expected: Expected, dates: Iterable[str]) -> bool:
    """True when a decoded date starts with the expected date (to the minute if it has a time)."""
    key = _date_key(str(expected.value))
    return any(date.startswith(key) for date in dates)


def _other_scale(target: float, numbers: Iterable[tuple[str, float]]) -> bool:
    if target == 0:
        return False
    for _, value in numbers:
        if value == 0:
            continue
        for factor in (1.0, 3.6, 1 / 3.6):
            ratio = target / (value * factor)
            exponent = round(math.log10(abs(ratio))) if ratio > 0 else None
            if (
                exponent is not None
                and -9 <= exponent <= 9
                and _close(value * factor * 10.0**exponent, target)
            ):
                return True
    return False


def _has_manufacturer_data(telegram: Telegram) -> bool:
    return any(
        record.quantity == "manufacturer_specific" or record.dif.upper() in ("0F", "1F")
        for record in telegram.records
    )


def classify(expected: Expected, telegram: Telegram) -> str:
    """The cause of one miss: the first rule of ``CAUSES`` that applies."""
    errors = " ".join(telegram.errors)
    if telegram.kind == "invalid":
        return "input error" if errors.startswith("input") else "frame error"
    security = telegram.security
    if security is None and "frame:" in errors:
        return "frame error"
    if security is not None and security.status in _SECURITY_FAILED:
        return "decrypt failed"
    if security is not None and security.status == "unsupported":
        return "unsupported security"
    if telegram.compact and not telegram.records:
        return "compact frame without signature"
    if telegram.ci is not None and 0xA0 <= telegram.ci <= 0xB7:
        return "manufacturer-specific CI"
    if expected.suffix == "date":
        text = str(expected.value)
        if text[5:7] == "00" or text[8:10] == "00":
            return "invalid date in telegram"
        if any(error.startswith("record") for error in telegram.errors):
            return "record error"
        if _has_manufacturer_data(telegram):
            return "manufacturer-specific bytes"
        return "vendor formula" if _dates(telegram) else "no such record"
    if any(error.startswith("record") for error in telegram.errors):
        return "record error"
    numbers = _numbers(telegram)
    table = CONVERSIONS[expected.suffix]
    if not table:
        return "non-standard unit"
    if _other_scale(float(expected.value), numbers):
        return "other unit or scale"
    if _has_manufacturer_data(telegram):
        return "manufacturer-specific bytes"
    if any(unit in table for unit, _ in numbers):
        return "vendor formula"
    return "no such record"


# --- running -------------------------------------------------------------------------------------


def _key(text: str) -> str | None:
    return text if isinstance(text, str) and len(text) == 32 else None


def decode_case(case: dict[str, Any], cache: FormatSignatureCache | None = None) -> Telegram:
    """Decode one corpus case, its preceding telegrams first through the same signature cache
    (``cache``, or a fresh one)."""
    cache = FormatSignatureCache() if cache is None else cache
    key_text = case.get("key", "NOKEY")
    key = _key(key_text)
    for earlier in case.get("preceding_telegrams_hex") or ():
        decode(earlier, key, signatures=cache, strict=False)
    telegram = decode(case["telegram_hex"], key, signatures=cache, strict=False)
    if key is None and key_text not in ("NOKEY", "", None) and telegram.security is not None:
        status = telegram.security.status
        if status in ("no_key", "wrong_key"):
            # A key minolcore cannot use (a 64-bit DES key of a legacy scheme).
            telegram = _with_status(telegram, "unsupported")
    return telegram


def _with_status(telegram: Telegram, status: str) -> Telegram:
    from minolcore._model import replace  # noqa: PLC0415

    assert telegram.security is not None
    return replace(telegram, security=replace(telegram.security, status=status))


def run(cases: list[dict[str, Any]], cache_mode: str = "stream") -> Report:
    """Decode and score every case. ``cache_mode`` "stream": one format-signature cache for the
    whole run, in corpus order (as a gateway or ``minolcore decode --jsonl`` learns over its
    stream); "case": a fresh cache per case (only its own preceding telegrams teach it)."""
    report = Report()
    shared = FormatSignatureCache() if cache_mode == "stream" else None
    started = time.perf_counter()
    for index, case in enumerate(cases):
        telegram = decode_case(case, shared)
        report.cases += 1
        security = telegram.security
        report.statuses[
            f"{telegram.kind}: {security.status if security else 'no security layer reached'}"
        ] += 1
        numbers = _numbers(telegram)
        dates = _dates(telegram)
        driver = str(case.get("driver", "?"))
        for expected in expected_values(index, driver, case.get("expected_json", {})):
            is_date = expected.suffix == "date"
            hit = found_date(expected, dates) if is_date else found_number(expected, numbers)
            tally = report.dates if is_date else report.numeric
            for bucket in (tally, report.by_suffix[expected.suffix], report.by_driver[driver]):
                bucket.expected += 1
                bucket.found += hit
            if not hit:
                cause = classify(expected, telegram)
                report.causes[cause][1 if is_date else 0] += 1
                report.misses.append((expected, cause))
    report.seconds = time.perf_counter() - started
    return report


def load(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


# --- the report -----------------------------------------------------------------------------------


def _pct(tally: Tally) -> str:
    return f"{tally.recall:.3f}"


def render(report: Report, corpus: str, cache_mode: str, other: Report) -> str:
    """The Markdown report."""
    out: list[str] = []
    add = out.append
    add("# Conformance: value recall on the peer corpus")
    add("")
    add("Generated by `tools/conformance.py`; regenerate with")
    add("")
    add("```")
    add(f"python tools/conformance.py {DEFAULT_CORPUS} --output docs/conformance.md")
    add("```")
    add("")
    add(
        f"Corpus: `{corpus}` ({report.cases} cases). "
        "Each case's `preceding_telegrams_hex` are decoded first, through the same format-signature cache."
    )
    add("")
    add("## Overall")
    add("")
    add("| values | expected | found | recall |")
    add("|---|---:|---:|---:|")
    numeric = report.numeric
    add(f"| numeric (unit suffix) | {numeric.expected} | {numeric.found} | {_pct(numeric)} |")
    add(f"| dates | {report.dates.expected} | {report.dates.found} | {_pct(report.dates)} |")
    add("")
    other_mode = "case" if cache_mode == "stream" else "stream"
    add("Format-signature cache (compact frames are decodable only after a full frame of the same layout):")
    add("")
    add("| cache | numeric recall | date recall |")
    add("|---|---:|---:|")
    for mode, result in ((cache_mode, report), (other_mode, other)):
        label = {
            "stream": "one cache over the whole corpus, in file order (as `decode --jsonl` learns)",
            "case": "a fresh cache per case (only the case's own preceding telegrams teach it)",
        }[mode]
        marker = " (tables below)" if mode == cache_mode else ""
        add(f"| {label}{marker} | {_pct(result.numeric)} | {_pct(result.dates)} |")
    add("")
    add(
        "A numeric value counts when its field name ends in a unit suffix of the table below; it is found "
        "when a decoded record value (or compact-profile element), converted into that unit, equals it "
        f"within a relative tolerance of {REL_TOL:g} (or {ABS_TOL:g} absolute: the expected values are "
        "printed with six decimals). A date counts when it looks like `YYYY-MM-DD` (the "
        "peer's `timestamp`, its own clock, is not counted); it is found when a decoded date (a date record "
        "or a compact profile's time grid) starts with it, to the minute when it has a time. No telegram, "
        "driver or manufacturer is special-cased: every value comes from the standard decode."
    )
    add("")
    add("## Per unit suffix")
    add("")
    add("| suffix | converts from | expected | found | recall |")
    add("|---|---|---:|---:|---:|")
    for suffix, tally in sorted(report.by_suffix.items(), key=lambda item: (-item[1].expected, item[0])):
        sources = "date/datetime records" if suffix == "date" else ", ".join(CONVERSIONS[suffix]) or "(none)"
        add(f"| `{suffix}` | {sources} | {tally.expected} | {tally.found} | {_pct(tally)} |")
    add("")
    add("## Misses by cause")
    add("")
    add("Each miss gets the first cause whose rule applies, in this order:")
    add("")
    add("| cause | rule | numeric misses | date misses | owner |")
    add("|---|---|---:|---:|---|")
    for cause, (rule, owner) in CAUSES.items():
        numeric_misses, date_misses = report.causes.get(cause, [0, 0])
        add(f"| {cause} | {rule} | {numeric_misses} | {date_misses} | {owner} |")
    add("")
    add("## Security and frame status of the corpus telegrams")
    add("")
    add("| kind: status | cases |")
    add("|---|---:|")
    for status, count in report.statuses.most_common():
        add(f"| {status} | {count} |")
    add("")
    add("## Drivers with the most misses")
    add("")
    add("| driver | expected | found | recall |")
    add("|---|---:|---:|---:|")
    worst = sorted(report.by_driver.items(), key=lambda item: (item[1].found - item[1].expected, item[0]))
    for driver, tally in worst[:25]:
        if tally.found == tally.expected:
            break
        add(f"| {driver} | {tally.expected} | {tally.found} | {_pct(tally)} |")
    add("")
    add("## Examples of misses (first five per cause)")
    add("")
    add("| cause | driver | field | expected |")
    add("|---|---|---|---|")
    shown: collections.Counter[str] = collections.Counter()
    for expected, cause in report.misses:
        if shown[cause] < 5:
            shown[cause] += 1
            add(f"| {cause} | {expected.driver} | `{expected.name}` | {expected.value} |")
    add("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "corpus", nargs="?", default=DEFAULT_CORPUS, help="corpus JSONL (relative to the repo root)"
    )
    parser.add_argument(
        "--output", default=str(DEFAULT_OUTPUT), help="Markdown report to write ('-' for stdout)"
    )
    parser.add_argument(
        "--cache",
        choices=("stream", "case"),
        default="stream",
        help="format-signature cache: one for the whole run (stream, default) or one per case",
    )
    args = parser.parse_args(argv)
    path = Path(args.corpus)
    if not path.is_absolute():
        path = REPO / path
    if not path.exists() and args.corpus == DEFAULT_CORPUS and FALLBACK_CORPUS.exists():
        path = FALLBACK_CORPUS
    try:
        cases = load(path)
    except (OSError, json.JSONDecodeError) as error:
        sys.stderr.write(f"conformance: cannot read the corpus {path}: {error}\n")
        return 2
    report = run(cases, args.cache)
    other = run(cases, "case" if args.cache == "stream" else "stream")
    shown_path = args.corpus if path != FALLBACK_CORPUS else str(FALLBACK_CORPUS.relative_to(REPO))
    text = render(report, shown_path, args.cache, other)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
    sys.stdout.write(
        f"numeric recall {report.numeric.recall:.3f} ({report.numeric.found}/{report.numeric.expected}), "
        f"date recall {report.dates.recall:.3f} ({report.dates.found}/{report.dates.expected}), "
        f"{report.cases} cases in {report.seconds:.2f} s (cache: {args.cache}); with the other cache: "
        f"{other.numeric.recall:.3f} / {other.dates.recall:.3f}\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
