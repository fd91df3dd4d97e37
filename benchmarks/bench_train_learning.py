"""Does training work? The tiny model, trained for a few minutes on the synthetic kitchen, against
the random baseline on the kitchen's hard (prior-hard) validation MQA.

Data: the kitchen (40 videos by default), SFT records of its train split (hard MQA with prior
actions, three seeds so that each segment comes with three sets of distractors, plus direct
narration), and the validation benchmark with prior-hard distractors (options sharing the verb or
the noun of the answer). The model: the tiny LLaVAction (hidden 64, 2 layers, 32-px frames,
8 frames), trained by ``verbnoun.train.trainer.train`` with evaluation every ``--eval-every``
steps (option-likelihood scoring). At the end the saved checkpoint is also scored by the option
letters' logits alone, as the ``llavaction`` adapter does by default.

    .venv/bin/python benchmarks/bench_train_learning.py [--steps 1500] [--videos 40] [--quick]

``--quick``: 4 videos, one seed, 6 steps (evaluated every 3).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
import yaml
from results import Report, quick_flag


def prepare(root: Path, videos: int, seeds: int) -> tuple[Path, Path, Path]:
    """Kitchen, SFT mixture and the hard validation benchmark under ``root``."""
    from verbnoun.bench.build import BuildSettings, build_benchmark
    from verbnoun.data.synth import render_kitchen
    from verbnoun.train.sft import SftSettings, build_sft

    render_kitchen(root / "kitchen", videos=videos, seed=0, workers=2)
    annotations = root / "kitchen" / "annotations"
    datasets = []
    for seed in range(seeds):
        build_sft(annotations, root / f"sft{seed}", SftSettings(seed=seed, tasks=("mqa", "prior")))
        datasets.append({"json_path": f"sft{seed}/mqa.jsonl", "sampling_strategy": "all"})
    build_sft(annotations, root / "narration", SftSettings(tasks=("narration",)))
    datasets.append({"json_path": "narration/narration.jsonl", "sampling_strategy": "all"})
    mixture = root / "mixture.yaml"
    mixture.write_text(yaml.safe_dump({"datasets": datasets}))
    questions = root / "validation-prior-hard.jsonl"
    build_benchmark(annotations, questions, BuildSettings(distractors="prior-hard"))
    return mixture, root / "kitchen" / "videos", questions


def blind_baselines(questions: Path, annotations: Path, out: Path) -> dict[str, float]:
    """Accuracy of the random (seeded) and the train-frequency prior baselines."""
    from verbnoun.data.annotations import EK100Annotations
    from verbnoun.evaluate.adapters import PriorAdapter, RandomAdapter
    from verbnoun.evaluate.runner import EvalSettings, run_evaluation

    vocabulary = EK100Annotations(annotations).action_vocabulary(("train",))
    frequency = {a: vocabulary.frequency(a) for a in vocabulary.actions}
    adapters = {"random": RandomAdapter(0), "prior": PriorAdapter(frequency, "kitchen:train")}
    return {
        name: run_evaluation(questions, adapter, out / name, EvalSettings(), progress=False)[
            "overall"
        ]["accuracy"]
        for name, adapter in adapters.items()
    }


def letters_accuracy(checkpoint: Path, questions: Path, videos: Path, out: Path) -> float:
    """The saved checkpoint through the ``llavaction`` adapter, scored by option letters."""
    from verbnoun.evaluate.frames import make_frame_source
    from verbnoun.evaluate.local_adapter import LlavactionAdapter
    from verbnoun.evaluate.runner import EvalSettings, run_evaluation

    adapter = LlavactionAdapter(checkpoint, mode="letters")
    metrics = run_evaluation(
        questions, adapter, out, EvalSettings(frames=8, size=32),
        frame_source=make_frame_source(videos, "chunks", 8, 32), workers=0, progress=False,
    )  # fmt: skip
    return metrics["overall"]["accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--videos", type=int, default=40)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--out", type=Path, default=None, help="keep everything here")
    quick_flag(parser)
    args = parser.parse_args()
    figures = Report("bench_train_learning", args.quick)
    if args.quick:
        args.steps, args.videos, args.seeds, args.eval_every = 6, 4, 1, 3
    from verbnoun.train.config import config_from_dict
    from verbnoun.train.data import load_records
    from verbnoun.train.trainer import train

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        tic = time.perf_counter()
        mixture, videos, questions = prepare(root, args.videos, args.seeds)
        prepared = time.perf_counter() - tic
        config = config_from_dict({
            "run_dir": str(root / "run"), "steps": args.steps, "batch_size": args.batch_size,
            "threads": 1, "progress": False, "log_every": 50, "save_every": 0,
            "model": {"tiny": True},
            "data": {"mixture": str(mixture), "videos": str(videos), "frames": 8, "size": 32,
                     "workers": 2},
            "optim": {"lr": args.lr, "warmup_steps": 100, "min_lr_ratio": 0.1},
            "eval": {"questions": str(questions), "every": args.eval_every, "scoring": "text"},
        })  # fmt: skip
        tic = time.perf_counter()
        summary = train(config)
        trained = time.perf_counter() - tic
        rows = [json.loads(x) for x in (root / "run" / "metrics.jsonl").read_text().splitlines()]
        curve = [(r["step"], round(r["eval_accuracy"], 3)) for r in rows if "eval_accuracy" in r]
        baselines = blind_baselines(questions, root / "kitchen" / "annotations", root / "eval")
        chance = baselines["random"]
        checkpoint = root / "run" / "checkpoints" / f"step-{args.steps:06d}"
        letters = letters_accuracy(checkpoint, questions, videos, root / "eval-letters")
        n_questions = sum(1 for _ in questions.open())
        n_records = len(load_records(mixture, 0))
    report = {
        "questions": n_questions,
        "records": n_records,
        "prepare_s": round(prepared, 1),
        "train_s": round(trained, 1),
        "final_loss": summary["loss"],
        "accuracy_text_by_step": curve,
        "accuracy_letters_final": letters,
        "random_baseline": chance,
        "prior_baseline": baselines["prior"],
    }
    print(json.dumps(report, indent=2))
    best = curve[-1][1]
    against = (f"random {100 * chance:.1f}%, train-frequency prior "
               f"{100 * baselines['prior']:.1f}%; {n_questions} hard (prior-hard) validation "
               f"questions, {args.steps} steps in {trained:.0f} s")  # fmt: skip
    figures.figure("hard_mqa_option_likelihood", 100 * best, "%", reference=against,
                   target="above random", met=best > chance)  # fmt: skip
    figures.figure("hard_mqa_letters", 100 * letters, "%", reference=against,
                   target="above random", met=letters > chance)  # fmt: skip


if __name__ == "__main__":
    main()
