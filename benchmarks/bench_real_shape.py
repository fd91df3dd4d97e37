"""LLaVAction-0.5B's real shape on a CPU, end to end (not in the suite: minutes and gigabytes).

1. ``write``: random weights at LLaVAction-0.5B's exact shape (Qwen2-0.5B language model, SigLIP
   so400m at 384 px with 26 kept layers, ``grid`` newlines, one action token, verb / noun / action
   heads of 97 / 300 / 3,806), written in the released LLaVA-NeXT layout (bf16, sharded with
   ``model.safetensors.index.json``, the Qwen2 tokenizer built from the BPE ranks in the
   ``dashscope`` wheel), plus the ``one_token`` variant of the same weights (only the config
   differs) and that variant exported with ``export hf``.
2. ``question`` (a fresh process): ``load_pretrained`` of the released directory, then one 8-frame
   384-px MQA question answered by letters and by generation. Prints peak resident memory (growth
   over the process after its imports) as a multiple of the weights' fp32 size, at load and during
   the question. Target: load <= 1.2x.
3. ``speed`` (a fresh process): seconds per question (letters; and generation of 16 tokens) of our
   model on the ``one_token`` variant (``--model llavaction``) against transformers'
   ``LlavaOnevisionForConditionalGeneration`` on the same weights (``--model hf`` on the export),
   same request, repeats interleaved, best of each. Target: ours <= 1.1x transformers.
4. ``train`` (``torchrun``, 2 gloo processes, DeepSpeed ZeRO-3 on the CPU): two steps of the
   trainer (``verbnoun train``) from the released directory with gradient checkpointing, in bf16
   as the release was trained (``--train-precision fp32`` to compare), on the synthetic kitchen
   decoded at 384 px, with ZeRO-3's gather and optimizer sub-group limits scaled to a CPU
   (:func:`zero3_config`). Prints each process's memory after each phase (model built, engine
   ready, forward, backward, optimizer step), seconds per step, the parameters each process
   holds (its ZeRO-3 partitions) against the whole model's (what one process holds alone), and
   each process's peak resident memory. Target: about half per process.
5. ``--gpu`` (only with CUDA): the question at 16 and 64 frames in bf16.

    nice -n 10 .venv/bin/python benchmarks/bench_real_shape.py [--work DIR] [--frames 8]
        [--repeats 1] [--compare-generate] [--skip-train | --skip-question] [--train-frames 2]
        [--small]   # narrow layers: checks this script in minutes, measures nothing
        [--quick]   # --small --skip-train --frames 1 and a small BPE in place of Qwen2's: the
                    # suite's check of the question path

On a shared 2-core CPU one 2-frame prefill at this shape takes minutes and an 8-frame one four
times that; measured there: ``--skip-train --frames 2`` (see docs/guides/transformers-models.md).

Needs about 8 GB of memory for 1-3 and about 2 x 11 GB for 4 (each process: the whole model in
fp32 while it loads, then its halves of the bf16 weights and gradients, the fp32 master weights
and AdamW's two moments; rank 0 briefly gathers the whole model again to save it).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from results import Report, quick_flag

FRAMES = 8
SIDE = 384
OPTIONS = ["open door", "close cupboard", "take knife", "wash plate", "put pan"]
HEADS = (97, 300, 3806)
SHARDS = 2


def rss(field: str = "VmHWM:") -> int:
    """Bytes of this process's resident memory (``VmRSS:``) or its peak (``VmHWM:``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def qwen_tokenizer():
    """The real Qwen2 tokenizer, built from the BPE ranks the ``dashscope`` wheel ships."""
    from verbnoun.model.tokenization import qwen2_from_tiktoken

    spec = importlib.util.find_spec("dashscope")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("needs the dashscope wheel (pip install --no-deps dashscope) for Qwen2's BPE")
    path = Path(next(iter(spec.submodule_search_locations))) / "resources" / "qwen.tiktoken"
    return qwen2_from_tiktoken(path)


def real_config(newline: str = "grid", small: bool = False):
    """LLaVAction-0.5B's shape; ``small``: narrow layers, same vocabulary and frame size (a
    quick check of this script itself, not a measurement)."""
    from verbnoun.model.config import LlavactionConfig, TextConfig, VisionConfig

    if not small:
        return LlavactionConfig(newline_position=newline, action_tokens=1, action_types=HEADS)
    text = TextConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2)  # fmt: skip
    vision = VisionConfig(hidden_size=48, intermediate_size=96, num_layers=2, num_heads=4)
    return LlavactionConfig(
        text=text, vision=vision, newline_position=newline, action_tokens=1, action_types=HEADS
    )


