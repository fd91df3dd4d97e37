"""Exact resume: a run killed after a checkpoint and resumed repeats the uninterrupted loss curve."""

from __future__ import annotations

import json

import pytest
import torch
from trainer_setup import killed_after, kitchen, losses, tiny_settings

from verbnoun.train import state
from verbnoun.train.config import config_from_dict
from verbnoun.train.trainer import train


@pytest.mark.slow
def test_resume_reproduces_the_loss_curve(tmp_path_factory, tmp_path, monkeypatch):
    data = kitchen(tmp_path_factory)
    # 6 steps of batch 4 over the 78 records; jitter on; two data workers
    settings = {"save_every": 3, "data.workers": 2, "model.gradient_checkpointing": True}
    straight = tmp_path / "straight"
    train(config_from_dict(tiny_settings(data, straight, **settings)))

    killed = tmp_path / "killed"
    with killed_after(5):
        train(config_from_dict(tiny_settings(data, killed, **settings)))
    assert sorted(losses(killed)) == [1, 2, 3, 4, 5]
    assert state.latest_checkpoint(killed).name == "step-000003"

    summary = train(config_from_dict(tiny_settings(data, killed, **settings)))
    assert summary["resumed_from"] == 3
    expected, got = losses(straight), losses(killed)
    assert sorted(got) == [1, 2, 3, 4, 5, 6]  # the killed run's steps 4-5 were replaced
    assert got == expected  # bit for bit
    lines = (killed / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2, 3, 4, 5, 6]


def test_trainer_state_files_hold_only_tensors_and_plain_values(tmp_path_factory, tmp_path):
    data = kitchen(tmp_path_factory)
    run = tmp_path / "run"
    train(config_from_dict(tiny_settings(data, run, steps=2)))
    checkpoint = state.latest_checkpoint(run)
    saved = torch.load(checkpoint / "trainer.pt", weights_only=True)  # refuses other objects
    assert saved["step"] == 2 and saved["optimizer"]["state"]
    rng = torch.load(checkpoint / "rng-rank0.pt", weights_only=True)
    assert rng["torch"].dtype == torch.uint8
    from verbnoun.model.checkpoint import load_model

    assert load_model(checkpoint).config.text.vocab_size > 0  # usable as a model checkpoint
