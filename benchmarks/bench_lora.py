"""LoRA against full fine-tuning at LLaVAction-0.5B's exact shape, on a CPU: memory you can plan
with (not in the suite: minutes and about 17 GB; the suite runs ``--quick``).

Each arm runs in its own fresh process, so that the peaks do not mix: the model at LLaVAction-0.5B's
shape (Qwen2-0.5B, SigLIP so400m at 384 px with 26 kept layers, verb / noun / action heads of
97 / 300 / 3,806: ``bench_real_shape.real_config``) with random weights, then the trainer's own
pieces (:func:`verbnoun.train.parts.freeze`, :func:`verbnoun.train.lora.attach`,
:func:`verbnoun.train.trainer.build_optimizer`, the plain ``TorchEngine``, the model's
``loss_only`` forward as training calls it) for ``--steps`` optimizer steps on one 2-frame
384-px sample (a prompt with ``<image>`` and a 10-token supervised answer, verb / noun / action
labels), fp32 as on a CPU, with gradient checkpointing in both arms (as ``configs/llavaction-0.5b.yaml``;
``--no-gradient-checkpointing`` to compare). Not the data loader: no videos are decoded.

* ``full``: every part trains, as the release's ``mm_tunable_parts``
  (``mm_vision_tower,mm_mlp_adapter,mm_language_model``);
* ``lora``: LoRA rank 8 (alpha 16) on the seven linear layers of every decoder layer of the
  language model, the projector, ``image_newline``, the action token and the heads trained in
  full, the vision tower frozen (``model.tunable_parts: [projector, language_model]``).

Printed per arm: trainable parameters (count, share of the model), peak resident memory of the
process (``ru_maxrss``: the model, gradients, optimizer state and activations at their highest,
the imports included) and seconds per step (the best step after the first, which allocates the
optimizer state). Targets: LoRA's peak at most 0.6x full fine-tuning's, trainable share under
2 %. Then the 7B shape (Qwen2-7B: width 3,584, 28 layers, untied embeddings), **an estimate**
from parameter counts only (the model built on the meta device, no memory): the bytes of fp32
weights, gradients and AdamW's two moments for each arm; activations are not included.

    nice -n 10 .venv/bin/python benchmarks/bench_lora.py [--frames 2] [--steps 2] [--rank 8]
        [--no-gradient-checkpointing] [--threads N]
    .venv/bin/python benchmarks/bench_lora.py --quick   # tiny shape, a few seconds
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import Report, quick_flag

SIDE = 384
LM_PARTS = ["projector", "language_model"]
ALL_PARTS = ["vision_tower", "projector", "language_model"]


def shape(name: str):
    """The model config of ``0.5b``, ``7b`` or ``tiny`` (a narrow model for ``--quick``)."""
    from dataclasses import replace

    from bench_real_shape import real_config

    from verbnoun.model.config import TextConfig

    if name == "tiny":
        config = real_config(small=True)
        return replace(config, text=replace(config.text, vocab_size=1024))
    config = real_config()
    if name == "7b":
        text = TextConfig(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                          num_attention_heads=28, num_key_value_heads=4, vocab_size=152064,
                          rope_theta=1000000.0, tie_word_embeddings=False)  # fmt: skip
        config = replace(config, text=text)
    return config


def settings(arm: str, rank: int):
    from verbnoun.train.config import LoraSettings, OptimSettings, TrainConfig

    config = TrainConfig(optim=OptimSettings(lr=1e-5, clip_grad=1.0))
    if arm == "lora":
        config.lora = LoraSettings(rank=rank, alpha=2.0 * rank, dropout=0.05)
    return config


def prepared(model, arm: str, rank: int, seed: int = 0, checkpointing: bool = False):
    """Freeze, checkpoint activations and (LoRA) attach as the trainer's ``build_model`` and
    ``train`` do; returns the training config used."""
    from verbnoun.train.lora import attach
    from verbnoun.train.parts import freeze

    config = settings(arm, rank)
    freeze(model, LM_PARTS if arm == "lora" else ALL_PARTS)
    model.model.vision_tower.vision_tower.vision_model.post_layernorm.requires_grad_(False)
    if checkpointing:
        for part in (model.model, model.model.vision_tower.vision_tower.vision_model):
            part.activation_checkpointing_enable({"use_reentrant": False})
    if arm == "lora":
        attach(model, config.lora, LM_PARTS, seed=seed)
    return config


def counts(model) -> dict:
    seen, trainable, total = set(), 0, 0
    for param in model.parameters():
        if id(param) in seen:
            continue
        seen.add(id(param))
        total += param.numel()
        trainable += param.numel() if param.requires_grad else 0
    return {"trainable": trainable, "total": total}


def random_model(config):
    """The model at ``config``'s shape, random weights (filled in place: no second copy)."""
    from verbnoun.model.checkpoint import _build_empty

    torch.manual_seed(0)
    model = _build_empty(config, torch.device("cpu"), torch.float32)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("bias"):
                param.zero_()
            elif "norm" in name:
                param.fill_(1.0)
            else:
                param.normal_(0.0, 0.02)
    return model


