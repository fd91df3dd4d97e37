"""A data set whose test split carries labels (MECCANO's ``MECCANO_test_actions.csv``, the
EPFL-Smart-Kitchen-30 description's ``Annotations/test.csv``) builds questions and SFT records
from it, as the shipped descriptions tell a person to run them; a split without label columns
(EK100's test timestamps) is refused in one line naming its file."""

from __future__ import annotations

import json
from pathlib import Path

from verbnoun.cli import main

ROOT = Path(__file__).resolve().parents[2]
NAMES = {0: "take_screwdriver", 1: "put_screwdriver", 2: "screw_screw", 3: "take_bolt"}


def _meccano(folder: Path) -> None:
    """The three MECCANO tables (header, frames named by image file), four actions each."""
    for split in ("train", "val", "test"):
        lines = ["video_id,action_id,action_name,start_frame,end_frame"]
        for i, action in enumerate((3, 1, 0, 2)):
            start = 30 * i + 5
            lines.append(f"0008,{action},{NAMES[action]},{start:05d}.jpg,{start + 20:05d}.jpg")
        (folder / f"MECCANO_{split}_actions.csv").write_text("\n".join(lines) + "\n")


def _one_error(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_a_labelled_test_split_builds_questions_and_sft(tmp_path, capsys):
    _meccano(tmp_path)
    out = tmp_path / "test.jsonl"
    args = ["--dataset", str(ROOT / "configs/datasets/meccano.yaml"),
            "--annotations", str(tmp_path), "--split", "test"]  # fmt: skip
    assert main(["mqa", "build", *args, "--num-options", "3", "--out", str(out)]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["action_id"] for r in records] == ["3", "1", "0", "2"]
    assert all(r["options"][r["answer_index"]]["action_id"] == r["action_id"] for r in records)
    assert records[0]["start"] == 5 / 12 and records[0]["stop"] == 25 / 12  # frames at 12 fps
    sft = tmp_path / "sft"
    assert (
        main(["sft", "build", *args, "--tasks", "mqa", "--num-options", "3", "--out", str(sft)])
        == 0
    )
    assert len((sft / "mqa.jsonl").read_text().splitlines()) == 4


def test_a_split_without_labels_is_refused_naming_its_file(tmp_path, capsys):
    _meccano(tmp_path)
    table = tmp_path / "MECCANO_test_actions.csv"
    table.write_text("video_id,start_frame,end_frame\n0008,00005.jpg,00025.jpg\n")
    args = ["--dataset", str(ROOT / "configs/datasets/meccano.yaml"),
            "--annotations", str(tmp_path), "--split", "test"]  # fmt: skip
    assert main(["mqa", "build", *args, "--out", str(tmp_path / "q.jsonl")]) != 0
    line = _one_error(capsys)
    assert f"{table}:1: labels required but missing column(s): action_id" in line
    assert main(["sft", "build", *args, "--tasks", "mqa", "--out", str(tmp_path / "s")]) != 0
    assert f"{table}:1: labels required" in _one_error(capsys)
    assert not (tmp_path / "q.jsonl").exists() and not (tmp_path / "s").exists()
