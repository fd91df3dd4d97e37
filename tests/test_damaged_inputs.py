"""Damaged inputs, command by command: one clear line, never a traceback, no output destroyed.

Each case damages one input of one command family (annotation and class CSVs, specialist
prediction files, question files, data set descriptions, videos, run folders, checkpoints,
training configs, SFT files, export inputs) and runs the real CLI in-process
(:func:`verbnoun.cli.main`). It asserts that the command exits non-zero, prints no traceback,
prints exactly one ``verbnoun: error:`` line that names the damaged file and the place (line,
key or id) and is not the last-resort "unexpected" message, and that every finished output
written earlier (a question file and its manifest, an SFT folder, an export, a report, a
prediction file) is byte-identical afterwards. A few cases run the console script in a
subprocess to show that the real entry point prints no traceback either.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from verbnoun.cli import main

VALIDATION = "EPIC_100_validation.csv"
TRAIN = "EPIC_100_train.csv"
VERBS = "EPIC_100_verb_classes.csv"
NOUNS = "EPIC_100_noun_classes.csv"
TAIL_VERBS = "EPIC_100_tail_verbs.csv"
ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False


# ----------------------------------------------------------------------------- the world


@dataclass
class World:
    """Finished inputs and outputs every case starts from (copied before damaging)."""

    root: Path
    kitchen: Path  # annotations/, dataset.yaml
    questions: Path
    run: Path
    predictions: Path  # specialist predictions of the validation split, keyed by row
    video: Path
    videos: Path  # an (empty) chunk-layout video root


def write_clip(path: Path, frames: int = 20, fps: int = 10) -> Path:
    av = pytest.importorskip("av")
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            frame = np.full((64, 64, 3), (i * 12) % 256, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def cli(*args: object) -> int:
    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    from verbnoun.data.annotations import EK100Annotations
    from verbnoun.data.kitchen import kitchen_script, write_kitchen_annotations
    from verbnoun.data.synth import write_kitchen_description

    root = tmp_path_factory.mktemp("world")
    kitchen = root / "kitchen"
    write_kitchen_annotations(kitchen / "annotations", kitchen_script(videos=4, seed=0))
    write_kitchen_description(kitchen)
    annotations = kitchen / "annotations"
    questions = root / "q.jsonl"
    assert cli("mqa", "build", "--annotations", annotations, "--out", questions) == 0
    run = root / "run"
    assert cli("eval", "--model", "random", "--questions", questions, "--out", run) == 0
    ek = EK100Annotations(annotations)
    actions = list(ek.action_vocabulary().actions)
    predictions = {}
    for segment in ek.segments("validation"):
        others = [a for a in actions if a != segment.action_id][:9]
        predictions[str(segment.row)] = {
            "predictions": [segment.action_id, *others],
            "target": segment.action_id,
        }
    predictions_path = root / "predictions.json"
    predictions_path.write_text(json.dumps(predictions), encoding="utf-8")
    videos = root / "videos"
    videos.mkdir()
    return World(root, kitchen, questions, run, predictions_path, write_clip(root / "clip.mp4"),
                 videos)  # fmt: skip


# ----------------------------------------------------------------------------- helpers


def snapshot(*paths: Path) -> dict[str, bytes]:
    """Every file under ``paths`` (files or folders) with its bytes."""
    files: dict[str, bytes] = {}
    for path in paths:
        if path.is_dir():
            for item in sorted(path.rglob("*")):
                if item.is_file():
                    files[str(item)] = item.read_bytes()
        elif path.is_file():
            files[str(path)] = path.read_bytes()
    return files


def refused(
    capsys, argv: list, *, file: str | Path, place: str | None, keep: tuple[Path, ...] = ()
) -> str:
    """Run ``argv`` and check the refusal; returns the error line."""
    before = snapshot(*keep)
    assert before or not keep, "nothing to protect: the fixture is wrong"
    code = cli(*argv)
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert code != 0, output
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if line.startswith("verbnoun: error:")]
    assert len(errors) == 1, output
    line = errors[0]
    assert "unexpected" not in line, line  # a named error, not the last-resort handler
    assert Path(file).name in line, f"{Path(file).name} not named in: {line}"
    if place is not None:
        assert re.search(place, line), f"{place!r} not in: {line}"
    assert snapshot(*keep) == before, "an earlier finished output changed"
    return line


def copy_kitchen(world: World, tmp_path: Path) -> Path:
    """A private copy of the kitchen's annotations and description."""
    target = tmp_path / "kitchen"
    shutil.copytree(world.kitchen, target)
    return target


