"""Does the demo's finding hold beyond one seed? ``make demo``'s pipeline for several seeds.

Each seed varies everything the demo draws: the kitchen (videos, segments, actions), the
specialist (folds, initialisation), the benchmarks' and the SFT data's distractors, and the
fine-tuning (data order, new heads' init). Per seed the whole demo runs into ``OUT/seed-K`` (a
finished seed is only read back, a killed one resumes its stages; ``--seeds 0 1`` runs a subset
and a later call adds the others); then it prints every claim of the demo
(:func:`verbnoun.demo.demo_claims`) with the number of seeds in which it held (effect > 0 and
exact McNemar p < 0.05 on that seed's questions), the number in which the effect was merely
positive, and the pooled paired test over all seeds' questions, and the issue's targets, each
with its figure and whether it is met:

* the hard-MQA arm beats the random-MQA arm on hard MQA by letters with p < 0.05 in >= 4 of 5
  seeds (80 % of the seeds run) and pooled p < 0.01;
* with frames from another clip, the pooled gain is within 2 points of zero;
* letter accuracy >= 60 % on random MQA for both arms (pooled over the seeds' questions);
* both arms beat the blind reader (fitted on the hard arm's SFT MQA records) on hard MQA
  (pooled effect > 0, p < 0.05);
* the null pair (two random-MQA arms, different training seeds) differs significantly
  (p < 0.05, either way) in at most 1 of 5 seeds (20 % of the seeds run).

Beside them, without a target, the claim and the null pair with the seeds as the unit
(:func:`verbnoun.evaluate.findings.across_seeds`: mean effect, 95 % t-interval, one-sided
t-test): training noise is shared by every question of a seed, which the per-question McNemar
test does not see.

The time of each seed is measured as wall time and as CPU time (user + system of this process
and its finished children): on a shared machine the wall time grows with the load, the CPU time
much less, so the CPU time is the better guide to ``make demo`` on 2 idle cores.

    .venv/bin/python benchmarks/bench_demo_seeds.py [--seeds 0 1 2 3 4] [--out runs/demo-seeds]
        [--finished-only] [--steps 200 --lr 3e-4 ...]   # fields of verbnoun.demo.DemoRecipe
        [--record]   # also write the figures into benchmarks/results.json
        [--quick]    # one tiny seed (6 videos, 2 steps per arm) in a temporary folder

``--record`` writes the targets' figures (:func:`target_figures`) into the benchmarks' table through
``benchmarks/results.py``; with ``--finished-only`` it only reads finished seeds back, so
``--finished-only --record --out DIR`` records a finished run's figures without running anything.
``--quick`` checks this script's whole path in a minute; its figures mean nothing and never
reach the table.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from dataclasses import asdict, fields
from pathlib import Path

NULL_PAIR = ("hard-random-mqa", "hard-random-mqa-null")  # two random-MQA arms, other seeds
QUICK_RECIPE = {"videos": 6, "validation_videos": 0, "steps": 2, "batch": 4, "warmup": 1,
                "specialist_epochs": 1, "mqa_copies": 1, "base": "scratch"}  # fmt: skip


def cpu_seconds() -> float:
    """User + system CPU of this process and its waited-for children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


# recipe fields added after seeds had been run, with the value that does what those runs did
# (0: the release's pool of 2K; no validation videos beyond the kitchen's own)
LEGACY_RECIPE = {"specialist_pool": 0, "validation_videos": 0}


def same_recipe(out: Path, seed: int, recipe) -> bool:
    """Whether a seed's folder was made with ``recipe`` (or holds nothing yet)."""
    summary = out / "summary.json"
    if not summary.is_file():
        return True
    made = {**LEGACY_RECIPE, **json.loads(summary.read_text()).get("recipe", {})}
    return all(made.get(k) == v for k, v in {**asdict(recipe), "seed": seed}.items())


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


def _recipe_arguments(parser: argparse.ArgumentParser) -> None:
    from verbnoun.demo import DemoRecipe

    defaults = DemoRecipe()
    for f in fields(DemoRecipe):
        default = getattr(defaults, f.name)
        kind = (
            (lambda text: text.lower() in ("1", "true", "yes"))
            if isinstance(default, bool)
            else type(default)
        )
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=kind,
                            help=f"DemoRecipe.{f.name} (default {default!r})")  # fmt: skip


