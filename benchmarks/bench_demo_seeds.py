"""Does the demo's finding hold beyond one seed? ``make demo``'s pipeline for several seeds.

Each seed varies everything the demo draws: the kitchen (videos, segments, actions), the
specialist (folds, initialisation), the benchmarks' and the SFT data's distractors, and the
trained models (initialisation, data order). Per seed the whole demo runs into ``OUT/seed-K``
(a finished seed is only read back, a killed one resumes its stages); then each of the demo's claims
(:func:`verbnoun.demo.demo_claims`) is printed with the number of seeds in which it held
(effect > 0 and exact McNemar p < 0.05 on that seed's questions), the number in which the
effect was merely positive, and the pooled paired test over all seeds' questions.

The time of each seed is measured as wall time and as CPU time (user + system of this process
and its finished children): on a shared machine the wall time grows with the load, the CPU time
much less, so the CPU time is the better guide to ``make demo`` on 2 idle cores.

    .venv/bin/python benchmarks/bench_demo_seeds.py [--seeds 0 1 2 3 4] [--out runs/demo-seeds]
        [--videos 40 --steps 800 ...]   # recipe fields of verbnoun.demo.DemoRecipe
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from dataclasses import asdict, fields
from pathlib import Path


def cpu_seconds() -> float:
    """User + system CPU of this process and its waited-for children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_seed(out: Path, seed: int, recipe) -> dict:
    """The demo for one seed; its time is kept in ``timing.json`` from the first full run."""
    from verbnoun.demo import run_demo

    timing_file = out / "timing.json"
    if not (out / "summary.json").is_file():  # finished seeds are only read back
        wall, cpu = time.perf_counter(), cpu_seconds()
        run_demo(out, seed=seed, recipe=recipe)
        wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
        timing_file.write_text(json.dumps({"wall_s": wall, "cpu_s": cpu}) + "\n")
    if timing_file.is_file():
        return json.loads(timing_file.read_text())
    return {"wall_s": float("nan"), "cpu_s": float("nan")}


def load_runs(out: Path) -> list:
    from verbnoun.evaluate.score import load_run

    return [load_run(path) for path in sorted((out / "eval").iterdir()) if path.is_dir()]


def main() -> None:
    from verbnoun.demo import DemoRecipe, demo_claims
    from verbnoun.evaluate.findings import check_claims, layout, pooled

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--out", type=Path, default=Path("runs/demo-seeds"))
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    defaults = DemoRecipe()
    for f in fields(DemoRecipe):
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=type(getattr(defaults, f.name)))
    args = parser.parse_args()
    changes = {f.name: getattr(args, f.name) for f in fields(DemoRecipe) if getattr(args, f.name)}
    recipe = DemoRecipe(**changes)
    print(f"recipe: {asdict(recipe)}", flush=True)
    run_sets, timings = [], []
    for seed in args.seeds:
        out = args.out / f"seed-{seed}"
        timing = run_seed(out, seed, recipe)
        runs = load_runs(out)
        run_sets.append(runs)
        timings.append(timing)
        claim = check_claims(demo_claims()[:1], runs)[0]
        print(
            f"seed {seed}: {timing['wall_s']:.0f} s wall, {timing['cpu_s']:.0f} s CPU; hard MQA "
            f"{100 * claim['accuracy_a']:.1f}% (hard-trained) vs {100 * claim['accuracy_b']:.1f}%"
            f" (random-trained), p={claim['p_value']:.2g}",
            flush=True,
        )
    results = [pooled(claim, run_sets) for claim in demo_claims()]
    n = len(args.seeds)
    print(f"\nper claim over {n} seeds (held: effect > 0 and p < 0.05 in that seed):")
    for r in results:
        print(
            f"  {r['claim']}: held in {r['held']}/{r['sets']} seeds (positive in "
            f"{r['positive']}/{r['sets']}); pooled {r['questions']} questions: "
            f"{100 * r['effect']:+.1f} points, {r['a_only']} vs {r['b_only']} discordant, "
            f"McNemar p={r['p_value']:.2g}"
        )
    main_claim = results[0]
    met = main_claim["held"] >= 0.8 * n and main_claim["p_value"] < 0.01
    print(
        f"\ntarget for the demo's claim (held in >= 4 of 5 seeds and pooled p < 0.01): "
        f"{'met' if met else 'NOT met'} ({main_claim['held']}/{n}, p={main_claim['p_value']:.2g})"
    )
    print("\nmean accuracy over the seeds (random MQA / hard MQA):")
    grids = [layout(runs) for runs in run_sets]
    for model in (m["name"] for m in grids[0]["models"]):
        cells = []
        for bench in ("validation-random", "validation-hard"):
            values = [g["cells"][model][bench]["accuracy"] for g in grids]
            cells.append(f"{100 * sum(values) / len(values):.1f}%")
        print(f"  {model:<16} {' / '.join(cells)}")
    walls = [t["wall_s"] for t in timings]
    cpus = [t["cpu_s"] for t in timings]
    print(
        f"\ntime per seed: wall {min(walls):.0f}-{max(walls):.0f} s, CPU (user+sys) "
        f"{min(cpus):.0f}-{max(cpus):.0f} s"
    )
    if args.json:
        data = {"recipe": asdict(recipe), "seeds": args.seeds, "timings": timings,
                "claims": results}  # fmt: skip
        args.json.write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    main()
