"""The multi-label guide's commands (docs/concepts/multi-label.md), run as written, and the
figures it quotes."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from verbnoun.cli import main

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "concepts" / "multi-label.md"
BASE = Path(__file__).resolve().parents[2] / "src" / "verbnoun" / "assets" / "kitchen_base"


def _commands(block: str) -> list[list[str]]:
    joined = block.replace("\\\n", " ")
    lines = [line.split("#")[0].strip() for line in joined.splitlines()]
    return [shlex.split(line)[1:] for line in lines if line.startswith("verbnoun ")]


@pytest.mark.slow
def test_the_guide_runs_as_written(tmp_path, monkeypatch, capsys):
    text = GUIDE.read_text(encoding="utf-8")
    first, second = re.findall(r"```bash\n(.*?)```", text, re.S)[:2]
    monkeypatch.chdir(tmp_path)
    for args in _commands(first):
        assert main([*args, *(["--no-progress"] if args[0] == "eval" else [])]) == 0, args
    out = capsys.readouterr().out
    quoted = re.search(r"prints `(runs/random: Jaccard.*?)`", text.replace("\n", " ")).group(1)
    assert quoted in out
    # the checkpoint example, with the shipped kitchen base as CKPT (on the CPU)
    (args,) = _commands(second)
    args = [str(BASE) if a == "CKPT" else a for a in args]
    assert main([*args, "--device", "cpu", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    documented = re.search(r"Jaccard accuracy ([\d.]+)%.*?mAP ([\d.]+)%", text[text.index(
        "shipped kitchen base"):], re.S)  # fmt: skip
    measured = re.search(r"Jaccard accuracy ([\d.]+)%.*?mAP ([\d.]+)%", printed)
    for doc, got in zip(documented.groups(), measured.groups(), strict=True):
        assert float(got) == pytest.approx(float(doc), abs=1.0)