def sample(config, frames: int):
    """One training sample: ids with ``<image>``, its labels, 2 frames, verb/noun/action."""
    from verbnoun.model.config import IMAGE_TOKEN_INDEX

    generator = torch.Generator().manual_seed(1)
    vocab = min(config.text.vocab_size, 150000)
    prompt = torch.randint(0, vocab, (40,), generator=generator)
    answer = torch.randint(0, vocab, (10,), generator=generator)
    ids = torch.cat([prompt[:14], torch.tensor([IMAGE_TOKEN_INDEX]), prompt[14:], answer])
    labels = torch.full_like(ids, -100)
    labels[-10:] = answer
    side = config.vision.image_size
    pixels = torch.randn(frames, 3, side, side, generator=generator)
    actions = torch.tensor([[3, 7, 11]])
    return [ids], [pixels], [labels], actions


def child(
    arm: str, shape_name: str, frames: int, steps: int, rank: int, threads: int, checkpointing: bool
) -> dict:
    """One arm in this (fresh) process: build, prepare, train ``steps`` steps; figures as JSON."""

    from verbnoun.train.engine import TorchEngine
    from verbnoun.train.trainer import build_optimizer

    if threads:
        torch.set_num_threads(threads)
    start_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    config = shape(shape_name)
    tic = time.perf_counter()
    model = random_model(config)
    train_config = prepared(model, arm, rank, checkpointing=checkpointing)
    model.train()
    built_s = time.perf_counter() - tic
    engine = TorchEngine(model, build_optimizer(model, train_config), world=1,
                         device=torch.device("cpu"), config=train_config)  # fmt: skip
    ids, videos, labels, actions = sample(config, frames)
    times, loss_values = [], []
    for _ in range(steps):
        tic = time.perf_counter()
        out = engine(ids, videos, labels, actions, loss_only=True)
        engine.backward(out.loss, True)
        engine.step()
        times.append(time.perf_counter() - tic)
        loss_values.append(float(out.loss))
    return {
        "arm": arm, **counts(model), "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        * 1024, "start": start_rss, "built_s": built_s, "times": times, "losses": loss_values,
        "tokens": config.visual_tokens(frames),
    }  # fmt: skip


