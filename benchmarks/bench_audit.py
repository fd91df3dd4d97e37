"""The blind audit of random, prior-hard and prior-grid distractors on the real EK100 validation.

For each strategy, builds the validation benchmark and a training question file from the train
split with the same strategy (what a blind reader would be trained on), then audits validation
two ways: rules fitted on that training file, and rules cross-fitted on validation itself (two
folds by video). Prints every rule's accuracy, gain over chance and 95% interval, the build and
audit wall times (the same run's random build is the reference), and the target:

* prior-grid: every rule within 5 points of chance (both ways);
* an audit of the 9,668 validation questions in seconds (wall and CPU time: on a shared machine
  the CPU time is the figure to read; the first audit also pays for importing scikit-learn).

With ``--kitchen-seeds N`` it also pools the audit of N demo-size synthetic kitchens
(``kitchen_script(40, seed)``, each audited with its own train split) for prior-grid.

    .venv/bin/python benchmarks/bench_audit.py [--annotations DIR] [--kitchen-seeds 10] [--quick]

``--quick``: a 16-video synthetic kitchen's annotations in place of EK100, one 8-video kitchen
for the pooled audit.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from results import Report, quick_flag

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared/data/epic-kitchens-100-annotations"
STRATEGIES = ("random", "prior-hard", "prior-grid")
TARGET_POINTS = 5.0


def show(label: str, audit: dict, seconds: float) -> float:
    """Print one audit on one line; returns the largest |gain| over chance, in points."""
    parts = []
    for rule, result in audit["rules"].items():
        low, high = result["ci95"]
        parts.append(f"{rule} {100 * result['accuracy']:5.1f} [{100 * low:4.1f}-{100 * high:4.1f}]")
    worst = max(abs(100 * r["gain"]) for r in audit["rules"].values())
    print(f"  {label:34s} chance {100 * audit['chance']:.1f} | " + " | ".join(parts)
          + f" | max |gain| {worst:.1f} pts | {seconds:.1f} s")  # fmt: skip
    return worst


def kitchens(seeds: int, root: Path, videos: int = 40) -> float:
    """Pooled prior-grid audit over demo-size kitchens; returns the largest |gain| in points."""
    from verbnoun.bench.audit import audit_file
    from verbnoun.bench.build import BuildSettings, build_benchmark
    from verbnoun.data.kitchen import kitchen_script, write_kitchen_annotations

    right: dict[str, int] = {}
    questions, chance = 0, 0.0
    for seed in range(seeds):
        folder = root / f"kitchen-{seed}"
        annotations = write_kitchen_annotations(folder / "a", kitchen_script(videos, seed))
        for split in ("train", "validation"):
            settings = BuildSettings(split=split, distractors="prior-grid", seed=seed)
            build_benchmark(annotations, folder / f"{split}.jsonl", settings)
        audit = audit_file(folder / "validation.jsonl", [folder / "train.jsonl"])
        questions += audit["questions"]
        chance += audit["chance"] * audit["questions"]
        for rule, result in audit["rules"].items():
            right[rule] = right.get(rule, 0) + result["correct"]
    chance /= questions
    gains = {rule: 100 * (count / questions - chance) for rule, count in right.items()}
    print(f"\nprior-grid on {seeds} demo-size kitchens ({videos} videos, seeds 0-{seeds - 1}), pooled "
          f"{questions} validation questions, rules fitted on each kitchen's train split:")  # fmt: skip
    print("  " + " | ".join(f"{r} {100 * right[r] / questions:.1f}" for r in right)
          + f" | chance {100 * chance:.1f}")  # fmt: skip
    return max(abs(g) for g in gains.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--annotations", type=Path, default=DEFAULT)
    parser.add_argument("--kitchen-seeds", type=int, default=10)
    quick_flag(parser)
    args = parser.parse_args()
    report = Report("bench_audit", args.quick)
    kitchen_videos = 40

    from verbnoun.bench.audit import audit_file
    from verbnoun.bench.build import BuildSettings, build_benchmark

    worst: dict[str, float] = {}
    audit_seconds = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.quick:
            from verbnoun.data.kitchen import kitchen_script, write_kitchen_annotations

            args.annotations = write_kitchen_annotations(root / "quick", kitchen_script(16, 0))
            args.kitchen_seeds, kitchen_videos = 1, 8
        for strategy in STRATEGIES:
            files = {}
            times = {}
            for split in ("validation", "train"):
                files[split] = root / f"{split}-{strategy}.jsonl"
                start = time.perf_counter()
                manifest = build_benchmark(
                    args.annotations, files[split], BuildSettings(split=split, distractors=strategy)
                )
                times[split] = time.perf_counter() - start
            rule = manifest.get("distractor_rule", {}).get("fit")
            print(f"\n{strategy}: built validation in {times['validation']:.1f} s, train "
                  f"({manifest['counts']['questions']} questions) in {times['train']:.1f} s"
                  + (f"; fit {rule}" if rule else ""))  # fmt: skip
            for mode, train in (("with the train split", [files["train"]]),
                                ("cross-fitted", [])):  # fmt: skip
                start, cpu = time.perf_counter(), time.process_time()
                audit = audit_file(files["validation"], train)
                seconds = time.perf_counter() - start
                audit_seconds.append((mode, seconds, time.process_time() - cpu))
                gain = show(f"rules {mode}", audit, seconds)
                worst[strategy] = max(worst.get(strategy, 0.0), gain)
        kitchen = (kitchens(args.kitchen_seeds, root, kitchen_videos)
                   if args.kitchen_seeds else None)  # fmt: skip
    grid = worst["prior-grid"]
    report.figure("validation_prior_grid_max_gain", grid, "points",
                  reference=f"random {worst['random']:.1f}, prior-hard {worst['prior-hard']:.1f} "
                            "points (largest |gain| over chance of a blind rule, both ways)",
                  target=f"<= {TARGET_POINTS:g} points", met=grid <= TARGET_POINTS)  # fmt: skip
    if kitchen is not None:
        report.figure("kitchens_prior_grid_max_gain", kitchen, "points",
                      reference=f"pooled over {args.kitchen_seeds} kitchens of "
                                f"{kitchen_videos} videos", target=f"<= {TARGET_POINTS:g} points",
                      met=kitchen <= TARGET_POINTS)  # fmt: skip
    for mode in ("cross-fitted", "with the train split"):
        wall = [w for m, w, _ in audit_seconds if m == mode]
        cpu = [c for m, _, c in audit_seconds if m == mode]
        key = "audit_cpu_" + ("cross_fitted" if mode == "cross-fitted" else "with_train")
        report.figure(key, max(cpu), "s",
                      reference=f"wall {min(wall):.1f}-{max(wall):.1f} s, CPU {min(cpu):.1f}-"
                                f"{max(cpu):.1f} s over the three strategies; the validation "
                                "questions, rules " + mode)  # fmt: skip


if __name__ == "__main__":
    main()
