"""``minolcore decode`` logic: person-readable and JSON output, JSON lines from stdin (one
object per line, in order, streamed), and exit codes for bad arguments."""

from __future__ import annotations

import io
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from minolcore.wmbus.decode_cli import EXIT_BAD_ARGUMENTS, EXIT_NOT_DECODED, EXIT_OK, run_decode
from tests.vectors import V1_FRAME, V1_KEY, V4_FRAME, V4_KEY, V6_FRAME, V6_KEY, V10_FRAME

WRONG_KEY = "000102030405060708090A0B0C0D0E0F"


def _run(
    hex_arg: str | None,
    *,
    key: str | None = None,
    as_json: bool = False,
    jsonl: bool = False,
    stdin: str = "",
) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_decode(
        hex_arg, key=key, as_json=as_json, jsonl=jsonl, stdin=io.StringIO(stdin), stdout=out, stderr=err
    )
    return code, out.getvalue(), err.getvalue()


def _objects(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


# --- one telegram ---------------------------------------------------------------------------------


def test_readable_output_has_values_units_and_dates() -> None:
    code, out, err = _run(V1_FRAME, key=V1_KEY)
    assert (code, err) == (EXIT_OK, "")
    assert "ELS 12345678" in out and "mode 5: decrypted" in out
    volume_line = next(line for line in out.splitlines() if "volume" in line)
    assert "28504.27" in volume_line and "m3" in volume_line
    assert "2008-05-31T23:50" in out
    assert "error_flags" in out


def test_readable_output_table_is_aligned() -> None:
    _, out, _ = _run(V4_FRAME, key=V4_KEY)
    table = out.split("\n\n", 1)[1].splitlines()
    header, rows = table[0], table[1:]
    unit_column = header.index("unit")
    assert all(row[unit_column - 2 : unit_column] == "  " for row in rows)
    assert any("HCA" in row and "1234" in row for row in rows)
    assert "Behind    QDS 55667788" in out


def test_json_output_parses_to_the_contract() -> None:
    code, out, _ = _run(V1_FRAME, key=V1_KEY, as_json=True)
    assert code == EXIT_OK
    document = json.loads(out)
    assert document["security"] == {"mode": 5, "status": "decrypted", "message_counter": None}
    assert document["records"][0]["value"] == 28504.27 and document["records"][0]["unit"] == "m3"
    assert document["errors"] == []


def test_security_failures_exit_1_and_say_why() -> None:
    code, out, _ = _run(V1_FRAME, key=WRONG_KEY)
    assert code == EXIT_NOT_DECODED and "wrong_key" in out and "(no records)" in out
    code, out, _ = _run(V1_FRAME, as_json=True)
    assert code == EXIT_NOT_DECODED and json.loads(out)["security"]["status"] == "no_key"
    code, out, _ = _run(V10_FRAME, key="NOKEY")
    assert code == EXIT_OK and "already_decrypted" in out


def test_frame_error_exits_1() -> None:
    code, out, _ = _run("2E4493157856341233037A")  # L says 46 bytes, 10 follow
    assert code == EXIT_NOT_DECODED and "frame" in out


def test_bad_arguments() -> None:
    code, out, err = _run(V1_FRAME, jsonl=True)
    assert (code, out) == (EXIT_BAD_ARGUMENTS, "") and "not both" in err
    code, _, err = _run(None)
    assert code == EXIT_BAD_ARGUMENTS and "missing" in err
    code, _, err = _run(V1_FRAME[:-1])
    assert code == EXIT_BAD_ARGUMENTS and "odd" in err
    code, _, err = _run("XYZ0")
    assert code == EXIT_BAD_ARGUMENTS and "not hex" in err
    code, _, err = _run("")
    assert code == EXIT_BAD_ARGUMENTS and "empty" in err
    secret = "0102030405060708090A0B0C0D0E0F1"
    code, _, err = _run(V1_FRAME, key=secret)
    assert code == EXIT_BAD_ARGUMENTS and "--key" in err and secret not in err
    code, _, err = _run(None, key="nothex" * 5 + "zz", jsonl=True)
    assert code == EXIT_BAD_ARGUMENTS and "--key" in err


# --- JSON lines ----------------------------------------------------------------------------------


def test_jsonl_mixed_input_one_object_per_line_in_order() -> None:
    lines = [
        f"{V1_FRAME} {V1_KEY}",  # valid, key on the line
        V1_FRAME[:-1],  # odd hex
        f"{V1_FRAME} 0102",  # bad key
        "",  # empty line
        "hello world, not a telegram",  # garbage (too many fields)
        "ZZZZ",  # garbage hex
        f"{V1_FRAME} NOKEY",  # no key
        f"{V6_FRAME}",  # default key from --key does not fit: wrong key
        f"  {V6_FRAME}   {V6_KEY}  ",  # surrounding blanks
        "0A44",  # frame error
        f"{V10_FRAME} nokey",  # already decrypted
    ]
    code, out, err = _run(None, key=V1_KEY, jsonl=True, stdin="\n".join(lines))  # no final newline
    assert (code, err) == (EXIT_OK, "")
    objects = _objects(out)
    assert [o["line"] for o in objects] == list(range(1, len(lines) + 1))
    statuses = [None if o["security"] is None else o["security"]["status"] for o in objects]
    assert statuses == [
        "decrypted",
        None,
        None,
        None,
        None,
        None,
        "no_key",
        "wrong_key",
        "decrypted",
        None,
        "already_decrypted",
    ]
    assert objects[0]["records"][0]["value"] == 28504.27
    assert "odd" in objects[1]["errors"][0]
    assert objects[2]["errors"][0].startswith("input: key") and "0102" not in objects[2]["errors"][0]
    assert objects[3]["errors"] == ["input: empty line"]
    for index in (1, 2, 3, 4, 5, 9):
        assert objects[index]["records"] == [] and objects[index]["errors"]
    assert [r["value"] for r in objects[8]["records"] if r["quantity"] == "volume"] == [474.24, 473.247]


class _WatchedInput(io.StringIO):
    """stdin that checks, on every line handed out, that the answers to all earlier lines
    were already written: the decoder streams instead of reading everything first."""

    def __init__(self, text: str, output: io.StringIO) -> None:
        super().__init__(text)
        self.output = output
        self.handed_out = 0

    def __next__(self) -> str:  # type: ignore[override]
        written = self.output.getvalue().count("\n")
        assert written == self.handed_out, f"{written} answers after {self.handed_out} lines"
        line = super().__next__()
        self.handed_out += 1
        return line


def test_jsonl_streams() -> None:
    out, err = io.StringIO(), io.StringIO()
    stdin = _WatchedInput("\n".join([V1_FRAME, "", V10_FRAME, "x"]) + "\n", out)
    code = run_decode(None, key=V1_KEY, as_json=False, jsonl=True, stdin=stdin, stdout=out, stderr=err)
    assert code == EXIT_OK and stdin.handed_out == 4
    assert len(_objects(out.getvalue())) == 4


def test_jsonl_learns_compact_layouts_from_earlier_lines() -> None:
    from tests.test_telegram import KAMSTRUP_COMPACT, KAMSTRUP_FULL  # noqa: PLC0415

    _, out, _ = _run(None, jsonl=True, stdin=f"{KAMSTRUP_COMPACT}\n{KAMSTRUP_FULL}\n{KAMSTRUP_COMPACT}\n")
    first, second, third = _objects(out)
    assert first["records"] == [] and first["compact"]
    assert second["records"] and third["records"] and third["compact"]
    assert third["errors"] == []


@given(
    lines=st.lists(
        st.text(
            alphabet=st.characters(blacklist_characters="\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"),
            max_size=80,
        ),
        max_size=15,
    )
)
def test_jsonl_any_text_gives_one_object_per_line(lines: list[str]) -> None:
    text = "".join(line + "\n" for line in lines)
    code, out, _ = _run(None, jsonl=True, stdin=text)
    assert code == EXIT_OK
    objects = _objects(out)
    assert [o["line"] for o in objects] == list(range(1, len(lines) + 1))
    for obj in objects:
        assert set(obj) >= {"link", "security", "records", "errors"}
