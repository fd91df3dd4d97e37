"""The tiny model, trained for about a minute and a half on the synthetic kitchen, beats the
random baseline on the kitchen's hard (prior-hard) MQA by a clear margin.

The slowest test of the suite (about two minutes on 2 cores); `benchmarks/bench_train_learning.py`
runs the longer version and prints the learning curve.
"""

from __future__ import annotations

import json

import pytest
import yaml

from verbnoun.bench.build import BuildSettings, build_benchmark
from verbnoun.data.synth import render_kitchen
from verbnoun.evaluate.adapters import RandomAdapter
from verbnoun.evaluate.runner import EvalSettings, run_evaluation
from verbnoun.train.config import config_from_dict
from verbnoun.train.sft import SftSettings, build_sft
from verbnoun.train.trainer import train

STEPS = 1000


@pytest.mark.slow
def test_tiny_model_beats_random_on_hard_mqa(tmp_path):
    import torch

    torch.set_num_threads(1)
    render_kitchen(tmp_path / "kitchen", videos=30, seed=0, workers=2)
    annotations = tmp_path / "kitchen" / "annotations"
    datasets = []
    for seed in range(3):
        build_sft(
            annotations, tmp_path / f"sft{seed}", SftSettings(seed=seed, tasks=("mqa", "prior"))
        )
        datasets.append({"json_path": f"sft{seed}/mqa.jsonl", "sampling_strategy": "all"})
    (tmp_path / "mixture.yaml").write_text(yaml.safe_dump({"datasets": datasets}))
    questions = tmp_path / "hard.jsonl"
    build_benchmark(annotations, questions, BuildSettings(distractors="prior-hard"))
    config = config_from_dict({
        "run_dir": str(tmp_path / "run"), "steps": STEPS, "batch_size": 8, "threads": 1,
        "progress": False, "log_every": 100, "save_every": 0, "model": {"tiny": True},
        "data": {"mixture": str(tmp_path / "mixture.yaml"), "videos": str(tmp_path / "kitchen" / "videos"),
                 "frames": 8, "size": 32, "workers": 2},
        "optim": {"lr": 1e-3, "warmup_steps": 100, "min_lr_ratio": 0.1},
        "eval": {"questions": str(questions), "every": STEPS, "scoring": "text"},
    })  # fmt: skip
    train(config)
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    model = [r["eval_accuracy"] for r in rows if "eval_accuracy" in r][-1]
    chance = run_evaluation(
        questions, RandomAdapter(0), tmp_path / "random", EvalSettings(), progress=False
    )
    baseline = chance["overall"]["accuracy"]
    print(f"hard MQA after {STEPS} steps: model {model:.3f}, random baseline {baseline:.3f}")
    assert model >= baseline + 0.15, (model, baseline)
