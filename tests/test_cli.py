"""The minolcore command: ingest of gateway logs, reports, and bad input handled with clear
messages and exit codes; crash safety of ingest under SIGKILL."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from minolcore.cli import main
from minolcore.pipeline import Pipeline
from minolcore.reception import Radio
from minolcore.simulator import Simulation, simulate, write_collector_log, write_packet_forwarder_log
from minolcore.store import SQLiteStore
from minolcore.store._reader import StoreReader


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Simulation, Path]:
    folder = tmp_path_factory.mktemp("ingest")
    simulation = simulate(start=dt.date(2025, 1, 1), days=30, seed=9, units=2)
    simulation.write_site_toml(folder / "site.toml")
    simulation.write_keys_toml(folder / "keys.toml")
    write_collector_log(folder / "traffic.jsonl", simulation.receptions)
    write_packet_forwarder_log(folder / "lorawan.jsonl", simulation.receptions)
    return simulation, folder


def ingest(folder: Path, log: Path, db: Path, *more: Path) -> int:
    return main(
        [
            "ingest",
            str(log),
            *map(str, more),
            "--site",
            str(folder / "site.toml"),
            "--keys",
            str(folder / "keys.toml"),
            "--db",
            str(db),
        ]
    )


def test_ingest_stores_the_wmbus_traffic(
    files: tuple[Simulation, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    simulation, folder = files
    db = folder / "a.sqlite"
    assert ingest(folder, folder / "traffic.jsonl", db) == 0
    out = capsys.readouterr().out
    assert "ingested" in out and "lines/s" in out
    wmbus = [u for u in simulation.truth.uplinks if u.radio == "wmbus"]
    with SQLiteStore(db) as store:
        assert store.counts()["uplinks"] == len(wmbus)
        assert store.rejected_by_reason() == dict(simulation.truth.rejections)
        assert store.get_meta("site_toml") is not None
    # the same input again changes nothing
    with SQLiteStore(db) as store:
        before = StoreReader(store).dump()
    assert ingest(folder, folder / "traffic.jsonl", db) == 0
    with SQLiteStore(db) as store:
        assert StoreReader(store).dump() == before


def test_ingest_of_both_logs_stores_what_the_pipeline_stores(files: tuple[Simulation, Path]) -> None:
    # Collector lines (wireless M-Bus) and packet-forwarder lines (LoRaWAN) together hold the
    # whole simulated traffic: ingesting them stores what feeding the receptions stores.
    simulation, folder = files
    db = folder / "both.sqlite"
    assert ingest(folder, folder / "traffic.jsonl", db, folder / "lorawan.jsonl") == 0
    direct = SQLiteStore(":memory:")
    Pipeline(site=simulation.site, keys=simulation.keys, store=direct, gateways=simulation.gateways).run(
        simulation.receptions
    )
    with SQLiteStore(db) as store:
        assert store.digest() == direct.digest()
        assert store.counts()["uplinks"] == len(simulation.truth.uplinks)
        lorawan = [d.device_uid for d in store.devices() if d.radio == "lorawan"]
        assert lorawan and all(uid.startswith("lorawan:") for uid in lorawan)
    direct.close()


def test_reports_from_the_command(files: tuple[Simulation, Path], capsys: pytest.CaptureFixture[str]) -> None:
    _, folder = files
    db = folder / "r.sqlite"
    assert ingest(folder, folder / "traffic.jsonl", db) == 0
    capsys.readouterr()
    assert (
        main(
            [
                "report",
                "monthly",
                "--db",
                str(db),
                "--unit",
                "B1-01",
                "--period",
                "2025-01-01:2025-01-31",
                "--format",
                "csv",
            ]
        )
        == 0
    )
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows and {row["unit"] for row in rows} == {"B1-01"}
    assert main(["report", "smoke", "--db", str(db), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["detectors"]) == 2
    assert (
        main(["report", "billing", "--db", str(db), "--building", "B1", "--period", "2024-12-31:2025-01-30"])
        == 0
    )
    assert "B1-02" in capsys.readouterr().out


def test_bad_input_gives_clear_errors(
    files: tuple[Simulation, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, folder = files
    bad_site = tmp_path / "site.toml"
    bad_site.write_text("[[units]]\nid = 'U1'\nbuilding = 'nowhere'\nname = 'x'\narea = -3\n")
    code = main(
        [
            "ingest",
            str(folder / "traffic.jsonl"),
            "--site",
            str(bad_site),
            "--keys",
            str(folder / "keys.toml"),
            "--db",
            str(tmp_path / "x.sqlite"),
        ]
    )
    assert code == 1 and "minolcore: units[0]" in capsys.readouterr().err
    bad_keys = tmp_path / "keys.toml"
    bad_keys.write_text("[[devices]]\nmanufacturer = 'QDS'\nmeter_id = '12345678'\nkey = 'ABCD'\n")
    code = main(
        [
            "ingest",
            str(folder / "traffic.jsonl"),
            "--site",
            str(folder / "site.toml"),
            "--keys",
            str(bad_keys),
            "--db",
            str(tmp_path / "x.sqlite"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and "devices[0]" in err and "ABCD" not in err
    assert main(["report", "billing", "--db", str(tmp_path / "missing.sqlite")]) == 1
    assert "no such database" in capsys.readouterr().err
    assert (
        main(
            [
                "ingest",
                str(tmp_path / "missing.jsonl"),
                "--site",
                str(folder / "site.toml"),
                "--keys",
                str(folder / "keys.toml"),
                "--db",
                str(tmp_path / "x.sqlite"),
            ]
        )
        == 1
    )
    assert "missing.jsonl: no such file" in capsys.readouterr().err
    common = ["--site", str(folder / "site.toml"), "--keys", str(folder / "keys.toml")]
    assert main(["ingest", str(tmp_path), *common, "--db", str(tmp_path / "x.sqlite")]) == 1
    assert "a directory, not a log file" in capsys.readouterr().err


def test_truncated_log_and_garbage_lines_lose_no_valid_reading(
    files: tuple[Simulation, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, folder = files
    lines = (folder / "traffic.jsonl").read_text().splitlines()
    damaged = tmp_path / "damaged.jsonl"
    damaged.write_text(
        "\n".join(["garbage !!", *lines[:100], '{"gateway": "GW-1", "fra', *lines[100:], lines[-1][:25]])
    )
    assert ingest(folder, damaged, tmp_path / "d.sqlite") == 0
    assert "bad lines" in capsys.readouterr().out
    assert ingest(folder, folder / "traffic.jsonl", tmp_path / "clean.sqlite") == 0
    with SQLiteStore(tmp_path / "d.sqlite") as store, SQLiteStore(tmp_path / "clean.sqlite") as clean:
        assert StoreReader(store).dump()["readings"] == StoreReader(clean).dump()["readings"]
        bad = [row for row in store.rejected() if row.reason.startswith("line_")]
        assert len(bad) == 3


def test_ingest_survives_sigkill(tmp_path: Path) -> None:
    simulation = simulate(start=dt.date(2025, 1, 1), days=150, seed=9, units=2)
    simulation.write_site_toml(tmp_path / "site.toml")
    simulation.write_keys_toml(tmp_path / "keys.toml")
    big = tmp_path / "big.jsonl"
    write_collector_log(big, [r for r in simulation.receptions if r.radio is Radio.WMBUS])
    reference = tmp_path / "reference.sqlite"
    assert ingest(tmp_path, big, reference) == 0
    with SQLiteStore(reference) as store:
        expected = StoreReader(store).dump()
    command = [
        sys.executable,
        "-m",
        "minolcore",
        "ingest",
        str(big),
        "--site",
        str(tmp_path / "site.toml"),
        "--keys",
        str(tmp_path / "keys.toml"),
        "--db",
        str(tmp_path / "killed.sqlite"),
    ]
    rng = random.Random(4)
    for _ in range(3):
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 1.5))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finished = subprocess.run(command, capture_output=True, timeout=300, check=False)
    assert finished.returncode == 0, finished.stderr.decode()
    with SQLiteStore(tmp_path / "killed.sqlite") as store:
        assert StoreReader(store).dump() == expected


def test_an_in_memory_database_is_refused_for_ingest(
    files: tuple[Simulation, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, folder = files
    for db in ("", ":memory:"):
        arguments = ["ingest", str(folder / "traffic.jsonl"), "--site", str(folder / "site.toml")]
        assert main([*arguments, "--keys", str(folder / "keys.toml"), "--db", db]) == 1
        assert "an in-memory database would be lost" in capsys.readouterr().err


def test_a_log_whose_name_is_not_utf8_is_ingested(
    files: tuple[Simulation, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, folder = files
    log = Path(os.fsdecode(bytes(tmp_path) + b"/Geb\xe4ude.log"))
    log.write_bytes((folder / "traffic.jsonl").read_bytes()[:5_000] + b"\nnot a frame\n")
    db = tmp_path / "named.sqlite"
    assert ingest(folder, log, db) == 0
    with SQLiteStore(db) as store:
        rows = [row for row in store.rejected() if row.reason.startswith("line_")]
        assert store.counts()["readings"] > 0
    assert rows and all(row.gateway_id.startswith("Geb\\xe4ude.log#") for row in rows)


def test_reports_refuse_bad_periods_units_and_damaged_reading_times(
    files: tuple[Simulation, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, folder = files
    db = tmp_path / "r.sqlite"
    assert ingest(folder, folder / "traffic.jsonl", db) == 0
    capsys.readouterr()
    for period in ("9999", "0001-01-01:9999-12-31"):
        assert main(["report", "monthly", "--db", str(db), "--period", period]) == 1
        err = capsys.readouterr().err
        assert "must lie between 1900-01-01 and 9998-12-31" in err and "Traceback" not in err
    for kind in ("billing", "smoke"):
        assert main(["report", kind, "--db", str(db), "--building", "B1", "--unit", "B1-01"]) == 1
        assert "--unit applies to the monthly report" in capsys.readouterr().err
    with SQLiteStore(db) as store:
        store._db.execute(
            "INSERT INTO readings VALUES ('x', 'zzzz-garbage', 'volume', 0, 0, 0, 'instantaneous', 1.0, "
            "'m3', 1, 'B1', 'B1-01', 'k')"
        )
    assert main(["report", "monthly", "--db", str(db)]) == 1
    assert "the newest reading time in the database is not a date" in capsys.readouterr().err


def test_the_command_starts_numpy_without_blas_threads() -> None:
    """The command makes no BLAS calls: its process asks OpenBLAS for no threads of its own,
    unless the environment already says how many."""
    code = "import os, runpy, sys; sys.argv = ['minolcore', '--version']\n" + (
        "try:\n    runpy.run_module('minolcore', run_name='__main__')\n"
        "except SystemExit:\n    print(os.environ.get('OPENBLAS_NUM_THREADS'))"
    )
    for given, expected in ((None, "1"), ("3", "3")):
        env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
        if given is not None:
            env["OPENBLAS_NUM_THREADS"] = given
        finished = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60, check=True
        )
        assert finished.stdout.split()[-1] == expected
        assert finished.stdout.startswith("minolcore ")