def quick_tokenizer():
    """A small byte-level BPE on the MQA prompt (quick mode: building and loading the real
    Qwen2 tokenizer costs more than the rest of a quick run)."""
    from verbnoun.bench import prompts
    from verbnoun.model.tokenization import train_tiny_tokenizer

    texts = [prompts.chat_prompt(prompts.user_turn(prompts.mqa_task(OPTIONS)))]
    return train_tiny_tokenizer([*texts, " ".join(prompts.LETTERS)], 400)


def write(work: Path, small: bool = False, quick: bool = False) -> None:
    """The released-layout directory, its one_token variant and that variant's hf export."""
    from verbnoun.model.architecture import LlavactionForCausalLM
    from verbnoun.model.checkpoint import write_tiny_released_checkpoint
    from verbnoun.model.export_hf import export_hf

    released, variant, exported = work / "released", work / "one_token", work / "hf"
    if not (exported / "config.json").is_file():
        start = time.perf_counter()
        torch.manual_seed(0)
        model = LlavactionForCausalLM(real_config(small=small))
        with torch.no_grad():  # a learned-looking action vector and newline, not zeros
            model.model.action_supervision.normal_(0, 0.02)
        write_tiny_released_checkpoint(
            released, model=model, tokenizer=quick_tokenizer() if quick else qwen_tokenizer(),
            shards=SHARDS,
            dtype=torch.bfloat16,
        )  # fmt: skip
        del model
        variant.mkdir(exist_ok=True)
        for path in released.iterdir():
            if path.name != "config.json":
                target = variant / path.name
                target.unlink(missing_ok=True)
                os.link(path, target)
        data = json.loads((released / "config.json").read_text())
        data["mm_newline_position"] = "one_token"
        (variant / "config.json").write_text(json.dumps(data, indent=2))
        export_hf(variant, exported)
        print(f"wrote {released} and {exported} in {time.perf_counter() - start:.0f} s")
    size = sum(p.stat().st_size for p in released.glob("*.safetensors"))
    names = sorted(p.name for p in released.glob("*.safetensors"))
    print(f"released layout: {len(names)} bf16 shards + index, {size / 2**30:.2f} GiB")


def _request(frames: int, side: int = SIDE):
    from verbnoun.bench.questions import Option, Question
    from verbnoun.evaluate.adapters import Request

    options = tuple(
        Option(text=t, action_id=f"{i}:{i}", source="random", text_source="narration")
        for i, t in enumerate(OPTIONS)
    )
    question = Question(
        id="P01_01_0", video_id="P01_01", participant_id="P01", start=0.0, stop=2.5,
        options=options, answer_index=2, narration=OPTIONS[2], verb_class=2, noun_class=2,
    )  # fmt: skip
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(frames, side, side, 3), dtype=np.uint8)
    return Request(question, question.prompt(frames), question.task(), frames=pixels)


def question_child(work: Path, frames: int) -> dict:
    """Load the released directory and answer one question (run in a fresh process)."""
    from verbnoun.evaluate.local_adapter import LlavactionAdapter
    from verbnoun.model.tokenization import load_tokenizer

    before = rss("VmRSS:")
    tokenizer = load_tokenizer(work / "released")  # its own cost, reported beside the load's
    tokenizer_bytes = rss("VmRSS:") - before
    del tokenizer
    before = rss("VmRSS:")
    start = time.perf_counter()
    adapter = LlavactionAdapter(work / "released", mode="letters")
    load_s = time.perf_counter() - start
    params = {id(p): p for p in adapter.model.parameters()}
    fp32 = sum(p.numel() for p in params.values()) * 4
    at_load = rss()
    request = _request(frames)
    start = time.perf_counter()
    letters = adapter.answer([request])[0]
    letters_s = time.perf_counter() - start
    adapter.mode = "generate"
    start = time.perf_counter()
    generated = adapter.answer([request])[0]
    generate_s = time.perf_counter() - start
    return {
        "weights_fp32": fp32, "baseline": before, "tokenizer": tokenizer_bytes, "peak_load": at_load, "peak_question": rss(),
        "load_s": load_s, "letters_s": letters_s, "generate_s": generate_s,
        "letters": letters.raw, "generated": generated.raw,
        "tokens": adapter.model.config.visual_tokens(frames),
    }  # fmt: skip