def finished_benchmark(world: World, tmp_path: Path) -> tuple[Path, Path]:
    """A finished question file and manifest at the --out of the next build."""
    out = tmp_path / "out" / "bench.jsonl"
    out.parent.mkdir()
    shutil.copy(world.questions, out)
    shutil.copy(world.questions.with_name("q.manifest.json"), out.with_name("bench.manifest.json"))
    return out, out.with_name("bench.manifest.json")


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def set_line(path: Path, number: int, change: Callable[[bytes], bytes]) -> None:
    """Replace line ``number`` (1-based) of a file by ``change(line)``."""
    lines = lines_of(path)
    lines[number - 1] = change(lines[number - 1])
    path.write_bytes(b"".join(lines))


def set_field(path: Path, number: int, column: str, value: str) -> None:
    """Set one CSV cell (simple rows without quoted commas in the columns before it)."""
    header = lines_of(path)[0].decode().rstrip("\r\n").split(",")
    index = header.index(column)

    def change(line: bytes) -> bytes:
        import csv
        import io

        row = next(csv.reader(io.StringIO(line.decode())))
        row[index] = value
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(row)
        return buffer.getvalue().encode()

    set_line(path, number, change)


# ----------------------------------------------------------------------------- annotation CSVs


def _header_only(path: Path) -> None:
    path.write_bytes(lines_of(path)[0])


def _truncate_mid_line(path: Path) -> None:
    data = path.read_bytes()
    last = data.rstrip(b"\n").rfind(b"\n")
    path.write_bytes(data[: last + 30])


def _drop_column(column: str) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        import csv
        import io

        rows = list(csv.reader(io.StringIO(path.read_text())))
        index = rows[0].index(column)
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(
            [r[:index] + r[index + 1 :] for r in rows]
        )
        path.write_text(buffer.getvalue())

    return damage


def _duplicate_id(path: Path) -> None:
    earlier = lines_of(path)[7].split(b",")[0].decode()
    set_field(path, 9, "narration_id", earlier)


def _swap_times(path: Path) -> None:
    row = lines_of(path)[5].decode().split(",")
    set_field(path, 6, "start_timestamp", row[5])
    set_field(path, 6, "stop_timestamp", row[4])


def _replace_with_folder(path: Path) -> None:
    path.unlink()
    path.mkdir()


def _dangling_symlink(path: Path) -> None:
    path.unlink()
    path.symlink_to(path.with_name("gone.csv"))


SEGMENT_DAMAGE = [
    ("empty file", lambda p: p.write_bytes(b""), r":1: empty file"),
    ("header only", _header_only, r"no segments in .*EPIC_100_validation\.csv"),
    ("truncated mid-line", _truncate_mid_line, r":21: expected 15 fields"),
    (
        "non-UTF-8 byte",
        lambda p: set_line(p, 5, lambda x: x.replace(b"a", b"\xff", 1)),
        r":5: not UTF-8",
    ),
    (
        "wrong delimiter",
        lambda p: p.write_bytes(p.read_bytes().replace(b",", b";")),
        r":1: .*comma-separated",
    ),
    (
        "missing column",
        _drop_column("start_timestamp"),
        r":1: missing required column.*start_timestamp",
    ),
    (
        "extra field in a row",
        lambda p: set_line(p, 7, lambda x: x.rstrip(b"\n") + b",extra\n"),
        r":7: expected 15 fields",
    ),
    (
        "non-numeric class",
        lambda p: set_field(p, 3, "verb_class", "abc"),
        r":3: field 'verb_class'",
    ),
    ("NaN class", lambda p: set_field(p, 4, "noun_class", "nan"), r":4: field 'noun_class'"),
    ("negative frame", lambda p: set_field(p, 4, "start_frame", "-5"), r":4: field 'start_frame'"),
    ("stop before start", _swap_times, r":6: field 'stop_timestamp'"),
    ("duplicate narration id", _duplicate_id, r":9: field 'narration_id'.*duplicate"),
    (
        "unknown class id",
        lambda p: set_field(p, 10, "verb_class", "999"),
        r":10: field 'verb_class': unknown verb class id 999",
    ),
    (
        "bad timestamp",
        lambda p: set_field(p, 11, "start_timestamp", "1:2"),
        r":11: field 'start_timestamp'",
    ),
    ("NUL byte", lambda p: set_line(p, 12, lambda x: b"\x00" + x), r":12: .*NUL"),
    (
        "list field not a list",
        lambda p: set_field(p, 13, "all_noun_classes", "[1, 2"),
        r":13: field 'all_noun_classes'",
    ),
    ("empty id", lambda p: set_field(p, 14, "video_id", " "), r":14: field 'video_id': empty"),
    (
        "unterminated quote",
        lambda p: set_line(p, 15, lambda x: b'"' + x),
        r":15: expected 15 fields",
    ),
    ("folder instead of file", _replace_with_folder, r"is a folder"),
    ("dangling symlink", _dangling_symlink, r"file not found"),
    ("path through a file", lambda p: None, None),  # replaced below: the folder is a file
]


