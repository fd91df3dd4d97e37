"""Damaged inputs, command by command (issue 17): one clear line, never a traceback, and no
finished output destroyed by a failed run.

Each case damages one input of one command family (annotation and class CSVs, specialist
prediction files, question files, data set descriptions, videos, run folders, checkpoints,
training configs, SFT files, export inputs) and runs the real CLI in-process
(:func:`verbnoun.cli.main`); :func:`damagetools.refused` checks the refusal. The finished world
every case starts from is built once per session.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from damagetools import World, cli, write_clip


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> World:
    from verbnoun.data.annotations import EK100Annotations
    from verbnoun.data.kitchen import kitchen_script, write_kitchen_annotations
    from verbnoun.data.synth import write_kitchen_description

    root = tmp_path_factory.mktemp("world")
    kitchen = root / "kitchen"
    write_kitchen_annotations(kitchen / "annotations", kitchen_script(videos=4, seed=0))
    write_kitchen_description(kitchen)
    annotations = kitchen / "annotations"
    questions = root / "q.jsonl"
    assert cli("mqa", "build", "--annotations", annotations, "--out", questions) == 0
    run = root / "run"
    assert cli("eval", "--model", "random", "--questions", questions, "--out", run) == 0
    ek = EK100Annotations(annotations)
    actions = list(ek.action_vocabulary().actions)
    predictions = {}
    for segment in ek.segments("validation"):
        others = [a for a in actions if a != segment.action_id][:9]
        predictions[str(segment.row)] = {
            "predictions": [segment.action_id, *others],
            "target": segment.action_id,
        }
    predictions_path = root / "predictions.json"
    predictions_path.write_text(json.dumps(predictions), encoding="utf-8")
    videos = root / "videos"
    videos.mkdir()
    return World(root, kitchen, questions, run, predictions_path, write_clip(root / "clip.mp4"),
                 videos)  # fmt: skip


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Path:
    """A tiny checkpoint in the released layout: config.json, an index, two shards and a
    tokenizer trained on the prompt (it answers: see test_models_and_training.py)."""
    from verbnoun.bench import prompts
    from verbnoun.model.checkpoint import write_tiny_released_checkpoint
    from verbnoun.model.config import tiny_config
    from verbnoun.model.tokenization import train_tiny_tokenizer

    prompt = prompts.chat_prompt(prompts.user_turn(prompts.mqa_task(["open door", "close door"])))
    tokenizer = train_tiny_tokenizer([prompt, prompts.TIME_INSTRUCTION] * 3, vocab_size=300)
    directory = tmp_path_factory.mktemp("ckpt") / "ckpt"
    config = tiny_config(vocab_size=len(tokenizer))
    write_tiny_released_checkpoint(directory, config, tokenizer=tokenizer, shards=2)
    return directory