def speed_child(work: Path, frames: int, repeats: int, modes: tuple[str, ...]) -> dict:
    """Seconds per question, ours against transformers on the same weights (fresh process)."""
    from verbnoun.evaluate.hf_adapter import HfAdapter, HfSettings
    from verbnoun.evaluate.local_adapter import LlavactionAdapter

    ours = LlavactionAdapter(work / "one_token", mode="letters", max_new_tokens=16)
    theirs = HfAdapter(HfSettings(str(work / "hf"), mode="letters", max_new_tokens=16))
    request = _request(frames)
    times: dict[str, list[float]] = {}
    answers: dict[str, str] = {}
    # no warm-up: one-time costs (well under a second) vanish next to a prefill of minutes
    for mode in modes:
        ours.mode = mode
        theirs.options = HfSettings(str(work / "hf"), mode=mode, max_new_tokens=16)
        for repeat in range(repeats):  # alternating which side goes first
            sides = [("ours", ours), ("transformers", theirs)]
            for name, adapter in sides if repeat % 2 == 0 else sides[::-1]:
                start = time.perf_counter()
                reply = adapter.answer([request])[0]
                times.setdefault(f"{name}_{mode}", []).append(time.perf_counter() - start)
                answers[f"{name}_{mode}"] = reply.raw
    return {"best": {k: min(v) for k, v in times.items()}, "answers": answers}


def _fresh(phase: str, work: Path, *extra: str) -> dict:
    command = [sys.executable, __file__, "--phase", phase, "--work", str(work), *extra]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{phase} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report_question(data: dict, frames: int, report: Report) -> None:
    gib = 2**30
    load = (data["peak_load"] - data["baseline"]) / data["weights_fp32"]
    asked = (data["peak_question"] - data["baseline"]) / data["weights_fp32"]
    print(
        f"weights {data['weights_fp32'] / gib:.2f} GiB in fp32; process after imports "
        f"{data['baseline'] / gib:.2f} GiB"
    )
    report.figure("load_peak_memory", load, "x",
                  reference=f"the fp32 weights, {data['weights_fp32'] / gib:.2f} GiB (peak RSS "
                            f"growth; includes the Qwen2 tokenizer, "
                            f"{data['tokenizer'] / gib:.2f} GiB alone); load "
                            f"{data['load_s']:.1f} s", target="<= 1.2x", met=load <= 1.2)  # fmt: skip
    report.figure("question_peak_memory", asked, "x",
                  reference=f"the fp32 weights; one {frames}-frame {SIDE}-px question "
                            f"({data['tokens']} visual tokens): letters {data['letters_s']:.1f} s, "
                            f"generation {data['generate_s']:.1f} s")  # fmt: skip


def report_speed(data: dict, repeats: int, report: Report) -> None:
    best = data["best"]
    for mode in sorted({k.split("_", 1)[1] for k in best}, reverse=True):
        ours, theirs = best[f"ours_{mode}"], best[f"transformers_{mode}"]
        letters = mode == "letters"
        report.figure(f"{mode}_time_vs_transformers", ours / theirs, "x",
                      reference=f"transformers LlavaOnevisionForConditionalGeneration "
                                f"{theirs:.2f} s per question, ours {ours:.2f} s (best of "
                                f"{repeats})", target="<= 1.1x" if letters else "",
                      met=ours <= 1.1 * theirs if letters else None)  # fmt: skip
    answers = data["answers"]
    print(
        f"letters chosen: ours {answers['ours_letters']!r}, transformers "
        f"{answers['transformers_letters']!r} (random weights: the hf adapter also counts ' X' "
        "forms, so the two may differ)"
    )


# ---- training -------------------------------------------------------------------------------