@pytest.mark.parametrize(
    ("damage", "place"), [(d, p) for _, d, p in SEGMENT_DAMAGE[:-1]],
    ids=[name for name, _, _ in SEGMENT_DAMAGE[:-1]],
)  # fmt: skip
def test_segment_csv(world, tmp_path, capsys, damage, place):
    kitchen = copy_kitchen(world, tmp_path)
    target = kitchen / "annotations" / VALIDATION
    damage(target)
    out, manifest = finished_benchmark(world, tmp_path)
    refused(capsys, ["mqa", "build", "--annotations", kitchen / "annotations", "--out", out],
            file=target, place=place, keep=(out, manifest))  # fmt: skip


def test_segment_csv_through_a_described_data_set(world, tmp_path, capsys):
    kitchen = copy_kitchen(world, tmp_path)
    target = kitchen / "annotations" / VALIDATION
    set_line(target, 8, lambda x: x.replace(b"0", b"\xfe", 1))
    out, manifest = finished_benchmark(world, tmp_path)
    refused(capsys, ["mqa", "build", "--dataset", kitchen / "dataset.yaml", "--out", out],
            file=target, place=r":8: not UTF-8", keep=(out, manifest))  # fmt: skip


@pytest.mark.skipif(ROOT, reason="root reads files whatever their mode")
def test_segment_csv_permission_denied(world, tmp_path, capsys):
    kitchen = copy_kitchen(world, tmp_path)
    target = kitchen / "annotations" / VALIDATION
    target.chmod(0)
    out, manifest = finished_benchmark(world, tmp_path)
    refused(capsys, ["mqa", "build", "--annotations", kitchen / "annotations", "--out", out],
            file=target, place="permission denied", keep=(out, manifest))  # fmt: skip


def test_bom_and_crlf_read_like_clean_files(world, tmp_path, capsys):
    """Not damage: a byte-order mark and Windows line ends give the same benchmark bytes."""
    kitchen = copy_kitchen(world, tmp_path)
    for name in (VALIDATION, TRAIN, VERBS, NOUNS):
        path = kitchen / "annotations" / name
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    out = tmp_path / "bom.jsonl"
    assert cli("mqa", "build", "--annotations", kitchen / "annotations", "--out", out) == 0
    assert out.read_bytes() == world.questions.read_bytes()


CLASS_DAMAGE = [
    ("empty file", lambda p: p.write_bytes(b""), r":1: empty file"),
    ("header only", _header_only, r": no classes"),
    (
        "ids not in order",
        lambda p: set_field(p, 4, "id", "7"),
        r":4: field 'id': class ids must run",
    ),
    ("duplicate key", lambda p: set_field(p, 5, "key", "take"), r":5: field 'key': duplicate"),
    ("non-numeric id", lambda p: set_field(p, 3, "id", "one"), r":3: field 'id'"),
    ("missing column", _drop_column("key"), r":1: missing required column.*key"),
    ("non-UTF-8 byte", lambda p: set_line(p, 6, lambda x: x[:-1] + b"\x80\n"), r":6: not UTF-8"),
    (
        "instances not a list",
        lambda p: set_field(p, 3, "instances", "{'a'"),
        r":3: field 'instances'",
    ),
    ("ragged row", lambda p: set_line(p, 5, lambda x: b"4,only-two\n"), r":5: expected 4 fields"),
    ("empty key", lambda p: set_field(p, 2, "key", " "), r":2: field 'key': empty"),
]


@pytest.mark.parametrize(
    ("damage", "place"), [(d, p) for _, d, p in CLASS_DAMAGE], ids=[n for n, _, _ in CLASS_DAMAGE]
)
def test_class_csv(world, tmp_path, capsys, damage, place):
    kitchen = copy_kitchen(world, tmp_path)
    target = kitchen / "annotations" / VERBS
    damage(target)
    out, manifest = finished_benchmark(world, tmp_path)
    refused(capsys, ["mqa", "build", "--annotations", kitchen / "annotations", "--out", out],
            file=target, place=place, keep=(out, manifest))  # fmt: skip


def test_noun_class_csv_unknown_in_train(world, tmp_path, capsys):
    kitchen = copy_kitchen(world, tmp_path)
    set_field(kitchen / "annotations" / TRAIN, 3, "noun_class", "300")
    out, manifest = finished_benchmark(world, tmp_path)
    refused(capsys, ["mqa", "build", "--annotations", kitchen / "annotations", "--out", out],
            file=kitchen / "annotations" / TRAIN, place=r":3: field 'noun_class'",
            keep=(out, manifest))  # fmt: skip


def test_tail_class_csv_in_score(world, tmp_path, capsys):
    kitchen = copy_kitchen(world, tmp_path)
    target = kitchen / "annotations" / TAIL_VERBS
    target.write_bytes(b"verb_id;x\n1;2\n")
    refused(capsys, ["score", world.run, "--annotations", kitchen / "annotations"],
            file=target, place=r":1: missing required column", keep=(world.run,))  # fmt: skip


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
    ("folder instead of file", _replace_with_folder, r"is a folder"),
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


