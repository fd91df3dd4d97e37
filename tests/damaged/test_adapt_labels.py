"""Damaged labels files of ``annotate adapt`` and damaged adapted model folders of ``annotate
--adapted`` (see conftest.py): one line naming the file and row, and a finished model folder at
``--out`` left as it was."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from damagetools import cli, refused, write_clip

GOOD = "video,behaviour,start,stop\nclip,groom,0,0.8\nclip,rear,0.8,1.6\n"


def _rows(*extra: str, header: str = "video,behaviour,start,stop", keep: int = 2) -> str:
    rows = GOOD.splitlines()[1 : 1 + keep]
    return "\n".join([header, *rows, *extra]) + "\n"


LABEL_DAMAGE = [
    ("empty file", "", r":1: empty file"),
    ("header only", "video,behaviour,start,stop\n", r":1: no labelled intervals"),
    ("missing column", "video,behaviour,start\nclip,groom,0\n", r":1: missing column\(s\) stop"),
    ("semicolons", GOOD.replace(",", ";"), r":1: one column .*: is the file comma-separated\?"),
    ("unknown video", _rows("nosuch,walk,0,1"), r":4: field 'video': video 'nosuch' is not"),
    (
        "reversed interval",
        _rows("clip,walk,1.9,1.7"),
        r":4: field 'stop': stop 1\.7 s is not after",
    ),
    ("empty interval", _rows("clip,walk,1,1"), r":4: field 'stop': stop 1 s is not after"),
    ("overlapping intervals", _rows("clip,walk,0.5,1.0"), r":4: overlaps the interval of line 2"),
    ("single frame", _rows("clip,sniff,1.6,1.7"), r":4: behaviour 'sniff' has a single frame"),
    ("no frame", _rows("clip,sniff,1.61,1.64"), r":4: 1\.61-1\.64 s covers no frame"),
    ("after the end", _rows("clip,walk,1.6,9"), r":4: field 'stop': stop 9 s is after the video"),
    ("not a time", _rows("clip,walk,abc,1.9"), r":4: field 'start': not a time"),
    ("negative start", _rows("clip,walk,-1,0"), r":4: field 'start': start must be"),
    ("no behaviour", _rows("clip,,1.6,1.9"), r":4: field 'behaviour': no behaviour"),
    ("one behaviour only", _rows(keep=1), r"only one class \('groom'\)"),
]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, Path]:
    """A clip (2 s at 10 fps) and a finished adapted model folder of it."""
    root = tmp_path_factory.mktemp("adapt")
    clip = write_clip(root / "clip.mp4")
    labels = root / "good.csv"
    labels.write_text(GOOD, encoding="utf-8")
    model = root / "model"
    assert cli("annotate", "adapt", "--videos", clip, "--labels", labels, "--out", model,
               "--trees", 10) == 0  # fmt: skip
    return clip, model


@pytest.mark.parametrize(("name", "text", "place"), LABEL_DAMAGE, ids=[d[0] for d in LABEL_DAMAGE])
def test_damaged_labels(finished, tmp_path, capsys, name, text, place):
    clip, model = finished
    out = tmp_path / "model"
    shutil.copytree(model, out)
    labels = tmp_path / "scored.csv"
    labels.write_text(text, encoding="utf-8")
    refused(capsys, ["annotate", "adapt", "--videos", clip, "--labels", labels, "--out", out],
            file=labels, place=place, keep=(out,))  # fmt: skip


def test_overlap_across_files_names_the_later_file(finished, tmp_path, capsys):
    clip, _ = finished
    first, second = tmp_path / "scored.csv", tmp_path / "label_next.csv"
    first.write_text(GOOD, encoding="utf-8")
    second.write_text("video,start,stop,predicted,confidence,behaviour\n"
                      "clip,1.0,1.2,rear,0.4,\nclip,1.2,1.8,rear,0.5,walk\n")  # fmt: skip
    refused(capsys, ["annotate", "adapt", "--videos", clip, "--labels", first, "--labels", second,
                     "--out", tmp_path / "m"], file=second,
            place=r":3: overlaps the interval of .*scored\.csv:3")  # fmt: skip


MODEL_DAMAGE = [
    ("weights cut short", "model.safetensors",
     lambda m: (m / "model.safetensors").write_bytes((m / "model.safetensors").read_bytes()[:99]),
     r"cannot load the model"),
    ("weights missing", "model.safetensors", lambda m: (m / "model.safetensors").unlink(),
     r"cannot load the model"),
    ("not an adapted model", "adapted.json",
     lambda m: (m / "adapted.json").write_text(json.dumps({"kind": "llavaction.specialist"})),
     r"not an adapted model"),
    ("config not JSON", "adapted.json", lambda m: (m / "adapted.json").write_text("{kind"),
     r":1: not valid JSON"),
    ("config without classes", "adapted.json",
     lambda m: (m / "adapted.json").write_text(json.dumps({
         **json.loads((m / "adapted.json").read_text()), "classes": None})),
     r"\[classes\]: expected"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "file", "damage", "place"), MODEL_DAMAGE,
                         ids=[d[0] for d in MODEL_DAMAGE])  # fmt: skip
def test_damaged_adapted_model(finished, tmp_path, capsys, name, file, damage, place):
    clip, model = finished
    copy = tmp_path / "model"
    shutil.copytree(model, copy)
    damage(copy)
    refused(capsys, ["annotate", "--video", clip, "--adapted", copy, "--out", tmp_path / "run"],
            file=copy / file, place=place)  # fmt: skip


def test_scored_stretches_of_an_unknown_video(finished, tmp_path, capsys):
    clip, _ = finished
    labels, scored = tmp_path / "labels.csv", tmp_path / "scored.csv"
    labels.write_text(GOOD, encoding="utf-8")
    scored.write_text("video_id,start,stop\nclip,0,1.6\nnosuch,0,1\n", encoding="utf-8")
    refused(capsys, ["annotate", "adapt", "--videos", clip, "--labels", labels, "--scored", scored,
                     "--out", tmp_path / "m"], file=scored,
            place=r"scored\.csv:3: video 'nosuch' is not among")  # fmt: skip
