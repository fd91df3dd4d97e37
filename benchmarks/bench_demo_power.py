"""Is the demo's small hard-vs-random gap real? The arms of ``bench_demo_seeds.py``, asked more
questions than one demo has.

``bench_demo_seeds.py`` judges the paper's claim per seed on about 260 hard questions, too few to
see a gain of a point or two. Here each finished seed of its ``--out`` folder is asked again on a
**fresh kitchen**: rendered with seed 2000 + K (the same verbs, nouns and renderer as the demo's,
videos no model of that seed ever saw), its validation split made into hard MQA with that seed's
own specialist (``predict_specialist``, then ``mqa build`` with specialist distractors, the
demo's rule), kept to the questions whose answer is an action the specialist knows
(``validation-hard-known.jsonl``). The specialist's distractors are always actions it knows, so
on the other questions the answer is the one unfamiliar option, a cue readable without looking
(the demo's own hard questions never have it). The seed's three trained arms and the base they
started from answer by letters, with the seed's frames and size:

* ``model`` (hard MQA) against ``random-mqa`` (random MQA): the claim, on more questions;
* ``random-mqa`` against ``random-mqa-null`` (random MQA again, another training seed): the null
  pair, what training noise alone gives on the same questions;
* ``model`` with frames from another clip against ``random-mqa`` with them: a gain that stays
  does not come from seeing;
* each arm against the untouched base: what fine-tuning on the demo's kitchen did on another.

Each pair: per seed and pooled over the seeds, the difference in points and the exact McNemar
test; then the seeds as the unit (mean effect, 95 % t-interval, one-sided t-test), since
training noise is shared by every question of a seed. There is no target of its own: the issue's targets are per demo, in
``bench_demo_seeds.py``; this says with more power how large the gain is.

    .venv/bin/python benchmarks/bench_demo_power.py --out runs/demo-seeds [--seeds 0 1 2 3 4]
        [--videos 200]   # of each fresh kitchen (about 4 validation questions per video)
        [--record]       # also write the figures into benchmarks/results.json
        [--quick]        # a tiny demo seed and a tiny fresh kitchen in a temporary folder

Everything is written under ``OUT/seed-K/power/`` and reused: a killed run resumes, and a
finished one is only read back.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

FRESH_SEED = 2000  # the fresh kitchens' seeds: 2000 + K (the demo's are K, the base's 10000+)
PAIRS = {
    "the claim: hard-trained beats random-trained": ("model", "random-mqa"),
    "the null pair: random-trained beats its twin": ("random-mqa", "random-mqa-null"),
    "frames from another clip: hard-trained beats random-trained": (
        "model-other-clip",
        "random-mqa-other-clip",
    ),
    "hard-trained beats the base both started from": ("model", "base"),
    "random-trained beats the base both started from": ("random-mqa", "base"),
}
QUICK_DEMO = {"videos": 6, "validation_videos": 0, "steps": 2, "batch": 4, "warmup": 1,
              "specialist_epochs": 1, "mqa_copies": 1, "base": "scratch"}  # fmt: skip


def fresh_questions(seed_dir: Path, seed: int, videos: int) -> tuple[Path, Path, Path]:
    """The fresh kitchen of ``seed`` (rendered once) and its hard MQA, written with the seed's
    specialist; returns the annotations, the videos and the question file."""
    from verbnoun.bench.build import BuildSettings, build_benchmark
    from verbnoun.bench.questions import read_questions, write_questions
    from verbnoun.data.layouts import make_layout
    from verbnoun.data.synth import render_kitchen
    from verbnoun.fileio import read_json, write_json
    from verbnoun.train.specialist import predict_specialist

    power = seed_dir / "power"
    kitchen = power / "kitchen"
    made = {"videos": videos, "seed": FRESH_SEED + seed}
    marker = kitchen / "kitchen.json"
    if not marker.is_file() or json.loads(marker.read_text()) != made:
        render_kitchen(kitchen, videos=videos, seed=FRESH_SEED + seed)
        write_json(marker, made)
    annotations, video_root = kitchen / "annotations", kitchen / "videos"
    predictions = power / "predictions_validation.json"
    if not predictions.is_file():
        layout = make_layout("chunks", video_root)
        predict_specialist(seed_dir / "specialist", annotations, layout, "validation", predictions)
    every = power / "validation-hard.jsonl"
    if not every.is_file():
        settings = BuildSettings(split="validation", distractors="specialist", seed=seed)
        build_benchmark(annotations, every, settings, predictions)
    # the specialist's distractors are actions it knows; a fresh answer it does not know would
    # be the odd one out, readable without looking: only answers it knows, as in the demo
    known = set(read_json(seed_dir / "specialist" / "specialist.json")["actions"])
    questions = power / "validation-hard-known.jsonl"
    if not questions.is_file():
        write_questions(questions, [q for q in read_questions(every) if q.action_id in known])
    return annotations, video_root, questions


def ask_arms(seed_dir: Path, seed: int, videos: int) -> list:
    """The seed's arms (and the frames control) on its fresh hard MQA; returns the runs."""
    from verbnoun.evaluate.frames import CachedFrames, make_frame_source
    from verbnoun.evaluate.local_adapter import LlavactionAdapter
    from verbnoun.evaluate.runner import EvalSettings, run_evaluation
    from verbnoun.evaluate.score import load_run

    recipe = json.loads((seed_dir / "summary.json").read_text())["recipe"]
    annotations, video_root, questions = fresh_questions(seed_dir, seed, videos)
    frames, size = recipe["frames"], recipe["size"]
    source = CachedFrames(make_frame_source(video_root, "chunks", frames, size))
    checkpoints = {
        arm: seed_dir / "train" / arm / "checkpoints" / f"step-{recipe['steps']:06d}"
        for arm in ("model", "random-mqa", "random-mqa-null")
    }
    if recipe.get("base_checkpoint"):
        checkpoints["base"] = Path(recipe["base_checkpoint"])
    labels = sorted({label for pair in PAIRS.values() for label in pair})
    runs = []
    for label in labels:
        arm = label.removesuffix("-other-clip")
        if arm not in checkpoints:
            continue
        checkpoint = checkpoints[arm]
        run_dir = seed_dir / "power" / "eval-known" / label
        settings = EvalSettings(frames=frames, size=size,
                                frames_control="other-clip" if label != arm else "none")  # fmt: skip
        if not (run_dir / "metrics.json").is_file():
            adapter = LlavactionAdapter(checkpoint, mode="letters", device="cpu")
            run_evaluation(questions, adapter, run_dir, settings, frame_source=source,
                           progress=False, annotations=annotations)  # fmt: skip
        runs.append(load_run(run_dir, annotations=annotations))
    return runs