def targets(run_sets: list, summaries: list[dict]) -> list[tuple[str, bool | None, str]]:
    """The issue's targets over the seeds: (target, met, the figures); ``met`` is ``None`` for
    a figure reported without a target."""
    from verbnoun.evaluate.findings import Claim, across_seeds, pooled, pooled_accuracy

    n = len(run_sets)
    result = []
    main_claim = Claim("hard vs random", "hard-model", "hard-random-mqa")
    main = pooled(main_claim, run_sets)
    result.append((
        "hard beats random on hard MQA (letters): p < 0.05 in >= 4 of 5 seeds, pooled p < 0.01",
        main["held"] >= 0.8 * n and main["p_value"] < 0.01,
        f"held in {main['held']}/{n} (positive in {main['positive']}/{n}); pooled "
        f"{100 * main['effect']:+.1f} points on {main['questions']} questions, "
        f"p={main['p_value']:.2g}",
    ))  # fmt: skip
    for text, claim in (
        ("the same with the seeds as the unit (reported, no target)", main_claim),
        (
            "the null pair with the seeds as the unit (reported, no target)",
            Claim("null pair", *NULL_PAIR),
        ),
    ):
        a = across_seeds(claim, run_sets)
        if a["seeds"] > 1:
            result.append((text, None, f"mean {100 * a['mean']:+.2f} points, 95% t-interval "
                                       f"[{100 * a['low']:+.2f}, {100 * a['high']:+.2f}], "
                                       f"one-sided p={a['p_value']:.2g}"))  # fmt: skip
    other = pooled(
        Claim("other clip", "hard-model-other-clip", "hard-random-mqa-other-clip"), run_sets
    )
    result.append((
        "with frames from another clip the pooled gain is within 2 points of zero",
        abs(other["effect"]) <= 0.02,
        f"pooled {100 * other['effect']:+.1f} points (p={other['p_value']:.2g}), positive in "
        f"{other['positive']}/{n} seeds",
    ))  # fmt: skip
    blank = pooled(Claim("blank", "hard-model-blank", "hard-random-mqa-blank"), run_sets)
    result.append((
        "with blank frames, the pooled gain (reported, no target)",
        None,
        f"pooled {100 * blank['effect']:+.1f} points (p={blank['p_value']:.2g})",
    ))  # fmt: skip
    cells = []
    met = True
    for arm in ("model", "random-mqa"):
        acc, count = pooled_accuracy(run_sets, f"random-{arm}")
        seeds = [s["accuracy"].get(arm, {}).get("random") for s in summaries]
        met = met and acc >= 0.60
        cells.append(
            f"{arm} {100 * acc:.1f}% of {count} (seeds "
            + ", ".join(f"{100 * a:.1f}" if a is not None else "-" for a in seeds)
            + ")"
        )
    result.append(("letters >= 60% on random MQA for both arms", met, "; ".join(cells)))
    cells, met = [], True
    for arm in ("model", "random-mqa"):
        test = pooled(Claim("blind", f"hard-{arm}", "hard-blind"), run_sets)
        met = met and test["effect"] > 0 and test["p_value"] < 0.05
        cells.append(
            f"{arm} {100 * test['effect']:+.1f} points over it (p={test['p_value']:.2g}, held "
            f"in {test['held']}/{n} seeds)"
        )
    blind, _ = pooled_accuracy(run_sets, "hard-blind")
    result.append((
        "both arms beat the blind reader on hard MQA (pooled p < 0.05)",
        met,
        f"blind reader {100 * blind:.1f}%; " + "; ".join(cells),
    ))  # fmt: skip
    nulls = [s.get("controls", {}).get("null_pair", {}).get("hard") for s in summaries]
    differs = sum(bool(x and x["differs"]) for x in nulls)
    result.append((
        "the null pair differs significantly in at most 1 of 5 seeds",
        differs <= 0.2 * n,
        f"differs in {differs}/{n}; per seed "
        + ", ".join(f"{100 * x['difference']:+.1f} (p={x['mcnemar']['p_value']:.2g})"
                    for x in nulls if x),
    ))  # fmt: skip
    return result


