"""`eval --model llavaction`: a tiny local checkpoint answers synthetic-kitchen questions."""

from __future__ import annotations

import json

import pytest

from verbnoun.bench import prompts
from verbnoun.bench.build import BuildSettings, build_benchmark
from verbnoun.cli import main


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    import torch

    from verbnoun.data.synth import render_kitchen
    from verbnoun.model.checkpoint import write_tiny_released_checkpoint
    from verbnoun.model.config import tiny_config
    from verbnoun.model.tokenization import train_tiny_tokenizer

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("local")
    render_kitchen(root / "kitchen", videos=3, seed=0, workers=1)
    questions = root / "q.jsonl"
    build_benchmark(root / "kitchen" / "annotations", questions, BuildSettings(split="train"))
    corpus = [prompts.MQA, prompts.TIME_INSTRUCTION, "A. B. C. D. E. take put red bowl"] * 3
    tokenizer = train_tiny_tokenizer(corpus, vocab_size=400)
    checkpoint = root / "checkpoint"
    write_tiny_released_checkpoint(
        checkpoint, tiny_config(vocab_size=len(tokenizer)), tokenizer=tokenizer
    )
    return root, questions, checkpoint


@pytest.mark.slow
@pytest.mark.parametrize("scoring", ["letters", "generate"])
def test_eval_with_a_local_checkpoint(setup, scoring, capsys):
    root, questions, checkpoint = setup
    run = root / f"run-{scoring}"
    args = ["eval", "--questions", str(questions), "--model", "llavaction", "--checkpoint", str(checkpoint),
            "--scoring", scoring, "--videos", str(root / "kitchen" / "videos"), "--frames", "4",
            "--batch-size", "4", "--out", str(run), "--no-progress"]  # fmt: skip
    assert main(args) == 0, capsys.readouterr().err
    records = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    n = sum(1 for _ in questions.open())
    assert len(records) == n
    config = json.loads((run / "config.json").read_text())
    assert (
        config["model_settings"]["mode"] == scoring
        and config["model_settings"]["dtype"] == "float32"
    )
    if scoring == "letters":  # one score per option, and the choice is the best one
        for record in records:
            assert record["raw"] in "ABCDE" and len(record["scores"]) == 5
            assert record["choice"] == max(range(5), key=record["scores"].__getitem__)
    else:  # an untrained model's free text is mostly unparsed, and counted as such
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["overall"]["unparsed"] == sum(r["choice"] is None for r in records)
    assert main(args) == 0  # resuming: nothing to do
    assert len((run / "predictions.jsonl").read_text().splitlines()) == n


def test_missing_checkpoint_is_a_clear_error(setup, capsys):
    root, questions, _ = setup
    args = ["eval", "--questions", str(questions), "--model", "llavaction", "--checkpoint", str(root / "nope"),
            "--videos", str(root), "--out", str(root / "x")]  # fmt: skip
    assert main(args) == 1
    assert "checkpoint directory not found" in capsys.readouterr().err


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_missing_video_stops_the_run_with_its_name(setup, tmp_path, workers, capsys):
    import shutil

    root, questions, checkpoint = setup
    videos = tmp_path / "videos"
    shutil.copytree(root / "kitchen" / "videos", videos)
    first = json.loads(questions.open().readline())
    victim = next(videos.rglob(f"{first['video_id']}.MP4"))
    shutil.rmtree(victim)
    args = ["eval", "--questions", str(questions), "--model", "llavaction", "--checkpoint", str(checkpoint),
            "--videos", str(videos), "--frames", "4", "--workers", workers, "--out", str(tmp_path / "run"),
            "--no-progress"]  # fmt: skip
    assert main(args) == 1
    err = capsys.readouterr().err
    assert first["video_id"] in err and "not found" in err