def run_arm(arm: str, args) -> dict:
    command = [sys.executable, __file__, "--child", arm, "--shape", args.shape, "--frames",
               str(args.frames), "--steps", str(args.steps), "--rank", str(args.rank),
               "--threads", str(args.threads),
               "--gradient-checkpointing" if args.gradient_checkpointing
               else "--no-gradient-checkpointing"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{arm} arm failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def estimate(shape_name: str, rank: int) -> dict:
    """Parameter counts of both arms at ``shape_name`` on the meta device, and the bytes of fp32
    weights (every parameter) + gradients and AdamW moments (trainable ones)."""
    from verbnoun.model.architecture import LlavactionForCausalLM

    figures = {}
    for arm in ("full", "lora"):
        with torch.device("meta"):
            model = LlavactionForCausalLM(shape(shape_name))
            prepared(model, arm, rank)
        n = counts(model)
        n["state_bytes"] = 4 * n["total"] + 12 * n["trainable"]
        figures[arm] = n
    return figures


def gib(n: float) -> float:
    return n / 2**30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2)
    parser.add_argument("--steps", type=int, default=2, help="optimizer steps per arm (>= 2)")
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's)")
    parser.add_argument(
        "--gradient-checkpointing",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="in both arms, as configs/llavaction-0.5b.yaml",
    )
    parser.add_argument("--shape", default="0.5b", help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=["full", "lora"], help=argparse.SUPPRESS)
    quick_flag(parser)
    args = parser.parse_args()
    if args.child:
        result = child(
            args.child,
            args.shape,
            args.frames,
            args.steps,
            args.rank,
            args.threads,
            args.gradient_checkpointing,
        )
        print(json.dumps(result))
        return
    if args.steps < 2:
        parser.error("--steps: at least 2 (the first step allocates the optimizer state)")
    report = Report("bench_lora", args.quick)
    if args.quick:
        args.shape, args.steps = "tiny", 2
    arms = {arm: run_arm(arm, args) for arm in ("full", "lora")}
    full, lora = arms["full"], arms["lora"]
    name = "LLaVAction-0.5B" if args.shape == "0.5b" else "a tiny model"
    for arm in (full, lora):
        print(f"{arm['arm']:>4}: {arm['trainable']:,} of {arm['total']:,} parameters train "
              f"({100 * arm['trainable'] / arm['total']:.2f} %); peak {gib(arm['peak']):.2f} GiB; "
              f"steps {', '.join(f'{t:.1f}' for t in arm['times'])} s; loss "
              f"{', '.join(f'{x:.3f}' for x in arm['losses'])}")  # fmt: skip
    print(
        f"{name}, {args.frames} frames of {SIDE if args.shape != 'tiny' else 32} px "
        f"({full['tokens']} visual tokens), fp32, one sample per step, gradient checkpointing "
        f"{'on' if args.gradient_checkpointing else 'off'}, "
        f"{torch.get_num_threads() if not args.threads else args.threads} threads"
    )
    share = 100 * lora["trainable"] / lora["total"]
    reference = f"full fine-tuning, same shape, same run ({name})"
    report.figure("lora_trainable_share", share, "%", reference=f"{lora['trainable']:,} of "
                  f"{lora['total']:,} parameters (full: {full['trainable']:,})", target="< 2%",
                  met=share < 2.0)  # fmt: skip
    ratio = lora["peak"] / full["peak"]
    report.figure("lora_peak_memory_ratio", ratio, "x", reference=f"{reference}: "
                  f"{gib(lora['peak']):.2f} GiB against {gib(full['peak']):.2f} GiB "
                  "(peak resident memory, each arm in its own process)", target="<= 0.6x",
                  met=ratio <= 0.6)  # fmt: skip
    lora_s, full_s = min(lora["times"][1:]), min(full["times"][1:])
    report.figure("lora_seconds_per_step", lora_s, "s", reference=f"{reference}: "
                  f"{full_s:.2f} s per step ({full_s / lora_s:.2f}x LoRA's)")  # fmt: skip
    report.figure("full_seconds_per_step", full_s, "s", reference="the full arm of this run")

    est = estimate("7b", args.rank)  # on the meta device: no memory, quick mode too
    label = "LLaVAction-7B shape"
    for arm, n in est.items():
        print(f"ESTIMATE ({label}, from parameter counts) {arm}: {n['trainable']:,} of "
              f"{n['total']:,} train ({100 * n['trainable'] / n['total']:.2f} %); fp32 weights "
              f"+ gradients + AdamW moments {gib(n['state_bytes']):.1f} GiB, activations not "
              "included")  # fmt: skip
    report.figure("estimate_7b_lora_state_gib", gib(est["lora"]["state_bytes"]), "GiB",
                  reference=f"an estimate from parameter counts ({label}): full fine-tuning "
                  f"{gib(est['full']['state_bytes']):.1f} GiB; weights, gradients and AdamW "
                  "moments in fp32, activations not included")  # fmt: skip


if __name__ == "__main__":
    main()