def train_child(config_path: Path, out: Path) -> None:
    """One rank of ``torchrun``: the trainer, with its engine and step times recorded."""
    from verbnoun.train import trainer
    from verbnoun.train.config import load_config

    engines, steps, peaks = [], [], []
    make_engine, train_step = trainer.make_engine, trainer.train_step

    rank = int(os.environ.get("RANK", "0"))
    gib = 2**30

    def say(phase: str) -> None:  # on stderr at once: still there if the process is killed
        print(f"rank {rank} {phase}: RSS {rss('VmRSS:') / gib:.2f} GiB, peak "
              f"{rss() / gib:.2f} GiB", file=sys.stderr, flush=True)  # fmt: skip

    def traced(name: str, method):
        def call(*args, **kwargs):
            result = method(*args, **kwargs)
            say(f"after {name}")
            return result

        return call

    def recording_engine(*args, **kwargs):
        say("model built")
        engine = make_engine(*args, **kwargs)
        say("engine ready")
        for name in ("backward", "step"):
            setattr(engine, name, traced(name, getattr(engine, name)))
        engines.append(engine)
        return engine

    def timed_step(*args, **kwargs):
        start = time.perf_counter()
        result = train_step(*args, **kwargs)
        steps.append(time.perf_counter() - start)
        peaks.append(rss())
        return result

    trainer.make_engine, trainer.train_step = recording_engine, timed_step
    trainer.forward_loss = traced("forward", trainer.forward_loss)
    summary = trainer.train(load_config(config_path))
    engine = engines[0]
    module = engine.engine.module
    params = list(module.parameters())
    held = sum(p.ds_tensor.numel() for p in params if hasattr(p, "ds_tensor"))
    whole = sum(p.ds_numel if hasattr(p, "ds_numel") else p.numel() for p in params)
    record = {"rank": rank, "held": held, "whole": whole, "bytes": params[0].element_size(),
              "steps": steps, "step_peak": peaks[-1], "peak": rss(),
              "loss": summary.get("loss")}  # fmt: skip
    (out / f"rank{rank}.json").write_text(json.dumps(record))


def zero3_config(root: Path, work: Path) -> Path:
    """``configs/deepspeed/zero3.json`` with three limits scaled from GPU-sized to 1e8 elements.

    * ``sub_group_size``: DeepSpeed steps the optimizer one sub-group at a time and sizes a
      gradient buffer (and AdamW's temporaries) by the largest sub-group's whole-model size.
      With the default of 1e9 the 0.9B-parameter model is a single sub-group, so that buffer
      alone is the full model in fp32, in every process.
    * ``stage3_max_live_parameters`` / ``stage3_max_reuse_distance``: at 1e9 a process may keep
      the whole model gathered between layers.

    Neither changes the arithmetic, only when partitions are stepped and gathered copies freed;
    with the defaults two processes do not fit in 24 GB."""
    config = json.loads((root / "configs" / "deepspeed" / "zero3.json").read_text())
    config["zero_optimization"].update(
        sub_group_size=100_000_000,
        stage3_max_live_parameters=100_000_000,
        stage3_max_reuse_distance=100_000_000,
    )
    path = work / "zero3-cpu.json"
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path


def train(work: Path, frames: int, processes: int, precision: str, report: Report) -> None:
    import yaml

    from verbnoun.data.synth import render_kitchen
    from verbnoun.train.sft import SftSettings, build_sft

    data = work / "kitchen"
    if not (data / "sft" / "mixture.yaml").is_file():
        render_kitchen(data / "kitchen", videos=2, seed=0, workers=1)
        build_sft(data / "kitchen" / "annotations", data / "sft", SftSettings(tasks=("mqa",)))
    run = work / f"train-{processes}"
    shutil.rmtree(run, ignore_errors=True)
    root = Path(__file__).resolve().parent.parent
    settings = {
        "run_dir": str(run), "steps": 2, "batch_size": 1, "grad_accum": 1, "threads": 1,
        "progress": False, "log_every": 1, "save_every": 0, "keep_checkpoints": 1,
        "precision": precision,
        "model": {"checkpoint": str(work / "released"), "gradient_checkpointing": True},
        "data": {"mixture": str(data / "sft" / "mixture.yaml"),
                 "videos": str(data / "kitchen" / "videos"), "frames": frames, "size": SIDE,
                 "workers": 0},
        "optim": {"lr": 1e-5, "warmup_steps": 0},
        "distributed": {"deepspeed": str(zero3_config(root, work))},
    }  # fmt: skip
    config = work / f"train-{processes}.yaml"
    config.write_text(yaml.safe_dump(settings))
    out = work / f"train-{processes}-out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node", str(processes), __file__, "--phase", "train-child",
               "--work", str(work), "--config", str(config), "--out", str(out)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    log = work / f"train-{processes}.log"  # each rank's memory by phase, as it happens
    start = time.perf_counter()
    with log.open("w") as stream:
        done = subprocess.run(command, env=env, stdout=stream, stderr=subprocess.STDOUT)
    text = log.read_text()
    if done.returncode != 0:
        sys.exit(f"training failed (see {log}):\n{text[-4000:]}")
    wall = time.perf_counter() - start
    print(f"ZeRO-3, {processes} gloo process(es), 2 trainer steps, {frames} frames of {SIDE} px, "
          f"{precision}, gradient checkpointing: {wall:.0f} s in all")  # fmt: skip
    report_train(log, out, report)