# ----------------------------------------------------------------------------- descriptions


def _yaml(change: Callable[[str], str]) -> Callable[[Path], None]:
    return lambda p: p.write_text(change(p.read_text()))


DESCRIPTION_DAMAGE = [
    (
        "YAML syntax error",
        _yaml(lambda t: t.replace("labels: verb_noun", "labels: [verb_noun")),
        r":\d+: not valid YAML",
    ),
    (
        "YAML tabs",
        _yaml(lambda t: t.replace("  columns:", "\tcolumns:")),
        r":\d+: not valid YAML.*tabs",
    ),
    ("top level a list", _yaml(lambda t: "- a\n- b\n"), r"\[\(top level\)\]: expected a mapping"),
    ("missing key", _yaml(lambda t: t.split("splits:")[0]), r"\[splits\]: missing required key"),
    ("wrong value type", _yaml(lambda t: t.replace("fps: 30", "fps: fast")), r"\[segments\.fps\]"),
    ("infinite number", _yaml(lambda t: t.replace("fps: 30", "fps: .inf")), r"\[segments\.fps\]"),
    (
        "path leaving the root",
        _yaml(lambda t: t.replace("validation: annotations/", "validation: ../../")),
        r"leaves the data set root",
    ),
    ("unknown key", _yaml(lambda t: t + "colour: blue\n"), r"unknown key\(s\) colour"),
    ("empty file", lambda p: p.write_bytes(b""), r"expected a mapping"),
    (
        "non-UTF-8 byte",
        lambda p: p.write_bytes(p.read_bytes().replace(b"name:", b"n\xe9me:")),
        r":\d+: not UTF-8",
    ),
    ("folder instead of file", _replace_with_folder, r"is a folder"),
    (
        "column not in the table",
        _yaml(lambda t: t.replace("verb: verb_class", "verb: verb_klass")),
        r":1: .*missing column.*verb_klass",
    ),
]


@pytest.mark.parametrize(
    ("damage", "place"), [(d, p) for _, d, p in DESCRIPTION_DAMAGE],
    ids=[n for n, _, _ in DESCRIPTION_DAMAGE],
)  # fmt: skip
def test_dataset_description(world, tmp_path, capsys, damage, place):
    kitchen = copy_kitchen(world, tmp_path)
    target = kitchen / "dataset.yaml"
    damage(target)
    out, manifest = finished_benchmark(world, tmp_path)
    named = target if "verb_klass" not in place else kitchen / "annotations" / VALIDATION
    refused(capsys, ["mqa", "build", "--dataset", target, "--out", out],
            file=named, place=place, keep=(out, manifest))  # fmt: skip


def test_described_jsonl_table_truncated(world, tmp_path, capsys):
    kitchen = copy_kitchen(world, tmp_path)
    description = kitchen / "dataset.yaml"
    from verbnoun.data.annotations import EK100Annotations

    rows = [
        {"narration_id": s.narration_id, "video_id": s.video_id, "participant_id": s.participant_id,
         "start_timestamp": s.start_timestamp, "stop_timestamp": s.stop_timestamp,
         "narration": s.narration, "verb_class": s.verb_class, "noun_class": s.noun_class}
        for s in EK100Annotations(kitchen / "annotations").segments("validation")
    ]  # fmt: skip
    table = kitchen / "annotations" / "validation.jsonl"
    table.write_text("".join(json.dumps(r) + "\n" for r in rows)[:-25])
    description.write_text(
        description.read_text().replace(
            "validation: annotations/EPIC_100_validation.csv", "validation: annotations/validation.jsonl"
        )
    )  # fmt: skip
    out, manifest = finished_benchmark(world, tmp_path)
    refused(capsys, ["mqa", "build", "--dataset", description, "--out", out], file=table,
            place=rf":{len(rows)}: last line is truncated", keep=(out, manifest))  # fmt: skip


# ----------------------------------------------------------------------------- videos


def _truncate_half(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])


VIDEO_DAMAGE = [
    ("zero-byte video", lambda p: p.write_bytes(b"")),
    ("truncated video", _truncate_half),
    ("not a video", lambda p: p.write_text("this is a text file\n" * 50)),
    ("missing video", lambda p: p.unlink()),
    ("folder instead of video", _replace_with_folder),
]


@pytest.mark.parametrize("damage", [d for _, d in VIDEO_DAMAGE], ids=[n for n, _ in VIDEO_DAMAGE])
def test_video_file(world, tmp_path, capsys, damage):
    clip = tmp_path / "clip.mp4"
    shutil.copy(world.video, clip)
    out = tmp_path / "frames"
    assert cli("frames", "extract", "--layout", "file", "--videos", clip, "--start", 0, "--stop",
               1.5, "--frames", 2, "--out", out) == 0  # fmt: skip
    capsys.readouterr()
    damage(clip)
    refused(capsys, ["frames", "extract", "--layout", "file", "--videos", clip, "--start", 0,
                     "--stop", 1.5, "--frames", 2, "--out", out],
            file=clip, place=None, keep=(out,))  # fmt: skip