def target_figures(run_sets: list, summaries: list[dict], timings: list[dict]) -> dict[str, dict]:
    """The targets' figures as numbers (key -> :meth:`results.Report.figure` arguments)."""
    from results import seeds_reference

    from verbnoun.evaluate.findings import Claim, across_seeds, pooled, pooled_accuracy

    n = len(run_sets)
    out = {}
    main = pooled(Claim("hard vs random", "hard-model", "hard-random-mqa"), run_sets)
    out["hard_vs_random_seeds_held"] = dict(
        value=main["held"], unit=f"of {n} seeds",
        reference=f"pooled {100 * main['effect']:+.1f} points on {main['questions']} questions, "
                  f"p={main['p_value']:.2g}",
        target="p < 0.05 in >= 80% of seeds, pooled p < 0.01",
        met=main["held"] >= 0.8 * n and main["p_value"] < 0.01)  # fmt: skip
    for key, claim in (
        ("hard_vs_random_seed_mean", Claim("hard vs random", "hard-model", "hard-random-mqa")),
        ("null_pair_seed_mean", Claim("null pair", *NULL_PAIR)),
    ):
        a = across_seeds(claim, run_sets)  # the seeds as the unit: training noise included
        if a["seeds"] > 1:
            out[key] = dict(value=100 * a["mean"], unit="points", reference=seeds_reference(a))
    other = pooled(
        Claim("other clip", "hard-model-other-clip", "hard-random-mqa-other-clip"), run_sets
    )
    out["other_clip_pooled_gain"] = dict(
        value=100 * other["effect"], unit="points", reference=f"p={other['p_value']:.2g}",
        target="within 2 points of zero", met=abs(other["effect"]) <= 0.02)  # fmt: skip
    for arm in ("model", "random-mqa"):
        acc, count = pooled_accuracy(run_sets, f"random-{arm}")
        out[f"random_mqa_letters_{arm.replace('-', '_')}"] = dict(
            value=100 * acc, unit="%", reference=f"{count} questions pooled over {n} seeds",
            target=">= 60%", met=acc >= 0.60)  # fmt: skip
    blind, _ = pooled_accuracy(run_sets, "hard-blind")
    for arm in ("model", "random-mqa"):
        test = pooled(Claim("blind", f"hard-{arm}", "hard-blind"), run_sets)
        out[f"over_blind_reader_{arm.replace('-', '_')}"] = dict(
            value=100 * test["effect"], unit="points",
            reference=f"blind reader {100 * blind:.1f}% on hard MQA; p={test['p_value']:.2g}",
            target="> 0, pooled p < 0.05",
            met=test["effect"] > 0 and test["p_value"] < 0.05)  # fmt: skip
    base, count = pooled_accuracy(run_sets, "hard-base")
    for arm in ("model", "random-mqa") if count else ():  # how far fine-tuning moved each arm
        test = pooled(Claim("base", f"hard-{arm}", "hard-base"), run_sets)
        out[f"over_base_{arm.replace('-', '_')}"] = dict(
            value=100 * test["effect"], unit="points",
            reference=f"the base both arms start from, {100 * base:.1f}% on hard MQA; "
                      f"p={test['p_value']:.2g}, held in {test['held']}/{n} seeds")  # fmt: skip
    nulls = [s.get("controls", {}).get("null_pair", {}).get("hard") for s in summaries]
    differs = sum(bool(x and x["differs"]) for x in nulls)
    out["null_pair_differs"] = dict(
        value=differs, unit=f"of {n} seeds", reference="two random-MQA arms, other seed",
        target="<= 20% of seeds", met=differs <= 0.2 * n)  # fmt: skip
    cpus = [t["cpu_s"] for t in timings]
    walls = [t["wall_s"] for t in timings]
    out["cpu_per_seed"] = dict(
        value=max(cpus), unit="s", reference=f"CPU (user+sys) {min(cpus):.0f}-{max(cpus):.0f} s, "
        f"wall {min(walls):.0f}-{max(walls):.0f} s per seed")  # fmt: skip
    return out