def report_train(log: Path, out: Path, report: Report) -> None:
    """Each rank's memory by phase (from ``log``), then its step times and partition size."""
    gib = 2**30
    for line in log.read_text().splitlines():
        if line.startswith("rank ") and "RSS" in line:
            print("  " + line)
    for r in [json.loads(p.read_text()) for p in sorted(out.glob("rank*.json"))]:
        print(
            f"  rank {r['rank']}: seconds per step {', '.join(f'{s:.0f}' for s in r['steps'])}; "
            f"parameters held {r['held'] * r['bytes'] / gib:.2f} GiB = "
            f"{r['held'] / r['whole']:.2f}x the whole model's {r['whole'] * r['bytes'] / gib:.2f}"
            f" GiB ({r['bytes']} bytes each; one process holds 1.00x); peak RSS over the steps "
            f"{r['step_peak'] / gib:.2f} GiB, with the final save (rank 0 gathers the whole "
            f"model) {r['peak'] / gib:.2f} GiB; last loss {r['loss']:.3f}"
        )
        report.figure(f"train_rank{r['rank']}_parameters_held", r["held"] / r["whole"], "x",
                      reference=f"the whole model's {r['whole'] * r['bytes'] / gib:.2f} GiB (one "
                                f"process alone: 1.00x); peak RSS over the steps "
                                f"{r['step_peak'] / gib:.2f} GiB; seconds per step "
                                + ", ".join(f"{s:.0f}" for s in r["steps"]),
                      target="about 0.5x with 2 processes")  # fmt: skip


def gpu(work: Path, report: Report) -> None:
    from verbnoun.evaluate.local_adapter import LlavactionAdapter

    adapter = LlavactionAdapter(work / "released", mode="letters", device="cuda")
    adapter.model.to(torch.bfloat16)
    for frames in (16, 64):
        request = _request(frames)
        adapter.answer([request])
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        adapter.answer([request])
        torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        peak = torch.cuda.max_memory_allocated() / 2**30
        report.figure(f"gpu_{frames}_frames_letters", seconds, "s",
                      reference=f"peak GPU memory {peak:.1f} GiB; bf16, one question")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=None, help="kept between runs when given")
    parser.add_argument("--phase", default="all")
    parser.add_argument("--frames", type=int, default=FRAMES)
    parser.add_argument("--train-frames", type=int, default=2)
    parser.add_argument(
        "--train-precision",
        default="bf16",
        choices=("bf16", "fp32"),
        help="bf16 (as the release was trained) or fp32",
    )
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--skip-question", action="store_true", help="only write and train")
    parser.add_argument("--compare-generate", action="store_true", help="time generation too")
    parser.add_argument("--gpu", action="store_true")
    parser.add_argument("--small", action="store_true", help="check the script, not a measurement")
    parser.add_argument("--config", type=Path)
    parser.add_argument("--out", type=Path)
    quick_flag(parser)
    args = parser.parse_args()
    if args.quick:
        args.small, args.skip_train, args.frames = True, True, 1
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    if args.phase == "question":
        print(json.dumps(question_child(args.work, args.frames)))
        return
    if args.phase == "speed":
        modes = ("letters", "generate") if args.compare_generate else ("letters",)
        print(json.dumps(speed_child(args.work, args.frames, args.repeats, modes)))
        return
    if args.phase == "train-child":
        train_child(args.config, args.out)
        return
    report = Report("bench_real_shape", args.quick or args.small)
    if args.small and not args.quick:
        print("--small: narrow layers, the figures below measure nothing")
    work = args.work or Path(tempfile.mkdtemp(prefix="real-shape-"))
    work.mkdir(parents=True, exist_ok=True)
    write(work, args.small, args.quick)
    frames = str(args.frames)
    if not args.skip_question:
        report_question(_fresh("question", work, "--frames", frames), args.frames, report)
        extra = ["--compare-generate"] if args.compare_generate else []
        speed = _fresh("speed", work, "--frames", frames, "--repeats", str(args.repeats), *extra)
        report_speed(speed, args.repeats, report)
    if not args.skip_train:
        train(work, args.train_frames, args.processes, args.train_precision, report)
    elif args.quick:
        print("train: left out in quick mode (torchrun with DeepSpeed ZeRO-3 takes minutes)")
    if args.gpu and torch.cuda.is_available():
        gpu(work, report)
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
