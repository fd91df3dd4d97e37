"""A multi-label segment whose labels leave no distractor in the vocabulary is refused in one
line naming its table row and why its question needs that many options (it said only "too few
actions for 5 options", with --num-options 2 on the command line)."""

from __future__ import annotations

import pytest

from verbnoun.cli import main

YAML = """\
name: zoo
labels: action
segments:
  columns: {id: clip, video: vid, start: t0, stop: t1, action: acts}
  class_values: key
  multi_label: {separator: "|"}
classes:
  action: {inline: [walk, eat, sleep, groom]}
splits:
  validation: val.csv
"""


@pytest.mark.parametrize("strategy", ["random", "prior-hard", "prior-grid"])
def test_a_segment_with_every_class_names_its_row(tmp_path, capsys, strategy):
    (tmp_path / "zoo.yaml").write_text(YAML)
    table = tmp_path / "val.csv"
    table.write_text("clip,vid,t0,t1,acts\na,v,0,1,walk\nb,v,1,2,eat|sleep\n"
                     "c,v,2,3,walk|eat|sleep|groom\n")  # fmt: skip
    out = tmp_path / "q.jsonl"
    code = main(["mqa", "build", "--dataset", str(tmp_path / "zoo.yaml"), "--split", "validation",
                 "--num-options", "2", "--distractors", strategy, "--out", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0 and len(lines) == 1 and "Traceback" not in err, err
    assert f"{table}:4: segment c has 4 labels, so its question needs 5 options" in lines[0]
    assert not out.exists()
