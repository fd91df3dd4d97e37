"""Build the kitchen base checkpoint shipped in ``src/verbnoun/assets/kitchen_base/``.

Renders the pool kitchens (seeds 10,000 and up) and the demo's seed-0 kitchen under ``--work``,
runs stages A (vision tower), B (language model), C (alignment) and D (video MQA) of
:mod:`verbnoun.model.kitchen_base`, prints each stage's time and gates, and writes the checkpoint
with its ``gates.json``. Deterministic given ``--seed`` (and the machine's arithmetic).

    nice -n 10 .venv/bin/python scripts/build_kitchen_base.py [--seed 0] [--work DIR]
        [--out src/verbnoun/assets/kitchen_base] [--threads 2] [--set tower_steps=300 ...]
        [--only A|B]

``--set KEY=VALUE`` overrides a :class:`~verbnoun.model.kitchen_base_settings.BaseSettings` field (a
small build for checking the script: ``--set tower_steps=20 lm_steps=20 align_steps=10
    instruct_steps=10``).
The exit status is 1 when a gate is missed (the checkpoint is still written, with its figures).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

from verbnoun.model.kitchen_base import build_base, kitchen_base_path
from verbnoun.model.kitchen_base_settings import BaseSettings


def settings_from(args: argparse.Namespace) -> BaseSettings:
    """The build settings: defaults, ``--seed`` / ``--threads``, then ``--set`` overrides."""
    types = {f.name: f.type for f in dataclasses.fields(BaseSettings)}
    values: dict = {"seed": args.seed, "threads": args.threads}
    for item in args.set or []:
        key, sep, text = item.partition("=")
        if not sep or key not in types:
            sys.exit(f"--set {item!r}: expected KEY=VALUE with KEY one of {', '.join(types)}")
        kind = {"int": int, "float": float}.get(str(types[key]), str)
        try:
            values[key] = kind(text)
        except ValueError:
            sys.exit(f"--set {item!r}: {text!r} is not a {kind.__name__}")
    return BaseSettings(**values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=kitchen_base_path())
    parser.add_argument("--work", type=Path, default=None, help="rendered kitchens (reused)")
    parser.add_argument("--set", nargs="*", metavar="KEY=VALUE")
    parser.add_argument(
        "--only",
        choices=("A", "B"),
        help="build one stage into --work (stages A and B are "
        "independent: build both in parallel, then run without --only to reuse them)",
    )
    args = parser.parse_args()
    settings = settings_from(args)
    tic = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        result = build_base(args.out, args.work or Path(scratch), settings, only=args.only)
    gates = result.gates
    if args.only:
        passed = gates[args.only]["passed"]
        print(f"stage {args.only} built into {args.work} in {time.perf_counter() - tic:.0f} s")
    else:
        passed = gates["passed"]
        print(f"wrote {result.directory} in {time.perf_counter() - tic:.0f} s: gates "
              f"{'passed' if passed else 'MISSED'}")  # fmt: skip
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
