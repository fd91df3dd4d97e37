"""The "Your own data set" guide's examples (docs/guides/your-own-dataset.md), run as written on a
small synthetic kitchen."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

GUIDES = Path(__file__).resolve().parents[1] / "docs" / "guides"


def _guide() -> str:
    return (GUIDES / "your-own-dataset.md").read_text(encoding="utf-8")


def _blocks(section: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", section, re.S)


@pytest.fixture(scope="module")
def kitchen(tmp_path_factory) -> Path:
    from verbnoun.data.synth import render_kitchen

    root = tmp_path_factory.mktemp("readme") / "kitchen"
    render_kitchen(root, videos=6, seed=0, workers=1)
    return root


@pytest.mark.slow
def test_the_documented_kitchen_description_is_what_synth_writes(kitchen):
    documented = yaml.safe_load(_blocks(_guide(), "yaml")[0])
    written = yaml.safe_load((kitchen / "dataset.yaml").read_text())
    assert documented == written


def test_single_label_example_runs_as_written(kitchen, monkeypatch):
    from verbnoun.cli import main

    section = _guide()
    description = _blocks(section, "yaml")[1]
    (kitchen / "verbs-only.yaml").write_text(description)
    monkeypatch.chdir(kitchen.parent)
    commands = [line for line in _blocks(section, "bash")[-1].splitlines() if line.strip()]
    assert len(commands) == 5
    for line in commands:
        argv = shlex.split(line)
        assert argv[0] == "verbnoun"
        assert main(argv[1:]) == 0, line
    first = (kitchen.parent / "mqa" / "verbs.jsonl").read_text().splitlines()[0]
    question = yaml.safe_load(first)  # JSON is YAML
    assert question["verb_class"] is None and question["noun_class"] is None
    assert len(question["options"]) == 4
    assert (kitchen.parent / "runs" / "verbs-prior" / "metrics.json").is_file()
    assert list((kitchen.parent / "sft-verbs").glob("*.jsonl"))


def test_eval_reads_the_videos_from_the_description(kitchen, tmp_path):
    import numpy as np

    from verbnoun.bench.build import BuildSettings, build_benchmark
    from verbnoun.bench.questions import read_questions
    from verbnoun.errors import VerbnounError
    from verbnoun.evaluate.frames import frames_for, make_frame_source

    build_benchmark(kitchen / "dataset.yaml", tmp_path / "q.jsonl", BuildSettings())
    question = read_questions(tmp_path / "q.jsonl")[-1]
    described = frames_for("openai", None, "ek100", 4, 24, dataset=kitchen / "dataset.yaml")
    explicit = make_frame_source(kitchen / "videos", "chunks", 4, 24)
    assert np.array_equal(described(question), explicit(question))
    same = frames_for("openai", None, "ek100", 4, 24, annotations=kitchen / "dataset.yaml")
    assert np.array_equal(same(question), explicit(question))
    # a description without a videos: section, and no --videos: the error says what to give
    text = (kitchen / "dataset.yaml").read_text().split("\nvideos:")[0] + "\n"
    (kitchen / "no-videos.yaml").write_text(text)
    with pytest.raises(VerbnounError, match="needs frames: give --videos"):
        frames_for("openai", None, "chunks", 4, None, dataset=kitchen / "no-videos.yaml")