def test_unknown_video_id(world, tmp_path, capsys):
    refused(capsys, ["frames", "extract", "--layout", "chunks", "--videos", world.videos,
                     "--video-id", "P99_01", "--start", 0, "--stop", 1, "--out", tmp_path / "f"],
            file="P99_01", place=None)  # fmt: skip


def test_segment_beyond_the_video(world, tmp_path, capsys):
    refused(capsys, ["frames", "extract", "--layout", "file", "--videos", world.video, "--start",
                     50, "--stop", 60, "--out", tmp_path / "f"], file=world.video,
            place=r"50-60")  # fmt: skip


def test_unknown_video_in_lmms_export(world, tmp_path, capsys):
    refused(capsys, ["export", "lmms-eval", "--questions", world.questions, "--videos",
                     world.videos, "--out", tmp_path / "task"], file="P03_01", place=None)  # fmt: skip


# ----------------------------------------------------------------------------- run folders


def _config(change: Callable[[dict], object]) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        data = json.loads((run / "config.json").read_text())
        result = change(data)
        (run / "config.json").write_text(json.dumps(data if result is None else result))

    return damage


def _prediction_line(number: int, text: bytes) -> Callable[[Path], None]:
    return lambda run: set_line(run / "predictions.jsonl", number, lambda x: text)


RUN_DAMAGE = [
    (
        "config not JSON",
        lambda r: (r / "config.json").write_text("{model: random"),
        "config.json",
        r"config\.json:1: not valid JSON",
    ),
    ("config a list", _config(lambda d: [d]), "config.json", r"expected a JSON object"),
    (
        "config missing key",
        _config(lambda d: d.pop("questions_sha256") and None),
        "config.json",
        r"\[questions_sha256\]: missing key",
    ),
    (
        "config wrong value type",
        _config(lambda d: d.__setitem__("questions", 5)),
        "config.json",
        r"\[questions\]: expected a string",
    ),
    ("config empty", lambda r: (r / "config.json").write_bytes(b""), "config.json", r"empty file"),
    ("no config", lambda r: (r / "config.json").unlink(), "run", r"not a run directory"),
    (
        "prediction line not JSON",
        _prediction_line(2, b"{oops\n"),
        "predictions.jsonl",
        r":2: malformed prediction line",
    ),
    (
        "prediction without correct",
        _prediction_line(3, b'{"id": "P03_01_2", "choice": 1}\n'),
        "predictions.jsonl",
        r":3: malformed.*correct",
    ),
    (
        "prediction choice a string",
        _prediction_line(4, b'{"id": "P03_01_3", "choice": "B", "correct": true}\n'),
        "predictions.jsonl",
        r":4: malformed.*choice",
    ),
    (
        "prediction choice outside the options",
        _prediction_line(5, b'{"id": "P03_01_4", "choice": 7, "correct": false}\n'),
        "run",
        r"P03_01_4: choice 7 is outside",
    ),
    (
        "prediction for an unknown question",
        _prediction_line(6, b'{"id": "X_9", "choice": 1, "correct": false}\n'),
        "run",
        r"unknown question ids.*X_9",
    ),
    (
        "prediction non-UTF-8",
        _prediction_line(7, b'{"id": "\xff"}\n'),
        "predictions.jsonl",
        r":7: malformed",
    ),
]


@pytest.mark.parametrize(
    ("damage", "named", "place"), [(d, n, p) for _, d, n, p in RUN_DAMAGE],
    ids=[n for n, _, _, _ in RUN_DAMAGE],
)  # fmt: skip
def test_run_folder_in_score(world, tmp_path, capsys, damage, named, place):
    run = tmp_path / "run"
    shutil.copytree(world.run, run)
    damage(run)
    refused(capsys, ["score", run], file=run / named if named != "run" else run, place=place)


def test_run_folder_question_file_changed(world, tmp_path, capsys):
    questions = tmp_path / "q.jsonl"
    shutil.copy(world.questions, questions)
    run = tmp_path / "run"
    assert cli("eval", "--model", "random", "--questions", questions, "--out", run) == 0
    capsys.readouterr()
    questions.write_bytes(b"".join(lines_of(questions)[:-1]))
    refused(capsys, ["score", run], file=questions, place=r"changed since the run")


