"""The "Several labels per segment" guide (docs/guides/several-labels.md), run as written: its
description fragment is a valid ``segments`` section, and its overlapping-kitchen commands run
from ``synth --overlap`` to ``score`` with multi-select questions in between."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guides" / "several-labels.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S)


def test_the_documented_fragment_is_a_valid_description(tmp_path):
    from verbnoun.data.dataset import open_dataset

    fragment = yaml.safe_load(blocks("yaml")[0])
    fragment |= {"classes": {"action": {"inline": ["walk", "eat", "groom"]}},
                 "splits": {"validation": "clips.csv"}}  # fmt: skip
    (tmp_path / "set.yaml").write_text(yaml.safe_dump(fragment))
    (tmp_path / "clips.csv").write_text('clip,start,stop,behaviours\nc1,0,2,"1,0"\nc2,1,3,2\n')
    dataset = open_dataset(tmp_path / "set.yaml")
    assert [s.action_ids for s in dataset.segments("validation")] == [("1", "0"), ("2",)]


@pytest.mark.slow
def test_the_overlapping_kitchen_commands_run_as_written(tmp_path, monkeypatch):
    from verbnoun.cli import main

    monkeypatch.chdir(tmp_path)
    commands = [line for line in blocks("bash")[-1].splitlines() if line.strip()]
    assert len(commands) == 4
    for line in commands:
        argv = shlex.split(line)
        assert argv[0] == "verbnoun"
        assert main(argv[1:]) == 0, line
    records = [json.loads(x) for x in (tmp_path / "mqa" / "overlap.jsonl").read_text().splitlines()]
    assert records and all("answer_indices" in r for r in records)
    assert any(len(r["action_ids"]) == 2 for r in records)
    assert (tmp_path / "runs" / "overlap-random" / "metrics.json").is_file()
