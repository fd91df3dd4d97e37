"""Damaged annotation CSVs, class CSVs and data set descriptions (see conftest.py)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from damagetools import (
    NOUNS,
    TAIL_VERBS,
    TRAIN,
    VALIDATION,
    VERBS,
    cli,
    copy_kitchen,
    dangling_symlink,
    drop_column,
    duplicate_id,
    finished_benchmark,
    header_only,
    refused,
    replace_with_folder,
    set_field,
    set_line,
    swap_times,
    truncate_mid_line,
)

SEGMENT_DAMAGE = [
    ("empty file", lambda p: p.write_bytes(b""), r":1: empty file"),
    ("header only", header_only, r"no segments in .*EPIC_100_validation\.csv"),
    ("truncated mid-line", truncate_mid_line, r":21: expected 15 fields"),
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
        drop_column("start_timestamp"),
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
    ("stop before start", swap_times, r":6: field 'stop_timestamp'"),
    ("duplicate narration id", duplicate_id, r":9: field 'narration_id'.*duplicate"),
    (
        "unknown class id",
        lambda p: set_field(p, 10, "verb_class", "999"),
        r":10: field 'verb_class': unknown verb class id 999 \(0\.\.\d+ in .*verb_classes\.csv\)",
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
    ("folder instead of file", replace_with_folder, r"is a folder"),
    ("dangling symlink", dangling_symlink, r"file not found"),
]


@pytest.mark.parametrize(
    ("damage", "place"), [(d, p) for _, d, p in SEGMENT_DAMAGE],
    ids=[name for name, _, _ in SEGMENT_DAMAGE],
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


def test_annotation_folder_that_is_a_file(world, tmp_path, capsys):
    folder = tmp_path / "annotations"
    folder.write_text("not a folder\n")
    out, manifest = finished_benchmark(world, tmp_path)
    refused(capsys, ["mqa", "build", "--annotations", folder, "--out", out], file=folder,
            place=None, keep=(out, manifest))  # fmt: skip


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
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
    ("header only", header_only, r": no classes"),
    (
        "ids not in order",
        lambda p: set_field(p, 4, "id", "7"),
        r":4: field 'id': class ids must run",
    ),
    ("duplicate key", lambda p: set_field(p, 5, "key", "take"), r":5: field 'key': duplicate"),
    ("non-numeric id", lambda p: set_field(p, 3, "id", "one"), r":3: field 'id'"),
    ("missing column", drop_column("key"), r":1: missing required column.*key"),
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


def test_tail_class_id_not_a_class_in_score(world, tmp_path, capsys):
    kitchen = copy_kitchen(world, tmp_path)
    target = kitchen / "annotations" / TAIL_VERBS
    target.write_bytes(target.read_bytes().rstrip(b"\n") + b"\n1x\n")
    line = len(target.read_bytes().splitlines())
    refused(capsys, ["score", world.run, "--annotations", kitchen / "annotations"],
            file=target, place=rf":{line}: field 'verb': not a verb class id", keep=(world.run,))  # fmt: skip


def test_tail_class_csv_in_score(world, tmp_path, capsys):
    kitchen = copy_kitchen(world, tmp_path)
    target = kitchen / "annotations" / TAIL_VERBS
    target.write_bytes(b"verb_id;x\n1;2\n")
    refused(capsys, ["score", world.run, "--annotations", kitchen / "annotations"],
            file=target, place=r":1: missing required column", keep=(world.run,))  # fmt: skip


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
    (
        "duplicate key",
        _yaml(lambda t: t + "name: again\n"),
        r":\d+: not valid YAML: duplicate key 'name'",
    ),
    ("empty file", lambda p: p.write_bytes(b""), r"expected a mapping"),
    (
        "non-UTF-8 byte",
        lambda p: p.write_bytes(p.read_bytes().replace(b"name:", b"n\xe9me:")),
        r":\d+: not UTF-8",
    ),
    ("folder instead of file", replace_with_folder, r"is a folder"),
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
