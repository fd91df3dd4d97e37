"""Time building the whole EK100 validation benchmark, CSV parsing included.

Target: under 2 s on a 2-core machine. Reference measured in the same run: ``pandas.read_csv`` of
the validation CSV alone (parsing only, no validation, no questions).

    .venv/bin/python benchmarks/bench_mqa_build.py [--annotations DIR] [--repeats 3] [--quick]

``--quick``: the same builds, once each, on the annotations of an 8-video synthetic kitchen.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from results import Report, quick_flag
from timing import best_of

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared/data/epic-kitchens-100-annotations"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--annotations", type=Path, default=DEFAULT)
    parser.add_argument("--repeats", type=int, default=3)
    quick_flag(parser)
    args = parser.parse_args()
    report = Report("bench_mqa_build", args.quick)

    import pandas as pd

    from verbnoun.bench.build import BuildSettings, build_benchmark

    with tempfile.TemporaryDirectory() as tmp:
        if args.quick:
            from verbnoun.data.kitchen import kitchen_script, write_kitchen_annotations

            args.annotations = Path(tmp) / "kitchen"
            write_kitchen_annotations(args.annotations, kitchen_script(8, 0))
            args.repeats = 1
        csv = args.annotations / "EPIC_100_validation.csv"
        results = {}
        for strategy in ("random", "prior-hard"):
            out = Path(tmp) / f"{strategy}.jsonl"
            settings = BuildSettings(distractors=strategy)
            results[strategy] = best_of(
                lambda out=out, settings=settings: build_benchmark(args.annotations, out, settings),
                args.repeats,
                warm_up=False,
            )
        reference = best_of(lambda: pd.read_csv(csv), args.repeats, warm_up=False)
    print(f"pandas.read_csv(EPIC_100_validation.csv) alone: {reference:.3f} s (reference)")
    for strategy, seconds in results.items():
        report.figure(
            f"build_{strategy.replace('-', '_')}",
            seconds,
            "s",
            reference=f"pandas.read_csv of the CSV alone {reference:.3f} s "
            f"({seconds / reference:.1f}x); best of {args.repeats}",
            target="< 2 s",
            met=seconds < 2.0,
        )


if __name__ == "__main__":
    main()