def main() -> None:
    from verbnoun.evaluate.findings import Claim, across_seeds, pooled, pooled_accuracy

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/demo-seeds"),
                        help="bench_demo_seeds.py's --out (its finished seeds are asked)")  # fmt: skip
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--videos", type=int, default=200, help="videos of each fresh kitchen")
    parser.add_argument("--record", action="store_true",
                        help="Also write the figures into benchmarks/results.json.")  # fmt: skip
    parser.add_argument("--quick", action="store_true",
                        help="A tiny demo seed and fresh kitchen in a temporary folder.")  # fmt: skip
    args = parser.parse_args()
    if args.quick:
        import tempfile

        from verbnoun.demo import run_demo

        args.out, args.seeds, args.videos = Path(tempfile.mkdtemp(prefix="demo-power-")), [0], 15
        run_demo(args.out / "seed-0", seed=0, **QUICK_DEMO)
    run_sets, seeds = [], []
    for seed in args.seeds:
        seed_dir = args.out / f"seed-{seed}"
        if not (seed_dir / "summary.json").is_file():
            print(f"seed {seed}: no finished demo in {seed_dir}, left out", flush=True)
            continue
        runs = ask_arms(seed_dir, seed, args.videos)
        run_sets.append(runs)
        seeds.append(seed)
        by_label = {run.label: run for run in runs}
        print(
            f"seed {seed}: {by_label['model'].metrics['overall']['n']} fresh hard questions; "
            + ", ".join(
                f"{label} {100 * run.metrics['overall']['accuracy']:.1f}%"
                for label, run in by_label.items()
            ),
            flush=True,
        )
    if not run_sets:
        sys.exit(f"{args.out}: no finished seed of bench_demo_seeds.py")
    print(f"\npooled over seeds {seeds} (McNemar on every question; then the seeds as the unit):")
    results, across = {}, {}
    for text, (better, worse) in PAIRS.items():
        claim = Claim(text, better, worse)
        r = results[text] = pooled(claim, run_sets)
        if not r["sets"]:
            continue
        print(
            f"  {text}: {100 * r['effect']:+.2f} points on {r['questions']} questions "
            f"({r['a_only']} vs {r['b_only']} discordant, McNemar p={r['p_value']:.2g}); "
            f"significant in {r['held']}/{r['sets']} seeds, positive in {r['positive']}"
        )
        a = across[text] = across_seeds(claim, run_sets)
        if a["seeds"] > 1:
            print(
                f"    per seed {', '.join(f'{100 * e:+.1f}' for e in a['effects'])}; mean "
                f"{100 * a['mean']:+.2f} points, 95% t-interval [{100 * a['low']:+.2f}, "
                f"{100 * a['high']:+.2f}], one-sided t-test p={a['p_value']:.2g}"
            )
    if args.quick or args.record:  # imported here: the script also runs from a copy elsewhere
        from results import Report, seeds_reference

        report = Report("bench_demo_power", args.quick)
        claim_text, null_text, other_text = list(PAIRS)[:3]
        claim, null, other = results[claim_text], results[null_text], results[other_text]
        report.figure(
            "hard_vs_random_effect", value=100 * claim["effect"], unit="points",
            reference=f"{claim['questions']} fresh hard questions over {len(seeds)} seeds, "
                      f"McNemar p={claim['p_value']:.2g}; the null pair "
                      f"{100 * null['effect']:+.2f} points (p={null['p_value']:.2g}); with other "
                      f"clips' frames {100 * other['effect']:+.2f} (p={other['p_value']:.2g})",
        )  # fmt: skip
        for key, text in zip(("model_over_base", "random_mqa_over_base"), list(PAIRS)[3:],
                             strict=True):  # fmt: skip
            r = results[text]
            if r["sets"]:  # fine-tuning on the demo's kitchen, judged on a fresh one
                report.figure(
                    key, value=100 * r["effect"], unit="points",
                    reference=f"the base {100 * pooled_accuracy(run_sets, 'base')[0]:.1f}% on the same "
                              f"{r['questions']} questions; McNemar p={r['p_value']:.2g}",
                )  # fmt: skip
        for key, text in (("hard_vs_random", claim_text), ("null_pair", null_text)):
            a = across.get(text, {})
            if a.get("seeds", 0) > 1:
                report.figure(f"{key}_seed_mean", value=100 * a["mean"], unit="points",
                              reference=seeds_reference(a))  # fmt: skip
    if args.quick:
        import shutil

        shutil.rmtree(args.out, ignore_errors=True)


if __name__ == "__main__":
    main()
