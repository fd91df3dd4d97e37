"""Several processes: torchrun with gloo (DDP) matches one process at the same global batch, and
DeepSpeed ZeRO-2 and ZeRO-3 on the CPU match the plain engine (skipped when DeepSpeed is absent);
ZeRO-3 with a frozen vision tower, which stays out of DeepSpeed's optimizer state."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys

import pytest
import torch
from trainer_setup import kitchen, losses, tiny_settings, write_config

from verbnoun.train.config import config_from_dict
from verbnoun.train.trainer import train

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEEPSPEED_CONFIGS = os.path.join(ROOT, "configs", "deepspeed")


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


@pytest.mark.slow
def test_two_gloo_processes_match_one_at_the_same_global_batch(tmp_path_factory, tmp_path):
    data = kitchen(tmp_path_factory)
    steps = {"steps": 4, "batch_size": 2}
    one = tmp_path / "one"
    train(config_from_dict(tiny_settings(data, one, grad_accum=2, **steps)))  # 1 x 2 x 2

    two = tmp_path / "two"
    config = write_config(tmp_path / "two.yaml", tiny_settings(data, two, grad_accum=1, **steps))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
               "2", "-m", "verbnoun.cli", "train", "--config", str(config)]  # fmt: skip
    done = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]

    expected, got = losses(one), losses(two)
    assert sorted(got) == [1, 2, 3, 4]
    for step, loss in expected.items():
        assert got[step] == pytest.approx(loss, rel=1e-4, abs=1e-5), step
    assert expected[4] < expected[1]  # and it is learning


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("deepspeed") is None, reason="deepspeed not installed")
@pytest.mark.parametrize("stage", ["zero2", "zero3"])
def test_deepspeed_on_cpu_matches_the_plain_engine(tmp_path_factory, tmp_path, stage):
    data = kitchen(tmp_path_factory)
    common = {"steps": 3, "grad_accum": 2, "save_every": 2}
    if stage == "zero3":
        common["model.tunable_parts"] = ["projector", "language_model"]
    plain = tmp_path / "plain"
    train(config_from_dict(tiny_settings(data, plain, **common)))
    zero3 = tmp_path / stage
    settings = tiny_settings(data, zero3, **common)
    settings["distributed"] = {"deepspeed": os.path.join(DEEPSPEED_CONFIGS, f"{stage}.json")}
    config = write_config(tmp_path / f"{stage}.yaml", settings)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
               "1", "-m", "verbnoun.cli", "train", "--config", str(config)]  # fmt: skip
    # a build of DeepSpeed's CPU shared-memory op killed halfway leaves this lock, which a run
    # that compiles the op waits on forever; ours does not compile it
    extensions = tmp_path / "torch_extensions"
    (extensions / "deepspeed_shm_comm").mkdir(parents=True)
    (extensions / "deepspeed_shm_comm" / "lock").touch()
    env = {**_env(), "TORCH_EXTENSIONS_DIR": str(extensions)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    expected, got = losses(plain), losses(zero3)
    assert sorted(got) == [1, 2, 3]
    for step, loss in expected.items():
        assert got[step] == pytest.approx(loss, rel=1e-3), step
    from verbnoun.model.checkpoint import load_model

    checkpoint = zero3 / "checkpoints" / "step-000003"
    assert (checkpoint / "deepspeed").is_dir()
    load_model(checkpoint)  # the gathered weights, in our safetensors format
    if stage == "zero3":  # the frozen tower: unchanged, and not in the optimizer state
        from safetensors.torch import load_file

        final = load_file(str(checkpoint / "model.safetensors"))
        first = load_file(str(zero3 / "checkpoints" / "step-000002" / "model.safetensors"))
        tower = [key for key in final if "vision_tower" in key]
        assert tower and all(torch.equal(final[k], first[k]) for k in tower)
        frozen = sum(final[k].numel() for k in tower)
        trainable = sum(v.numel() for v in final.values()) - frozen
        (optim,) = (checkpoint / "deepspeed").rglob("*optim_states.pt")
        # fp32 master copy and two moments (4 bytes each) of the trainable elements only
        assert 12 * trainable < optim.stat().st_size < 12 * (trainable + frozen // 2)
    if stage == "zero3":  # exact resume from the step-2 checkpoint, as if killed after it
        shutil.rmtree(checkpoint)
        (zero3 / "checkpoints" / "latest").write_text("step-000002")
        done = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stderr[-3000:]
        assert '"resumed_from": 2' in done.stdout
        assert losses(zero3) == got
