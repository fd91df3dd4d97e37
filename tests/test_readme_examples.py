"""The README's "Your own data set" examples, run as written on a small synthetic kitchen."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

README = Path(__file__).resolve().parents[1] / "README.md"


def _section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    return text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def _blocks(section: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", section, re.S)


@pytest.fixture(scope="module")
def kitchen(tmp_path_factory) -> Path:
    from llavaction.data.synth import render_kitchen

    root = tmp_path_factory.mktemp("readme") / "kitchen"
    render_kitchen(root, videos=6, seed=0, workers=1)
    return root


def test_the_documented_kitchen_description_is_what_synth_writes(kitchen):
    documented = yaml.safe_load(_blocks(_section("Your own data set"), "yaml")[0])
    written = yaml.safe_load((kitchen / "dataset.yaml").read_text())
    assert documented == written


def test_single_label_example_runs_as_written(kitchen, monkeypatch):
    from llavaction.cli import main

    section = _section("Your own data set")
    description = _blocks(section, "yaml")[1]
    (kitchen / "verbs-only.yaml").write_text(description)
    monkeypatch.chdir(kitchen.parent)
    commands = [line for line in _blocks(section, "bash")[-1].splitlines() if line.strip()]
    assert len(commands) == 5
    for line in commands:
        argv = shlex.split(line)
        assert argv[0] == "llavaction"
        assert main(argv[1:]) == 0, line
    first = (kitchen.parent / "mqa" / "verbs.jsonl").read_text().splitlines()[0]
    question = yaml.safe_load(first)  # JSON is YAML
    assert question["verb_class"] is None and question["noun_class"] is None
    assert len(question["options"]) == 4
    assert (kitchen.parent / "runs" / "verbs-prior" / "metrics.json").is_file()
    assert list((kitchen.parent / "sft-verbs").glob("*.jsonl"))
