"""``verbnoun ask`` end to end on a tiny released-layout checkpoint and a tiny video."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from verbnoun.cli import main
from verbnoun.model.checkpoint import write_tiny_released_checkpoint
from verbnoun.model.config import tiny_config


def write_video(path: Path, seconds: float = 2.0, fps: int = 10) -> Path:
    from verbnoun.data.synth import write_video as write_frames

    frames = int(seconds * fps)
    grey = (np.full((64, 64, 3), (i * 12) % 256, dtype=np.uint8) for i in range(frames))
    return write_frames(path, grey, fps)


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_tokenizer):
    root = tmp_path_factory.mktemp("ask")
    checkpoint = root / "ckpt"
    config = tiny_config(vocab_size=len(tiny_tokenizer))
    write_tiny_released_checkpoint(checkpoint, config, tokenizer=tiny_tokenizer)
    return checkpoint, write_video(root / "clip.mp4")


def test_ask_multiple_choice_prints_the_choice_and_scores(setup, capsys):
    checkpoint, video = setup
    args = ["ask", "--checkpoint", str(checkpoint), "--video", str(video), "--frames", "4"]
    code = main(
        [*args, "--start", "0.5", "--stop", "1.5", "--options", "open door,close door,take knife"]
    )
    assert code in (0, None)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0][:3] in ("A. ", "B. ", "C. ")
    assert [line.split("\t")[0].strip() for line in lines[1:]] == [
        "A. open door",
        "B. close door",
        "C. take knife",
    ]
    scores = [float(line.split("\t")[1]) for line in lines[1:]]
    assert all(s <= 0 for s in scores)  # log-probabilities
    assert lines[0] == lines[1 + int(np.argmax(scores))].split("\t")[0].strip()


@pytest.mark.slow
def test_ask_free_question_prints_an_answer(setup, capsys):
    checkpoint, video = setup
    code = main(
        [
            "ask",
            "--checkpoint",
            str(checkpoint),
            "--video",
            str(video),
            "--frames",
            "2",
            "--max-new-tokens",
            "3",
            "What am I doing?",
        ]
    )
    assert code in (0, None)
    assert capsys.readouterr().out.endswith("\n")


def test_ask_reports_a_missing_checkpoint_on_one_line(setup, tmp_path, capsys):
    _, video = setup
    code = main(["ask", "--checkpoint", str(tmp_path), "--video", str(video), "question"])
    assert code == 1
    err = capsys.readouterr().err.strip()
    assert "no config.json" in err and "\n" not in err
