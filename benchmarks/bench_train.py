"""Trainer speed and memory on the synthetic kitchen, each against a reference from the same run.

1. ``breakdown``: the tiny model's training step with 2 data workers, split into waiting for data,
   forward, backward and optimizer. Target: waiting for data < 10% of the step.
2. ``serial``: samples per second with 2 workers against the same loop with the data loaded
   serially in the training process (``workers=0``). Printed as a ratio.
3. ``memory``: with and without gradient checkpointing, for a model with sizeable activations
   (hidden 256, 12 layers, 16 frames of 64 px, batch 8), each in a fresh subprocess: the peak
   resident memory of forward+backward above the memory held before it, and the bytes autograd
   keeps for the backward pass (outside checkpointed regions; those keep only their inputs).
4. ``gpu`` (only with CUDA and DeepSpeed): the 0.5B-shaped model at 16 frames under ZeRO-2,
   samples per second and peak GPU memory.

    .venv/bin/python benchmarks/bench_train.py [--steps 30] [--videos 12] [--skip-memory] [--quick]

``--quick``: 3 videos, 3 timed steps each way, no memory subprocesses.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from results import Report, quick_flag

from verbnoun.train.config import config_from_dict
from verbnoun.train.data import GlobalBatchSampler, SFTDataset, load_records
from verbnoun.train.engine import make_engine
from verbnoun.train.trainer import (
    Runtime,
    build_model,
    build_optimizer,
    forward_loss,
    make_layout,
    make_loader,
)


def prepare(root: Path, videos: int) -> tuple[Path, Path]:
    """The kitchen (rendered with 2 processes) and its MQA + narration mixture."""
    from verbnoun.data.synth import render_kitchen
    from verbnoun.train.sft import SftSettings, build_sft

    render_kitchen(root / "kitchen", videos=videos, seed=0, workers=2)
    build_sft(
        root / "kitchen" / "annotations", root / "sft", SftSettings(tasks=("mqa", "narration"))
    )
    return root / "sft" / "mixture.yaml", root / "kitchen" / "videos"


def loop_breakdown(
    mixture: Path, videos: Path, run_dir: Path, workers: int, steps: int, size: int | None
) -> dict:
    """Per-step seconds of each phase, by iterating the loader explicitly."""
    config = config_from_dict({
        "run_dir": str(run_dir), "batch_size": 8, "threads": 1, "progress": False,
        "model": {"tiny": True},
        "data": {"mixture": str(mixture), "videos": str(videos), "frames": 8, "workers": workers},
    })  # fmt: skip
    torch.set_num_threads(1)
    torch.manual_seed(0)
    records = load_records(config.data.mixture, config.seed)
    model, processor, _ = build_model(config, records, None)
    runtime = Runtime(0, 1, torch.device("cpu"))
    engine = make_engine(model, build_optimizer(model, config), config, runtime, False)
    dataset = SFTDataset(records, processor, make_layout(config), frames=8, size=size, jitter=0)
    warmup = 3
    phases: dict[str, list[float]] = {"data": [], "forward": [], "backward": [], "optimizer": []}
    order = GlobalBatchSampler(len(dataset), micro=8, accum=1, world=1, rank=0, seed=0,
                               stop=steps + warmup)  # fmt: skip
    batches = iter(make_loader(dataset, order, config))
    samples, start = 0, None
    for step in range(1, steps + warmup + 1):
        t0 = time.perf_counter()
        batch = next(batches)
        t1 = time.perf_counter()
        out = forward_loss(engine, batch, runtime.device, False)
        t2 = time.perf_counter()
        engine.backward(out.loss, True)
        t3 = time.perf_counter()
        engine.step()
        t4 = time.perf_counter()
        if step == warmup:
            start = time.perf_counter()
        if step > warmup:
            for key, value in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                phases[key].append(value)
            samples += len(batch["ids"])
    wall = time.perf_counter() - start
    step_time = {key: statistics.mean(values) for key, values in phases.items()}
    return {
        "workers": workers,
        "steps": len(phases["data"]),
        "seconds_per_step": step_time,
        "data_wait_ms": [round(1000 * t) for t in phases["data"]],
        "data_wait_fraction": sum(phases["data"]) / wall,
        "samples_per_s": samples / wall,
    }


MEMORY_CHILD = r"""
import json, resource, sys, torch
from verbnoun.model.architecture import LlavactionForCausalLM
from verbnoun.model.config import IMAGE_TOKEN_INDEX, tiny_config
torch.set_num_threads(1)
torch.manual_seed(0)
checkpointing = sys.argv[1] == "1"
config = tiny_config(vocab_size=1000, hidden_size=256, vision_hidden_size=256, num_layers=12,
                     image_size=64, patch_size=8)