def test_run_folder_in_report_keeps_the_earlier_report(world, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(world.run, run)
    html = tmp_path / "report.html"
    html.write_text("<html>an earlier report</html>\n")
    _config(lambda d: d.pop("model") and None)(run)
    refused(capsys, ["report", run, "--out", html], file=run / "config.json",
            place=r"\[model\]: missing key", keep=(html,))  # fmt: skip


@pytest.mark.parametrize(
    ("damage", "place"),
    [
        (lambda r: (r / "config.json").write_text("[1, 2"), r"config\.json:1: not valid JSON"),
        (_config(lambda d: d.pop("parser_version") and None), r"config\.json: .*parser_version"),
        (
            _prediction_line(3, b'{"id": "P03_01_2", "choice": true, "correct": 1}\n'),
            r"predictions\.jsonl:3",
        ),
    ],
    ids=["config not JSON", "config missing key", "prediction wrong types"],
)
def test_run_folder_in_resumed_eval(world, tmp_path, capsys, damage, place):
    run = tmp_path / "run"
    shutil.copytree(world.run, run)
    damage(run)
    named = "predictions.jsonl" if "predictions" in place else "config.json"
    refused(capsys, ["eval", "--model", "random", "--questions", world.questions, "--out", run],
            file=run / named, place=place)  # fmt: skip


# ----------------------------------------------------------------------------- checkpoints


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A tiny checkpoint in the released layout: config.json, an index and two shards."""
    from verbnoun.model.checkpoint import write_tiny_released_checkpoint
    from verbnoun.model.config import tiny_config

    directory = tmp_path_factory.mktemp("ckpt") / "ckpt"
    write_tiny_released_checkpoint(directory, tiny_config(vocab_size=64), shards=2)
    return directory


INDEX = "model.safetensors.index.json"
SHARD = "model-00001-of-00002.safetensors"


def _json_file(name: str, change: Callable[[dict], object]) -> Callable[[Path], None]:
    def damage(directory: Path) -> None:
        data = json.loads((directory / name).read_text())
        result = change(data)
        (directory / name).write_text(json.dumps(data if result is None else result))

    return damage


def _first_key(directory: Path) -> str:
    return next(iter(json.loads((directory / INDEX).read_text())["weight_map"]))


def _shard_header(directory: Path, change: Callable[[dict], None]) -> None:
    import struct

    path = directory / SHARD
    data = path.read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + size])
    change(header)
    raw = json.dumps(header, separators=(",", ":")).encode().ljust(size)
    assert len(raw) == size
    path.write_bytes(data[:8] + raw + data[8 + size :])


CHECKPOINT_DAMAGE = [
    (
        "config not JSON",
        lambda d: (d / "config.json").write_text('{"hidden_size": '),
        "config.json",
        r"config\.json:1: not valid JSON",
    ),
    (
        "config a list",
        lambda d: (d / "config.json").write_text("[]"),
        "config.json",
        r"expected a JSON object",
    ),
    (
        "config missing key",
        _json_file(
            "config.json",
            lambda c: [c.pop(k, None) for k in ("mm_vision_tower", "vision_config")] and None,
        ),
        "config.json",
        r"mm_vision_tower",
    ),
    (
        "config wrong value type",
        _json_file("config.json", lambda c: c.__setitem__("num_hidden_layers", "two")),
        "config.json",
        r"\[num_hidden_layers\]: expected int",
    ),
    (
        "config negative size",
        _json_file("config.json", lambda c: c.__setitem__("hidden_size", -64)),
        "config.json",
        r"\[hidden_size\]: expected int",
    ),
    (
        "config non-UTF-8",
        lambda d: (d / "config.json").write_bytes(b'{"a": "\xff"}'),
        "config.json",
        r":1: not UTF-8",
    ),
    (
        "index not JSON",
        lambda d: (d / INDEX).write_text("weight_map = {}"),
        INDEX,
        r":1: not valid JSON",
    ),
    (
        "index missing weight_map",
        _json_file(INDEX, lambda i: i.pop("weight_map") and None),
        INDEX,
        r"\[weight_map\]: missing key",
    ),
    (
        "index weight_map a list",
        _json_file(INDEX, lambda i: i.__setitem__("weight_map", [])),
        INDEX,
        r"\[weight_map\]: expected",
    ),
    (
        "index shard leaving the folder",
        _json_file(
            INDEX,
            lambda i: i["weight_map"].__setitem__(next(iter(i["weight_map"])), "../x.safetensors"),
        ),
        INDEX,
        r"\[weight_map\..*not a file name",
    ),
    ("missing shard", lambda d: (d / SHARD).unlink(), INDEX, r"missing shard.*" + SHARD),
    ("zero-byte shard", lambda d: (d / SHARD).write_bytes(b""), SHARD, r"truncated"),
    (
        "truncated shard",
        lambda d: (d / SHARD).write_bytes((d / SHARD).read_bytes()[:-100]),
        SHARD,
        r"\[.*\]: tensor ends .*truncated",
    ),
    (
        "garbage header",
        lambda d: (d / SHARD).write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}......."),
        SHARD,
        r"unreadable safetensors header",
    ),
    (
        "implausible header size",
        lambda d: (d / SHARD).write_bytes(b"\xff" * 64),
        SHARD,
        r"implausible",
    ),
    (
        "header entry without offsets",
        lambda d: _shard_header(
            d, lambda h: h[next(k for k in h if k != "__metadata__")].pop("data_offsets")
        ),
        SHARD,
        r"\[.*\]: bad data_offsets",
    ),
    (
        "folder instead of config",
        lambda d: ((d / "config.json").unlink(), (d / "config.json").mkdir()),
        "ckpt",
        r"no config\.json",
    ),
]


@pytest.mark.parametrize(
    ("damage", "named", "place"), [(d, n, p) for _, d, n, p in CHECKPOINT_DAMAGE],
    ids=[n for n, _, _, _ in CHECKPOINT_DAMAGE],
)  # fmt: skip
def test_checkpoint_in_ask(world, checkpoint, tmp_path, capsys, damage, named, place):
    directory = tmp_path / "ckpt"
    shutil.copytree(checkpoint, directory)
    damage(directory)
    refused(capsys, ["ask", "--checkpoint", directory, "--video", world.video, "--options",
                     "open door,close door", "--device", "cpu"],
            file=directory / named if named != "ckpt" else directory, place=place)  # fmt: skip


EXPORT_INFO_FILE = "llavaction_export.json"  # what marks an earlier export (export_hf)


def test_checkpoint_in_hf_export_keeps_the_earlier_export(checkpoint, tmp_path, capsys):
    directory = tmp_path / "ckpt"
    shutil.copytree(checkpoint, directory)
    (directory / "config.json").write_text('{"model_type": "llava_qwen",')
    out = tmp_path / "hf"
    out.mkdir()
    (out / EXPORT_INFO_FILE).write_text('{"format": "llavaction-export-hf"}\n')
    (out / "config.json").write_text("{}\n")
    refused(capsys, ["export", "hf", "--checkpoint", directory, "--out", out],
            file=directory / "config.json", place=r":1: not valid JSON", keep=(out,))  # fmt: skip


def test_hf_export_refuses_a_folder_that_is_not_an_export(checkpoint, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my notes\n")
    refused(capsys, ["export", "hf", "--checkpoint", checkpoint, "--out", out], file=out,
            place=rf"not empty and holds no {EXPORT_INFO_FILE}", keep=(out,))  # fmt: skip


def test_specialist_model_folder(world, tmp_path, capsys):
    model = tmp_path / "specialist"
    model.mkdir()
    (model / "specialist.json").write_text('{"settings": {}, "num_verbs": 3')
    out = tmp_path / "pred.json"
    out.write_text('{"an": "earlier prediction file"}\n')
    refused(capsys, ["specialist", "predict", "--model", model, "--annotations",
                     world.kitchen / "annotations", "--videos", world.videos, "--out", out],
            file=model / "specialist.json", place=r":1: not valid JSON", keep=(out,))  # fmt: skip


def test_specialist_model_folder_missing_key(world, tmp_path, capsys):
    model = tmp_path / "specialist"
    model.mkdir()
    (model / "specialist.json").write_text('{"num_verbs": 3, "num_nouns": 4, "actions": []}')
    refused(capsys, ["specialist", "predict", "--model", model, "--annotations",
                     world.kitchen / "annotations", "--videos", world.videos, "--out",
                     tmp_path / "p.json"], file=model / "specialist.json", place="settings")  # fmt: skip


# ----------------------------------------------------------------------------- training configs


TRAIN_DAMAGE = [
    ("YAML syntax error", "model: {tiny: true\n", r":\d+: not valid YAML"),
    ("YAML tabs", "model:\n\ttiny: true\n", r":2: not valid YAML.*tabs"),
    ("top level a list", "- steps: 3\n", r"expected a mapping"),
    ("unknown key", "model: {tiny: true}\nstepz: 3\n", r"unknown config key 'stepz'"),
    ("wrong value type", "model: {tiny: true}\nsteps: many\n", r"steps: expected int"),
    (
        "NaN learning rate",
        "model: {tiny: true}\ndata: {mixture: m.yaml}\noptim: {lr: .nan}\n",
        r"optim\.lr",
    ),
    ("negative steps", "model: {tiny: true}\ndata: {mixture: m.yaml}\nsteps: -4\n", r"steps"),
    ("non-UTF-8 byte", b"model: {tiny: true}\n# caf\xe9\n", r":2: not UTF-8"),
]


@pytest.mark.parametrize(
    ("text", "place"), [(t, p) for _, t, p in TRAIN_DAMAGE], ids=[n for n, _, _ in TRAIN_DAMAGE]
)
def test_training_config(tmp_path, capsys, text, place):
    config = tmp_path / "train.yaml"
    config.write_bytes(text if isinstance(text, bytes) else text.encode())
    refused(capsys, ["train", "--config", config], file=config, place=place)


def test_training_config_missing(tmp_path, capsys):
    refused(capsys, ["train", "--config", tmp_path / "nope.yaml"], file="nope.yaml",
            place="not found")  # fmt: skip


# ----------------------------------------------------------------------------- SFT files


def test_sft_build_keeps_the_earlier_folder(world, tmp_path, capsys):
    kitchen = copy_kitchen(world, tmp_path)
    sft = tmp_path / "sft"
    assert cli("sft", "build", "--annotations", kitchen / "annotations", "--out", sft) == 0
    target = kitchen / "annotations" / TRAIN
    set_line(target, 6, lambda x: x.replace(b"_", b"\x81", 1))
    refused(capsys, ["sft", "build", "--annotations", kitchen / "annotations", "--out", sft],
            file=target, place=r":6: not UTF-8", keep=(sft,))  # fmt: skip


def test_sft_build_empty_split(world, tmp_path, capsys):
    kitchen = copy_kitchen(world, tmp_path)
    target = kitchen / "annotations" / TRAIN
    _header_only(target)
    sft = tmp_path / "sft"
    assert cli("sft", "build", "--annotations", world.kitchen / "annotations", "--out", sft) == 0
    refused(capsys, ["sft", "build", "--annotations", kitchen / "annotations", "--out", sft],
            file=target, place=r"no segments in", keep=(sft,))  # fmt: skip


def test_sft_build_damaged_mixture(world, tmp_path, capsys):
    sft = tmp_path / "sft"
    assert cli("sft", "build", "--annotations", world.kitchen / "annotations", "--out", sft) == 0
    (sft / "mixture.yaml").write_text("datasets:\n  - json_path: [mqa.jsonl\n")
    refused(capsys, ["sft", "build", "--annotations", world.kitchen / "annotations", "--out",
                     sft], file=sft / "mixture.yaml", place=r":\d+: not valid YAML",
            keep=(sft,))  # fmt: skip


def _mixture_train(tmp_path: Path, records: bytes, name: str = "mqa.jsonl") -> Path:
    data = tmp_path / "sft"
    data.mkdir()
    (data / name).write_bytes(records)
    (data / "mixture.yaml").write_text(f"datasets:\n  - json_path: {name}\n")
    config = tmp_path / "train.yaml"
    config.write_text(f"run_dir: {tmp_path / 'run'}\nsteps: 1\nmodel: {{tiny: true}}\n"
                      f"data: {{mixture: {data / 'mixture.yaml'}, videos: {tmp_path}}}\n")  # fmt: skip
    return data


@pytest.mark.parametrize(
    ("records", "place"),
    [
        (b'{"id": "a", "conversations": []}\n{"id": "b", "conv', r":2: last line is truncated"),
        (b'{"id": "a", "conversations": []}\n{"id": "b"}\n', r":2: record without 'conversations'"),
        (b"", r"no records"),
    ],
    ids=["truncated record", "record without conversations", "empty file"],
)
def test_sft_records_in_train(tmp_path, capsys, records, place):
    data = _mixture_train(tmp_path, records)
    refused(capsys, ["train", "--config", tmp_path / "train.yaml"], file=data / "mqa.jsonl",
            place=place)  # fmt: skip


# ----------------------------------------------------------------------------- the real entry point


@pytest.mark.parametrize(
    "argv",
    [
        ["mqa", "stats", "{questions}"],
        ["score", "{run}"],
    ],
    ids=["question file", "run folder"],
)
def test_console_script_prints_no_traceback(world, tmp_path, argv):
    questions = tmp_path / "q.jsonl"
    questions.write_bytes(world.questions.read_bytes().replace(b'"options"', b'"opt\xffions"', 1))
    run = tmp_path / "run"
    shutil.copytree(world.run, run)
    (run / "config.json").write_text("not json")
    args = [a.format(questions=questions, run=run) for a in argv]
    result = subprocess.run(
        [sys.executable, "-m", "verbnoun.cli", *args], capture_output=True, text=True,
        timeout=120, env={**os.environ, "VERBNOUN_DEBUG": ""},
    )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.startswith("verbnoun: error: ") and result.stderr.count("\n") == 1


def test_last_resort_handler_names_the_command_and_hides_the_traceback(monkeypatch, capsys):
    """A bug (here: a reader that raises KeyError) still gives one line and exit 1; the
    traceback only with VERBNOUN_DEBUG=1."""
    import verbnoun.bench.questions as questions

    def broken(path):
        raise KeyError("boom")

    monkeypatch.setattr(questions, "read_questions", broken)
    assert cli("mqa", "stats", "whatever.jsonl") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unexpected KeyError" in err and "mqa stats" in err
    assert "Traceback" not in err
    monkeypatch.setenv("VERBNOUN_DEBUG", "1")
    assert cli("mqa", "stats", "whatever.jsonl") == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and err.rstrip().splitlines()[-1].startswith("verbnoun: error:")
