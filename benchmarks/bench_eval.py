"""Evaluation throughput: frames decoded in parallel with the model vs. serially, and memory.

1. The tiny model (random weights, letter scoring, 1 torch thread) answers ~1,000 synthetic-kitchen
   questions at 8 frames twice: ``workers=0`` (decode, then answer, in turn: the reference) and
   ``workers=2`` (two threads decode ahead of the model). Target: at least 1.8x on 2 cores.
2. Peak memory of the runner itself (tracemalloc, a blind baseline, no frames) on 1,000 and on
   10,000 questions: it should stay flat (only the question list grows).

    .venv/bin/python benchmarks/bench_eval.py [--videos 90] [--workdir /tmp/verbnoun-bench-eval]
        [--quick]

``--quick``: 3 videos in a temporary folder, memory on 100 and 1,000 questions.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path

from results import Report, quick_flag


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--videos", type=int, default=90)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/verbnoun-bench-eval"))
    quick_flag(parser)
    args = parser.parse_args()
    report = Report("bench_eval", args.quick)
    sizes = (1_000, 10_000)
    if args.quick:
        args.videos, sizes = 3, (100, 1_000)
        args.workdir = Path(tempfile.mkdtemp(prefix="verbnoun-bench-eval-quick-"))

    import torch

    from verbnoun.bench import prompts
    from verbnoun.bench.build import BuildSettings, build_benchmark
    from verbnoun.bench.questions import read_questions, write_questions
    from verbnoun.data.synth import render_kitchen
    from verbnoun.evaluate.adapters import RandomAdapter
    from verbnoun.evaluate.frames import make_frame_source
    from verbnoun.evaluate.local_adapter import LlavactionAdapter
    from verbnoun.evaluate.runner import EvalSettings, run_evaluation
    from verbnoun.model.checkpoint import write_tiny_released_checkpoint
    from verbnoun.model.config import tiny_config
    from verbnoun.model.tokenization import train_tiny_tokenizer

    torch.set_num_threads(1)
    work = args.workdir
    kitchen = work / "kitchen"
    if not (kitchen / "videos").is_dir():
        start = time.perf_counter()
        render_kitchen(kitchen, videos=args.videos, seed=0)
        print(f"rendered {args.videos} videos in {time.perf_counter() - start:.1f} s")
    questions = work / "q.jsonl"
    parts = []
    for split in ("train", "validation"):
        build_benchmark(
            kitchen / "annotations", work / f"{split}.jsonl", BuildSettings(split=split)
        )
        parts += read_questions(work / f"{split}.jsonl")
    write_questions(questions, parts)
    checkpoint = work / "checkpoint"
    if not checkpoint.is_dir():
        tokenizer = train_tiny_tokenizer(
            [prompts.MQA, prompts.TIME_INSTRUCTION, "A. B. C. D. E."] * 3, 400
        )
        write_tiny_released_checkpoint(
            checkpoint, tiny_config(vocab_size=len(tokenizer)), tokenizer=tokenizer
        )
    adapter = LlavactionAdapter(checkpoint)
    source = make_frame_source(kitchen / "videos", "chunks", 8, None)
    print(f"{len(parts)} questions, 8 frames each, tiny model, letter scoring")
    seconds = {}
    for workers in (0, 2):
        run = work / f"run-workers{workers}"
        for old in run.glob("*"):
            old.unlink()
        start = time.perf_counter()
        run_evaluation(questions, adapter, run, EvalSettings(), frame_source=source,
                       batch_size=8, workers=workers, progress=False)  # fmt: skip
        seconds[workers] = time.perf_counter() - start
        label = "serial decode (reference)" if workers == 0 else "2 decoding processes"
        print(
            f"  {label:26s}: {seconds[workers]:6.1f} s = {len(parts) / seconds[workers]:6.1f} questions/s"
        )
    ratio = seconds[0] / seconds[2]
    report.figure(
        "parallel_decode_speedup",
        ratio,
        "x",
        reference=f"serial decode {len(parts) / seconds[0]:.1f} questions/s "
        f"({len(parts)} questions, 8 frames, tiny model)",
        target=">= 1.8x on 2 cores",
        met=ratio >= 1.8,
    )

    peaks = {}
    for n in sizes:
        many = [replace(q, id=f"{q.id}#{i}") for i in range(n // len(parts) + 1) for q in parts][:n]
        path = work / f"q{n}.jsonl"
        write_questions(path, many)
        run = work / f"memory-{n}"
        for old in run.glob("*"):
            old.unlink()
        tracemalloc.start()
        baseline = tracemalloc.get_traced_memory()[0]
        run_evaluation(path, RandomAdapter(0), run, EvalSettings(), progress=False)
        peaks[n] = (tracemalloc.get_traced_memory()[1] - baseline) / 2**20
        tracemalloc.stop()
        print(
            f"runner peak Python memory, {n:6d} questions: {peaks[n]:6.1f} MiB ({peaks[n] * 2**20 / n / 1024:.1f} KiB per question)"
        )
    small, large = sizes
    growth = (peaks[large] / large) / (peaks[small] / small)
    report.figure(
        "runner_memory_per_question_growth",
        growth,
        "x",
        reference=f"per-question peak at {small:,} questions "
        f"({peaks[small] * 2**20 / small / 1024:.1f} KiB)",
        target=f"<= 1.2x at {large:,} questions (flat)",
        met=growth <= 1.2,
    )
    if args.quick:
        import shutil

        shutil.rmtree(args.workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