model = LlavactionForCausalLM(config).train()
if checkpointing:
    for part in (model.model, model.model.vision_tower.vision_tower.vision_model):
        part.activation_checkpointing_enable({"use_reentrant": False})
ids = [torch.cat([torch.randint(3, 1000, (40,)), torch.tensor([IMAGE_TOKEN_INDEX]),
                  torch.randint(3, 1000, (80,))]) for _ in range(8)]
videos = [torch.rand(16, 3, 64, 64) * 2 - 1 for _ in range(8)]
actions = torch.zeros(8, 3, dtype=torch.long)
out = model(ids[:1], videos[:1], ids[:1], actions[:1]); out.loss.backward(); model.zero_grad()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
saved = [0]
def pack(t):
    saved[0] += t.numel() * t.element_size()
    return t
with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
    out = model(ids, videos, [i.clamp(min=0) for i in ids], actions)
out.loss.backward()
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"checkpointing": checkpointing, "peak_mib": after / 1024,
                  "step_mib": (after - before) / 1024, "saved_mib": saved[0] / 2**20}))
"""


def memory(checkpointing: bool) -> dict:
    done = subprocess.run([sys.executable, "-c", MEMORY_CHILD, "1" if checkpointing else "0"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--videos", type=int, default=12)
    parser.add_argument("--size", type=int, default=32, help="decode size (the tower's: 32)")
    parser.add_argument("--skip-memory", action="store_true")
    quick_flag(parser)
    args = parser.parse_args()
    report = Report("bench_train", args.quick)
    if args.quick:
        args.steps, args.videos, args.skip_memory = 3, 3, True
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        mixture, videos = prepare(root, args.videos)
        parallel = loop_breakdown(mixture, videos, root / "w2", 2, args.steps, args.size)
        serial = loop_breakdown(mixture, videos, root / "w0", 0, args.steps, args.size)
    print(json.dumps({"two_workers": parallel, "serial": serial}, indent=2))
    wait = parallel["data_wait_fraction"]
    report.figure("data_wait_share", 100 * wait, "%",
                  reference=f"serial loading {100 * serial['data_wait_fraction']:.1f}% of the "
                            f"step; tiny model, batch 8, {args.steps} steps",
                  target="< 10%", met=wait < 0.10)  # fmt: skip
    ratio = parallel["samples_per_s"] / serial["samples_per_s"]
    report.figure("two_workers_speedup", ratio, "x",
                  reference=f"serial loading {serial['samples_per_s']:.1f} samples/s, 2 workers "
                            f"{parallel['samples_per_s']:.1f}")  # fmt: skip
    if not args.skip_memory:
        plain, ckpt = memory(False), memory(True)
        print(json.dumps({"memory": [plain, ckpt]}))
        for key, what in (("step_mib", "peak RSS of forward+backward above the model"),
                          ("saved_mib", "activations kept for backward")):  # fmt: skip
            report.figure(f"checkpointing_{key.removesuffix('_mib')}_memory",
                          ckpt[key] / max(plain[key], 1e-9), "x",
                          reference=f"{what}: {plain[key]:.0f} MiB without, {ckpt[key]:.0f} "
                                    "MiB with gradient checkpointing")  # fmt: skip
    if torch.cuda.is_available():
        print(
            "gpu: run on a CUDA machine with DeepSpeed: verbnoun train --config "
            "configs/llavaction-0.5b.yaml distributed.deepspeed=configs/deepspeed/zero2.json"
        )


if __name__ == "__main__":
    main()
