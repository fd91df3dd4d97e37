"""Damaged specialist prediction files and question files (see conftest.py)."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from damagetools import World, cli, finished_benchmark, refused, replace_with_folder, set_line

# ----------------------------------------------------------------------------- prediction files


def _predictions(world: World, change: Callable[[dict], object]) -> bytes:
    data = json.loads(world.predictions.read_text())
    result = change(data)
    return json.dumps(data if result is None else result).encode()


def _by_narration_id(world: World, extra: str) -> bytes:
    from verbnoun.data.annotations import EK100Annotations

    segments = EK100Annotations(world.kitchen / "annotations").segments("validation")
    data = json.loads(world.predictions.read_text())
    keyed = {s.narration_id: data[str(s.row)] for s in segments}
    keyed[extra] = keyed[segments[0].narration_id]
    return json.dumps(keyed).encode()


def _challenge_with_nan(world: World) -> bytes:
    results = {"P03_01_0": {"verb": {"0": float("nan")}, "noun": {"0": 1.0}}}
    return json.dumps({"version": "0.2", "challenge": "action_recognition", "results": results})\
        .encode()  # fmt: skip


def _drop_key(key: str) -> Callable[[dict], None]:
    return lambda data: data.pop(key) and None


def _set(key: str, field: str, value: object) -> Callable[[dict], None]:
    return lambda data: data[key].__setitem__(field, value)


PREDICTION_DAMAGE = [
    ("not JSON", lambda w: b'{"0": {"predictions": ["1:2"', r":1: not valid JSON"),
    ("empty file", lambda w: b"", r"empty file"),
    ("a list", lambda w: b"[1, 2, 3]", r"expected a JSON object"),
    ("empty object", lambda w: b"{}", r"non-empty"),
    (
        "row beyond the CSV",
        lambda w: _predictions(w, lambda d: d.__setitem__("999", d["0"])),
        r"\[999\]: row 999 does not exist",
    ),
    (
        "narration id not in the split",
        lambda w: _by_narration_id(w, "P99_01_0"),
        r"\[P99_01_0\]: narration id",
    ),
    (
        "target disagrees",
        lambda w: _predictions(w, _set("3", "target", "0:1")),
        r"\[3\]: target 0:1 differs",
    ),
    (
        "malformed action id",
        lambda w: _predictions(w, _set("2", "predictions", ["1-2"])),
        r"\[2\]: not an action id",
    ),
    (
        "unknown class id",
        lambda w: _predictions(w, _set("2", "predictions", ["999:0"])),
        r"\[2\]: unknown class id",
    ),
    (
        "predictions not a list",
        lambda w: _predictions(w, _set("1", "predictions", "1:2")),
        r"\[1\]: expected",
    ),
    (
        "action id not a string",
        lambda w: _predictions(w, _set("1", "predictions", [12])),
        r"\[1\]: action id must be a string",
    ),
    (
        "mixed keys",
        lambda w: _predictions(w, lambda d: d.__setitem__("P03_01_0", d["0"])),
        r"mix row indices",
    ),
    ("row missing", lambda w: _predictions(w, _drop_key("5")), r"\[5\]: no prediction for row 5"),
    ("NaN score (challenge)", _challenge_with_nan, r"\[P03_01_0\]: verb score"),
    ("non-UTF-8 byte", lambda w: b'{"0": {"predictions": ["\xff"]}}', r":1: not UTF-8"),
    ("truncated", lambda w: w.predictions.read_bytes()[:-40], r"not valid JSON"),
    (
        "duplicate ids",
        lambda w: w.predictions.read_bytes()[:-1] + b', "0": {"predictions": ["0:0"]}}',
        r"duplicate key '0'",
    ),
]


@pytest.mark.parametrize(
    ("make", "place"), [(m, p) for _, m, p in PREDICTION_DAMAGE],
    ids=[n for n, _, _ in PREDICTION_DAMAGE],
)  # fmt: skip
def test_prediction_file(world, tmp_path, capsys, make, place):
    target = tmp_path / "tim.json"
    target.write_bytes(make(world))
    out, manifest = finished_benchmark(world, tmp_path)
    refused(capsys, ["mqa", "build", "--annotations", world.kitchen / "annotations",
                     "--distractors", "specialist", "--predictions", target, "--out", out],
            file=target, place=place, keep=(out, manifest))  # fmt: skip


def test_prediction_file_fits_builds(world, tmp_path):
    """The undamaged prediction file builds (so the refusals above come from the damage)."""
    out = tmp_path / "hard.jsonl"
    assert cli("mqa", "build", "--annotations", world.kitchen / "annotations", "--distractors",
               "specialist", "--predictions", world.predictions, "--out", out) == 0  # fmt: skip


def test_prediction_file_for_another_csv_in_two_stage(world, tmp_path, capsys):
    target = tmp_path / "tim.json"
    target.write_bytes(_predictions(world, lambda d: d.__setitem__("40", d["0"])))
    refused(capsys, ["eval", "--two-stage", "--top-k", "5", "--model", "random", "--predictions",
                     target, "--annotations", world.kitchen / "annotations", "--out",
                     tmp_path / "run"], file=target, place=r"\[40\]: row 40 does not exist")  # fmt: skip
    assert not (tmp_path / "run" / "predictions.jsonl").exists()


def test_prediction_file_for_another_split_in_sft(world, tmp_path, capsys):
    target = tmp_path / "tim.json"
    target.write_bytes(_by_narration_id(world, "P03_01_0"))  # validation ids, train split
    sft = tmp_path / "sft"
    assert cli("sft", "build", "--annotations", world.kitchen / "annotations", "--out", sft) == 0
    refused(capsys, ["sft", "build", "--annotations", world.kitchen / "annotations",
                     "--predictions", target, "--out", sft],
            file=target, place=r"narration id '.*' is not in", keep=(sft,))  # fmt: skip


# ----------------------------------------------------------------------------- question files


def _question(number: int, change: Callable[[dict], object]) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        def edit(line: bytes) -> bytes:
            data = json.loads(line)
            result = change(data)
            return json.dumps(data if result is None else result).encode() + b"\n"

        set_line(path, number, edit)

    return damage


QUESTION_DAMAGE = [
    ("empty file", lambda p: p.write_bytes(b""), r": no questions"),
    (
        "truncated last line",
        lambda p: p.write_bytes(p.read_bytes()[:-50]),
        r":20: last line is truncated",
    ),
    ("not JSON", lambda p: set_line(p, 3, lambda x: x[:40] + b"\n"), r":3: not valid JSON"),
    ("a list", _question(4, lambda d: [d]), r":4: expected a JSON object"),
    (
        "missing key",
        _question(5, lambda d: d.pop("options") and None),
        r":5: bad question: missing key 'options'",
    ),
    (
        "answer outside the options",
        _question(6, lambda d: d.__setitem__("answer_index", 9)),
        r":6: bad question",
    ),
    (
        "duplicate id",
        _question(7, lambda d: d.__setitem__("id", "P03_01_0")),
        r":7: duplicate question id",
    ),
    ("stop before start", _question(8, lambda d: d.__setitem__("stop", 0.1)), r":8: bad question"),
    (
        "NaN start",
        lambda p: set_line(p, 9, lambda x: re.sub(rb'"start": [0-9.]+', b'"start": NaN', x)),
        r":9: bad question",
    ),
    (
        "non-UTF-8 byte",
        lambda p: set_line(p, 10, lambda x: x.replace(b"a", b"\xc3\x28", 1)),
        r":10: not UTF-8",
    ),
    (
        "options a string",
        _question(11, lambda d: d.__setitem__("options", "A. open")),
        r":11: bad question",
    ),
    (
        "option text a number",
        _question(12, lambda d: d["options"][0].__setitem__("text", 5)),
        r":12: bad question",
    ),
    (
        "option with an unknown key",
        _question(13, lambda d: d["options"][1].__setitem__("colour", "red")),
        r":13: bad question: option 1: unknown key\(s\) \['colour'\]",
    ),
    (
        "malformed option action id",
        _question(14, lambda d: d["options"][2].__setitem__("action_id", "F:11")),
        r":14: bad question: not an action id",
    ),
    (
        "option source a list",
        _question(15, lambda d: d["options"][0].__setitem__("source", [])),
        r":15: bad question: option 0: source must be text",
    ),
    (
        "prior action without offset",
        _question(16, lambda d: d.__setitem__("prior_actions", [{"id": "x"}, {"id": "y"}])),
        r":16: bad question: prior action 0",
    ),
    ("folder instead of file", replace_with_folder, r"is a folder"),
]


@pytest.mark.parametrize(
    ("damage", "place"), [(d, p) for _, d, p in QUESTION_DAMAGE],
    ids=[n for n, _, _ in QUESTION_DAMAGE],
)  # fmt: skip
def test_question_file(world, tmp_path, capsys, damage, place):
    target = tmp_path / "q.jsonl"
    shutil.copy(world.questions, target)
    damage(target)
    refused(capsys, ["mqa", "stats", target], file=target, place=place)


def test_question_file_in_eval(world, tmp_path, capsys):
    target = tmp_path / "q.jsonl"
    shutil.copy(world.questions, target)
    _question(2, lambda d: d.pop("stop") and None)(target)
    refused(capsys, ["eval", "--model", "random", "--questions", target, "--out", tmp_path / "r"],
            file=target, place=r":2: bad question: missing key 'stop'")  # fmt: skip


def test_question_file_in_lmms_export_keeps_the_earlier_export(world, tmp_path, capsys):
    target = tmp_path / "q.jsonl"
    shutil.copy(world.questions, target)
    export = tmp_path / "task"
    export.mkdir()
    (export / "export.json").write_text('{"kind": "an earlier export"}\n')
    (export / "docs.jsonl").write_text('{"id": "x"}\n')
    target.write_bytes(target.read_bytes()[:-10])
    refused(capsys, ["export", "lmms-eval", "--questions", target, "--videos", world.videos,
                     "--out", export], file=target, place=r":20: last line is truncated",
            keep=(export,))  # fmt: skip


@pytest.mark.parametrize(
    ("damage", "place"), [(d, p) for _, d, p in QUESTION_DAMAGE],
    ids=[n for n, _, _ in QUESTION_DAMAGE],
)  # fmt: skip
@pytest.mark.parametrize("role", ["audited", "training"])
def test_question_file_in_audit_keeps_the_earlier_audit(world, tmp_path, capsys, damage, place,
                                                        role):  # fmt: skip
    target = tmp_path / "q.jsonl"
    shutil.copy(world.questions, target)
    damage(target)
    out = tmp_path / "audit.json"
    out.write_text('{"kind": "an earlier audit"}\n')
    args = ["mqa", "audit", target] if role == "audited" else \
        ["mqa", "audit", world.questions, "--train", target]  # fmt: skip
    refused(capsys, [*args, "--out", out], file=target, place=place, keep=(out,))
