"""``benchmarks/results.py`` loaded as a module, for the tests of the benchmarks' table.

``benchmarks/`` is no package, so the tests load its ``results.py`` by path; ``results`` is that
module, loaded once.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "benchmarks"


def _results_module():
    spec = importlib.util.spec_from_file_location("bench_results", BENCHMARKS / "results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


results = _results_module()
