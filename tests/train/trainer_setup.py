"""Shared data of the trainer tests: a small synthetic kitchen and its SFT mixture, made once per
session (6 videos, one process), and a helper that writes a tiny-model training config."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import yaml

torch.set_num_threads(1)

_CACHE: dict[str, Kitchen] = {}


@dataclass(frozen=True)
class Kitchen:
    root: Path
    videos: Path
    annotations: Path
    mixture: Path
    records: list[dict]


def kitchen(tmp_path_factory) -> Kitchen:
    """The session's kitchen (rendered on first use): MQA and narration records of train."""
    key = str(tmp_path_factory.getbasetemp())
    if key not in _CACHE:
        from verbnoun.data.synth import render_kitchen
        from verbnoun.train.sft import SftSettings, build_sft

        root = tmp_path_factory.mktemp("trainer-kitchen")
        render_kitchen(root / "kitchen", videos=6, seed=0, workers=1)
        annotations = root / "kitchen" / "annotations"
        build_sft(annotations, root / "sft", SftSettings(tasks=("mqa", "narration")))
        mixture = root / "sft" / "mixture.yaml"
        records = [
            json.loads(line)
            for name in ("mqa.jsonl", "narration.jsonl")
            for line in (root / "sft" / name).read_text().splitlines()
        ]
        _CACHE[key] = Kitchen(root, root / "kitchen" / "videos", annotations, mixture, records)
    return _CACHE[key]


def tiny_settings(data: Kitchen, run_dir: Path, **overrides) -> dict:
    """A tiny-model config dict (4 frames of 32 px, batch 4, no workers, no progress bar)."""
    settings = {
        "run_dir": str(run_dir),
        "steps": 6,
        "batch_size": 4,
        "progress": False,
        "threads": 1,
        "model": {"tiny": True, "vocab_size": 400},
        "data": {
            "mixture": str(data.mixture),
            "videos": str(data.videos),
            "frames": 4,
            "size": 32,
            "workers": 0,
        },
        "optim": {"lr": 1e-3, "warmup_steps": 2},
    }
    for key, value in overrides.items():
        node = settings
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return settings


def write_config(path: Path, settings: dict) -> Path:
    path.write_text(yaml.safe_dump(settings))
    return path


def losses(run_dir: Path) -> dict[int, float]:
    """Step -> loss from a run's metrics.jsonl."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {row["step"]: row["loss"] for row in rows if "loss" in row}


class Killed(Exception):
    """What :func:`killed_after` raises inside training, as a kill would stop it."""


@contextmanager
def killed_after(step: int) -> Iterator[None]:
    """Training inside stops right after step ``step`` is logged, before any checkpoint of it."""
    from verbnoun.train import monitor

    write = monitor.RunLog.metrics

    def die(self, record):
        write(self, record)
        if record["step"] == step:
            raise Killed

    monitor.RunLog.metrics = die
    try:
        with pytest.raises(Killed):
            yield
    finally:
        monitor.RunLog.metrics = write
