"""Every script in ``benchmarks/`` runs in its quick mode and prints its figure lines.

The scripts are found by glob (``results.benchmark_scripts``), so a new script without
``--quick`` fails here. Each runs as a subprocess with ``--quick`` and
``VERBNOUN_BENCH_RESULTS`` pointing at a temporary file: it must exit 0 and either print a
``SKIP script: reason`` line (what it needs is missing here: the authors' package, a GPU) or
print ``FIGURE script.key = ...`` lines that are exactly the figures it recorded in that file.
The real table (``benchmarks/results.json``) must come out of it untouched.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from benchresults import BENCHMARKS, results

# the longest quick modes first, so that the 2 workers of `make test` end together
FIRST = ("bench_lora", "bench_real_shape", "bench_demo_seeds", "bench_model", "bench_endpoint")
SCRIPTS = sorted(
    results.benchmark_scripts(), key=lambda p: FIRST.index(p.stem) if p.stem in FIRST else 99
)


def test_the_glob_finds_the_benchmarks():
    names = {p.stem for p in SCRIPTS}
    assert {"bench_model", "bench_decode", "parity_original"} <= names
    assert not names & {"results", "timing", "original_env", "parity_original_side"}


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_quick_mode(script: Path, tmp_path: Path):
    table = BENCHMARKS / "results.json"
    before = table.read_bytes() if table.exists() else None
    out = tmp_path / "quick.json"
    env = {**os.environ, results.ENV: str(out), "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(
        [sys.executable, str(script), "--quick"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert (table.read_bytes() if table.exists() else None) == before, "quick mode wrote the table"
    skipped = re.search(rf"^SKIP {script.stem}: (.+)$", done.stdout, re.M)
    if skipped:
        pytest.skip(f"{script.stem}: {skipped.group(1)}")
    printed = re.findall(
        rf"^FIGURE ({script.stem}\.[a-z0-9_]+) = (.+?)(?: \||$)", done.stdout, re.M
    )
    assert printed, f"no FIGURE lines:\n{output[-4000:]}"
    recorded = results.read_table(out)["figures"]
    assert {fid: recorded[fid]["text"] for fid, _ in printed} == dict(printed)
    assert set(recorded) == {fid for fid, _ in printed}
