"""Is the demo's null pair a fair null? A third random-MQA twin per seed.

The demo trains two random-MQA arms that differ only in their training seed (``random-mqa``,
seed K; ``random-mqa-null``, K + 1000) and reads their difference as training noise. Over the
seeds of ``bench_demo_seeds.py`` that difference came out positive on average, so here each
finished seed trains a third twin (``random-mqa-null2``, K + 2000, the same records and
recipe) and asks it the demo's hard MQA and, where ``bench_demo_power.py`` has written it, the
fresh kitchen's. Per question set, with the seeds as the unit
(:func:`verbnoun.evaluate.findings.across_seeds`):

* each pair of the three twins: if ``random-mqa`` (seed K) is no better than the third twin,
  the null pair's positive mean was its twin's bad luck, not something about seed K;
* the hard-MQA arm against each twin and (reported) against the twins' mean.

    .venv/bin/python benchmarks/bench_demo_twins.py --out runs/demo-seeds [--seeds 0 1 ...]
        [--record] [--quick]

The twin and its runs are kept under ``OUT/seed-K/twins/`` and reused.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

TWIN_SEED = 2000  # the third twin trains with seed K + 2000 (the null twin: K + 1000)
TWIN = "random-mqa-null2"
QUICK_DEMO = {"videos": 6, "validation_videos": 0, "steps": 2, "batch": 4, "warmup": 1,
              "specialist_epochs": 1, "mqa_copies": 1, "base": "scratch"}  # fmt: skip


def twin_runs(seed_dir: Path, seed: int) -> dict[str, list]:
    """Train the third twin (once) and ask it each question set; returns, per set, the four
    runs (hard arm, two twins of the demo, the third twin) relabelled by arm."""
    import json

    from verbnoun.demo import DemoRecipe, _train, base_checkpoint
    from verbnoun.evaluate.frames import CachedFrames, make_frame_source
    from verbnoun.evaluate.local_adapter import LlavactionAdapter
    from verbnoun.evaluate.runner import EvalSettings, run_evaluation
    from verbnoun.evaluate.score import load_run

    made = json.loads((seed_dir / "summary.json").read_text())["recipe"]
    recipe = DemoRecipe(**{k: v for k, v in made.items() if k in DemoRecipe.__dataclass_fields__})
    checkpoint = _train(seed_dir / "twins" / TWIN, seed_dir / "sft" / "mixture-random.yaml",
                        seed_dir / "kitchen" / "videos", recipe, base_checkpoint(recipe),
                        seed + TWIN_SEED, False)  # fmt: skip
    sets = {"demo": (seed_dir / "kitchen", seed_dir / "mqa" / "validation-hard.jsonl",
                     seed_dir / "eval", "hard-")}  # fmt: skip
    fresh = seed_dir / "power"
    if (fresh / "eval-known").is_dir():
        sets["fresh"] = (fresh / "kitchen", fresh / "validation-hard-known.jsonl",
                         fresh / "eval-known", "")  # fmt: skip
    settings = EvalSettings(frames=recipe.frames, size=recipe.size)
    adapter = None
    out = {}
    for name, (kitchen, questions, evals, prefix) in sets.items():
        run_dir = seed_dir / "twins" / f"{name}-{TWIN}"
        if not (run_dir / "metrics.json").is_file():
            adapter = adapter or LlavactionAdapter(checkpoint, mode="letters", device="cpu")
            source = CachedFrames(make_frame_source(kitchen / "videos", "chunks", recipe.frames,
                                                    recipe.size))  # fmt: skip
            run_evaluation(questions, adapter, run_dir, settings, frame_source=source,
                           progress=False, annotations=kitchen / "annotations")  # fmt: skip
        runs = [load_run(evals / f"{prefix}{arm}")
                for arm in ("model", "random-mqa", "random-mqa-null")]  # fmt: skip
        runs.append(load_run(run_dir))
        for run, arm in zip(runs, ("model", "random-mqa", "random-mqa-null", TWIN), strict=True):
            run.path = Path(arm)  # the label the claims name
        out[name] = runs
    return out


def main() -> None:
    from verbnoun.evaluate.findings import Claim, across_seeds, correctness

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/demo-seeds"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--record", action="store_true",
                        help="Also write the figures into benchmarks/results.json.")  # fmt: skip
    parser.add_argument("--quick", action="store_true",
                        help="A tiny demo seed in a temporary folder.")  # fmt: skip
    args = parser.parse_args()
    if args.quick:
        import tempfile

        from verbnoun.demo import run_demo

        args.out, args.seeds = Path(tempfile.mkdtemp(prefix="demo-twins-")), [0, 1]
        for seed in args.seeds:  # two: the seeds are the unit
            run_demo(args.out / f"seed-{seed}", seed=seed, **QUICK_DEMO)
    by_set: dict[str, list] = {}
    for seed in args.seeds:
        seed_dir = args.out / f"seed-{seed}"
        if not (seed_dir / "summary.json").is_file():
            print(f"seed {seed}: no finished demo in {seed_dir}, left out", flush=True)
            continue
        for name, runs in twin_runs(seed_dir, seed).items():
            by_set.setdefault(name, []).append(runs)
            print(f"seed {seed}, {name}: " + ", ".join(
                f"{run.label} {100 * sum(correctness(run).values()) / len(correctness(run)):.1f}%"
                for run in runs), flush=True)  # fmt: skip
    if not by_set:
        sys.exit(f"{args.out}: no finished seed of bench_demo_seeds.py")
    pairs = [("random-mqa", "random-mqa-null"), ("random-mqa", TWIN), ("random-mqa-null", TWIN),
             ("model", "random-mqa"), ("model", "random-mqa-null"), ("model", TWIN)]  # fmt: skip
    figures = {}
    for name, run_sets in by_set.items():
        print(f"\n{name} hard MQA over {len(run_sets)} seeds (the seeds as the unit):")
        for better, worse in pairs:
            a = across_seeds(Claim(f"{better} beats {worse}", better, worse), run_sets)
            if a["seeds"] < 2:
                continue
            print(f"  {better} - {worse}: {100 * a['mean']:+.2f} points [{100 * a['low']:+.2f}, "
                  f"{100 * a['high']:+.2f}], one-sided p={a['p_value']:.2g}")  # fmt: skip
            key = f"{name}_{better}_vs_{worse}".replace("-", "_")
            figures[key] = a
    if args.quick or args.record:  # imported here: the script also runs from a copy elsewhere
        from results import Report, seeds_reference

        report = Report("bench_demo_twins", args.quick)
        for key, a in figures.items():
            report.figure(key, value=100 * a["mean"], unit="points", reference=seeds_reference(a))
    if args.quick:
        import shutil

        shutil.rmtree(args.out, ignore_errors=True)


if __name__ == "__main__":
    main()
