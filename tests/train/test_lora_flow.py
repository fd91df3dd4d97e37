"""The LoRA guide's flow (docs/guides/lora.md, its synthetic-kitchen section), run as written
through the CLI: a data set -> held-out questions -> the specialist -> SFT data with its hard
distractors -> evaluation of the base -> LoRA training -> merge -> evaluation of the merged
model -> score -> ``export hf``. Then the targets: the loss falls over the 20 steps, and the
unmerged adapter and the merged model give the same letter on every held-out question, with
logits within 1e-3 (fp32); the merged folder loads where a release does (``ask``, the lmms-eval
plugin when lmms-eval is installed)."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
from pathlib import Path

import pytest
import torch

from verbnoun.cli import main

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guides" / "lora.md"
KITCHEN_BASE = Path(__file__).resolve().parents[2] / "src" / "verbnoun" / "assets" / "kitchen_base"
SECTION = "## The same flow on the synthetic kitchen"


def _section() -> str:
    text = GUIDE.read_text(encoding="utf-8")
    return text[text.index(SECTION) :]


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", _section(), re.S)


def write_base(directory: Path) -> None:
    """A tiny checkpoint in the released layout: one_token newlines (``export hf`` takes them),
    heads for the kitchen's classes, free vocabulary rows for the export's added tokens."""
    from verbnoun.model.checkpoint import write_tiny_released_checkpoint
    from verbnoun.model.config import tiny_config
    from verbnoun.model.tokenization import load_tokenizer

    tokenizer = load_tokenizer(KITCHEN_BASE)
    config = tiny_config(
        vocab_size=len(tokenizer) + 16, newline_position="one_token", action_types=(12, 15, 180)
    )
    write_tiny_released_checkpoint(directory, config, tokenizer=tokenizer, dtype=torch.float32)


def answers(run: Path) -> dict[str, dict]:
    """Question id -> the letter answered and the option letters' log-probabilities."""
    rows = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    return {row["id"]: {"letter": row["raw"], "scores": row["scores"]} for row in rows}


@pytest.mark.slow
def test_the_documented_lora_flow_runs_as_written(tmp_path, monkeypatch, capsys):
    torch.set_num_threads(1)
    monkeypatch.chdir(tmp_path)
    write_base(tmp_path / "base")
    (tmp_path / "lora.yaml").write_text(_blocks("yaml")[0], encoding="utf-8")
    commands = [line for line in _blocks("bash")[0].splitlines() if line.strip()]
    assert len(commands) == 10
    for line in commands:
        argv = shlex.split(line)
        assert argv[0] == "verbnoun"
        assert main(argv[1:]) == 0, (line, capsys.readouterr().err[-2000:])

    # the loss falls over the 20 steps
    rows = [json.loads(x) for x in Path("runs/lora/metrics.jsonl").read_text().splitlines()]
    loss = [row["loss"] for row in rows if "loss" in row]
    assert len(loss) == 20
    assert sum(loss[-5:]) / 5 < sum(loss[:5]) / 5

    # the unmerged adapter (the run's own evaluation) and the merged model: the same letters
    unmerged_answers = answers(Path("runs/lora/eval/step-000020"))
    merged_answers = answers(Path("runs/after"))
    questions = Path("mqa/held-out.jsonl").read_text().splitlines()
    assert len(unmerged_answers) == len(questions) > 10
    assert merged_answers.keys() == unmerged_answers.keys()
    for key, answer in merged_answers.items():
        assert answer["letter"] == unmerged_answers[key]["letter"], key
        assert answer["scores"] == pytest.approx(unmerged_answers[key]["scores"], abs=1e-3)
    assert json.loads(Path("runs/before/metrics.json").read_text())["overall"]
    assert (tmp_path / "merged-hf" / "config.json").is_file()

    # ... and their logits on every question within 1e-3 (fp32)
    from verbnoun.bench.questions import read_questions
    from verbnoun.evaluate.frames import make_frame_source
    from verbnoun.model.checkpoint import load_pretrained
    from verbnoun.train.lora import load_adapted

    merged, processor = load_pretrained("merged", device="cpu", dtype=torch.float32)
    unmerged = load_adapted("base", "runs/lora")
    frames = make_frame_source("kitchen/videos", "chunks", 4, 32)
    worst = 0.0
    with torch.no_grad():
        for question in read_questions("mqa/held-out.jsonl"):
            ids = torch.tensor(processor.tokenize(question.prompt(4)), dtype=torch.long)
            pixels = processor.pixel_values(frames(question))
            a = merged([ids], [pixels], logits_to_keep=1).logits
            b = unmerged([ids], [pixels], logits_to_keep=1).logits
            worst = max(worst, float((a - b).abs().max()))
    assert worst <= 1e-3

    # ask loads the merged folder as it loads a release
    clip = sorted(Path("kitchen/videos").rglob("*.MP4"))
    clip = next(p for p in clip if p.is_file())
    capsys.readouterr()
    argv = ["ask", "--checkpoint", "merged", "--video", str(clip), "--frames", "4",
            "--options", "open door,close door"]  # fmt: skip
    assert main(argv) == 0
    assert capsys.readouterr().out.split(".")[0] in ("A", "B")

    # the lmms-eval plugin loads it as `eval --model llavaction` does
    if importlib.util.find_spec("lmms_eval") is not None:
        from verbnoun.integrations.lmms_eval.models.llavaction import Llavaction

        plugin = Llavaction(checkpoint=str(tmp_path / "merged"), frames=4, scoring="letters")
        weight = "model.layers.0.self_attn.q_proj.weight"
        assert torch.equal(plugin.model.state_dict()[weight], merged.state_dict()[weight])
