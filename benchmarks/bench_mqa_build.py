"""Time building the whole EK100 validation benchmark, CSV parsing included.

Target: under 2 s on a 2-core machine. Reference measured in the same run: ``pandas.read_csv`` of
the validation CSV alone (parsing only, no validation, no questions).

    .venv/bin/python benchmarks/bench_mqa_build.py [--annotations DIR] [--repeats 3]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from timing import best_of

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared/data/epic-kitchens-100-annotations"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--annotations", type=Path, default=DEFAULT)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import pandas as pd

    from verbnoun.bench.build import BuildSettings, build_benchmark

    csv = args.annotations / "EPIC_100_validation.csv"
    with tempfile.TemporaryDirectory() as tmp:
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
        verdict = "OK" if seconds < 2.0 else "OVER the 2 s target"
        print(
            f"build validation benchmark, {strategy:10s}: {seconds:.3f} s "
            f"= {seconds / reference:.1f}x read_csv  [{verdict}]"
        )


if __name__ == "__main__":
    main()
