"""Frame controls of the demo: runs with frames from another clip or blank frames really show
the model other clips' pixels or grey ones, are recorded as such, and never mix with plain runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from verbnoun.bench.build import BuildSettings, build_benchmark
from verbnoun.bench.questions import read_questions
from verbnoun.errors import VerbnounError
from verbnoun.evaluate.adapters import Reply
from verbnoun.evaluate.frames import BLANK_LEVEL, make_frame_source, other_clip_donors
from verbnoun.evaluate.runner import EvalSettings, run_evaluation


class FrameSpy:
    """An adapter that answers A and keeps the pixels it was given, by question id."""

    name = "spy"
    needs_frames = True

    def __init__(self) -> None:
        self.seen: dict[str, np.ndarray] = {}

    def settings(self) -> dict:
        return {}

    def answer(self, requests):
        for request in requests:
            self.seen[request.question.id] = np.array(request.frames)
        return [Reply("A") for _ in requests]


@pytest.fixture(scope="module")
def kitchen(tmp_path_factory):
    from verbnoun.data.synth import render_kitchen

    root = tmp_path_factory.mktemp("controls")
    render_kitchen(root / "kitchen", videos=3, seed=0, workers=1)
    questions = root / "q.jsonl"
    build_benchmark(root / "kitchen" / "annotations", questions, BuildSettings(split="train"))
    return root, questions


def _run(root, questions, control: str, workers: int = 0) -> tuple[FrameSpy, dict]:
    spy = FrameSpy()
    source = make_frame_source(root / "kitchen" / "videos", "chunks", 2, 32)
    run = root / f"run-{control}-{workers}"
    settings = EvalSettings(frames=2, size=32, frames_control=control)
    run_evaluation(questions, spy, run, settings, frame_source=source, progress=False,
                   workers=workers, batch_size=4)  # fmt: skip
    return spy, json.loads((run / "config.json").read_text())


@pytest.mark.slow
def test_controls_show_other_clips_and_blank_frames(kitchen):
    root, path = kitchen
    questions = read_questions(path)
    plain, plain_config = _run(root, path, "none")
    other, other_config = _run(root, path, "other-clip")
    other_workers, _ = _run(root, path, "other-clip", workers=1)  # decoded by a DataLoader
    blank, blank_config = _run(root, path, "blank")
    ids = [q.id for q in questions]
    assert set(plain.seen) == set(other.seen) == set(blank.seen) == set(ids)
    # the plain config has no control recorded (older runs resume); the controls have theirs
    assert "frames_control" not in plain_config
    assert other_config["frames_control"] == "other-clip"
    assert blank_config["frames_control"] == "blank"
    donors = other_clip_donors(questions)
    by_id = {q.id: q for q in questions}
    assert sorted(d.id for d in donors.values()) == sorted(ids)  # a permutation...
    assert all(donors[i].id != i for i in ids)  # ...that moves every question
    # every question shown a clip of another action (no action holds half of this file)
    assert all(donors[i].action_id != by_id[i].action_id for i in ids)
    for i in ids:
        # the pixels received are the donor's own frames, never the question's
        assert np.array_equal(other.seen[i], plain.seen[donors[i].id])
        assert np.array_equal(other_workers.seen[i], plain.seen[donors[i].id])
        assert not np.array_equal(other.seen[i], plain.seen[i])
        # blank: grey of the real frames' shape
        assert blank.seen[i].shape == plain.seen[i].shape == (2, 32, 32, 3)
        assert blank.seen[i].dtype == np.uint8 and (blank.seen[i] == BLANK_LEVEL).all()
    # the same derangement on every call (a resumed run shows the same clips)
    assert {k: v.id for k, v in other_clip_donors(questions[::-1]).items()} == {
        k: v.id for k, v in donors.items()
    }
    # a control run refuses to resume into a plain run's folder
    with pytest.raises(VerbnounError, match="frames_control"):
        run_evaluation(path, FrameSpy(), root / "run-none-0",
                       EvalSettings(frames=2, size=32, frames_control="blank"),
                       frame_source=make_frame_source(root / "kitchen" / "videos", "chunks", 2, 32),
                       progress=False, workers=0)  # fmt: skip
    with pytest.raises(VerbnounError, match="unknown frames control"):
        EvalSettings(frames_control="shuffled").check()


@pytest.mark.slow
def test_eval_command_frames_control(kitchen, monkeypatch, capsys):
    """``verbnoun eval --frames-control``: the local model's adapter receives the controls'
    pixels (a spy on its ``answer`` records them and answers as usual)."""
    import torch

    from verbnoun.bench import prompts
    from verbnoun.cli import main
    from verbnoun.evaluate.local_adapter import LlavactionAdapter
    from verbnoun.model.checkpoint import write_tiny_released_checkpoint
    from verbnoun.model.config import tiny_config
    from verbnoun.model.tokenization import train_tiny_tokenizer

    torch.set_num_threads(1)
    root, path = kitchen
    corpus = [prompts.MQA, prompts.TIME_INSTRUCTION, "A. B. C. D. E. take put red bowl"] * 3
    tokenizer = train_tiny_tokenizer(corpus, vocab_size=400)
    checkpoint = root / "checkpoint"
    write_tiny_released_checkpoint(
        checkpoint, tiny_config(vocab_size=len(tokenizer)), tokenizer=tokenizer
    )
    seen: dict[str, dict[str, np.ndarray]] = {}
    answer = LlavactionAdapter.answer

    def spy(self, requests):
        for r in requests:
            seen.setdefault(control, {})[r.question.id] = np.array(r.frames)
        return answer(self, requests)

    monkeypatch.setattr(LlavactionAdapter, "answer", spy)
    for control in ("none", "other-clip", "blank"):
        run = root / f"cli-{control}"
        args = ["eval", "--questions", str(path), "--model", "llavaction", "--checkpoint",
                str(checkpoint), "--videos", str(root / "kitchen" / "videos"), "--frames", "2",
                "--size", "32", "--frames-control", control, "--out", str(run), "--no-progress",
                "--workers", "0"]  # fmt: skip
        assert main(args) == 0, capsys.readouterr().err
        config = json.loads((run / "config.json").read_text())
        assert config.get("frames_control", "none") == control
    donors = other_clip_donors(read_questions(path))
    for qid, frames in seen["none"].items():
        assert np.array_equal(seen["other-clip"][qid], seen["none"][donors[qid].id])
        assert (seen["blank"][qid] == BLANK_LEVEL).all()
        assert seen["blank"][qid].shape == frames.shape