def main() -> None:
    from verbnoun.demo import DemoRecipe, demo_claims
    from verbnoun.evaluate.findings import layout, pooled

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--out", type=Path, default=Path("runs/demo-seeds"))
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    parser.add_argument(
        "--finished-only", action="store_true", help="Only read the seeds already finished."
    )
    parser.add_argument("--record", action="store_true",
                        help="Also write the figures into benchmarks/results.json.")  # fmt: skip
    parser.add_argument("--quick", action="store_true",
                        help="One tiny seed in a temporary folder (the suite runs it).")  # fmt: skip
    _recipe_arguments(parser)
    args = parser.parse_args()
    if args.quick:
        import tempfile

        args.seeds, args.out = [0], Path(tempfile.mkdtemp(prefix="demo-seeds-quick-"))
        for name, value in QUICK_RECIPE.items():
            setattr(args, name, value)
    changes = {
        f.name: getattr(args, f.name)
        for f in fields(DemoRecipe)
        if getattr(args, f.name) is not None
    }
    recipe = DemoRecipe(**changes)
    print(f"recipe: {asdict(recipe)}", flush=True)
    run_sets, timings, summaries, seeds = [], [], [], []
    for seed in args.seeds:
        out = args.out / f"seed-{seed}"
        if not same_recipe(out, seed, recipe):
            sys.exit(f"{out}: made with another recipe (see its summary.json); use another --out")
        if args.finished_only and not (out / "summary.json").is_file():
            print(f"seed {seed}: not finished, left out", flush=True)
            continue
        timing = run_seed(out, seed, recipe)
        runs = load_runs(out)
        summary = json.loads((out / "summary.json").read_text())
        run_sets.append(runs)
        timings.append(timing)
        summaries.append(summary)
        seeds.append(seed)
        gain = summary["hard_training"]
        print(
            f"seed {seed}: {timing['wall_s']:.0f} s wall, {timing['cpu_s']:.0f} s CPU; hard MQA "
            f"{100 * gain['hard_mqa_model']:.1f}% (hard-trained) vs "
            f"{100 * gain['random_mqa_model']:.1f}% (random-trained), "
            f"p={gain['mcnemar']['p_value']:.2g}",
            flush=True,
        )
    if not run_sets:
        sys.exit("no finished seed")
    results = [pooled(claim, run_sets) for claim in demo_claims()]
    n = len(run_sets)
    print(f"\nper claim over {n} seeds {seeds} (held: effect > 0 and p < 0.05 in that seed):")
    for r in results:
        if not r["sets"]:
            continue
        print(
            f"  {r['claim']}: held in {r['held']}/{r['sets']} seeds (positive in "
            f"{r['positive']}/{r['sets']}); pooled {r['questions']} questions: "
            f"{100 * r['effect']:+.1f} points, {r['a_only']} vs {r['b_only']} discordant, "
            f"McNemar p={r['p_value']:.2g}"
        )
    checked = targets(run_sets, summaries)
    print(f"\ntargets over {n} seeds:")
    for text, met, figures in checked:
        mark = "reported" if met is None else "met" if met else "NOT met"
        print(f"  [{mark}] {text}: {figures}")
    print("\nmean accuracy over the seeds (random MQA / prior-rule MQA / hard MQA):")
    grids = [layout(runs) for runs in run_sets]
    for model in (m["name"] for m in grids[0]["models"]):
        cells = []
        for bench in ("validation-random", "validation-grid", "validation-hard"):
            values = [
                g["cells"][model][bench]["accuracy"]
                for g in grids
                if bench in g["cells"].get(model, {})
            ]
            cells.append(f"{100 * sum(values) / len(values):.1f}%" if values else "-")
        print(f"  {model:<24} {' / '.join(cells)}")
    walls = [t["wall_s"] for t in timings]
    cpus = [t["cpu_s"] for t in timings]
    print(
        f"\ntime per seed: wall {min(walls):.0f}-{max(walls):.0f} s, CPU (user+sys) "
        f"{min(cpus):.0f}-{max(cpus):.0f} s"
    )
    if args.json:
        data = {"recipe": asdict(recipe), "seeds": seeds, "timings": timings, "claims": results,
                "targets": [{"target": t, "met": m, "figures": f} for t, m, f in checked]}  # fmt: skip
        args.json.write_text(json.dumps(data, indent=2) + "\n")
    if args.quick or args.record:  # imported here: the script also runs from a copy elsewhere
        from results import Report

        report = Report("bench_demo_seeds", args.quick)
        for key, fields_ in target_figures(run_sets, summaries, timings).items():
            report.figure(key, **fields_)
    if args.quick:
        import shutil

        shutil.rmtree(args.out, ignore_errors=True)


if __name__ == "__main__":
    main()
