"""The benchmarks' one way to report a figure, and the one table they fill.

Every script in ``benchmarks/`` reports each figure it measures through :class:`Report`:

    report = Report("bench_decode", quick=args.quick)
    report.figure("hd_vs_decord", 1.78, "x", reference="decord, same clips, same run",
                  target=">= 1.5x", met=True)

which prints one line, ``FIGURE bench_decode.hd_vs_decord = 1.78x | reference: ... | target:
>= 1.5x | met`` (the suite's quick-mode test looks for these lines), and records it:

* in full mode, in ``benchmarks/results.json`` (beside this file; ``VERBNOUN_BENCH_RESULTS``
  names another file): the figure replaces the one of the same ``script.key``, with its date,
  the command line and the machine (cores, CPU model, load average). The file is read and
  rewritten under a lock and written whole (write, then rename), so two benchmarks finishing
  together both land and a kill never leaves half a table; ``benchmarks/results.md`` is
  rendered again with it;
* in quick mode (``--quick``: the same code path at tiny sizes, whose figures mean nothing),
  only in the file ``VERBNOUN_BENCH_RESULTS`` names when set, never in the real table.

``report.skip(reason)`` prints ``SKIP script: reason`` and exits with status 0: a script that
needs what this machine lacks (the authors' package, a GPU, a finished demo) says so instead
of failing. :func:`record` writes figures measured elsewhere (``bench_demo_seeds.py``'s
``--json``, a GPU machine's run) into the same table.

``python benchmarks/results.py`` renders ``benchmarks/results.md`` from the table: one row per
figure with its reference, target and met / NOT met, the machine and date, and every script of
``benchmarks/`` without a figure listed as not measured here. The README and the docs quote
figures only from this table (``tests/benchmarks/test_results_table.py`` checks them).
"""

from __future__ import annotations

import datetime
import fcntl
import hashlib
import math
import os
import re
import shlex
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
TABLE = HERE / "results.json"
RENDERED = HERE / "results.md"
ENV = "VERBNOUN_BENCH_RESULTS"
KEY = re.compile(r"[a-z0-9][a-z0-9_]*")
# Files in benchmarks/ that are not benchmarks: shared helpers and the authors' side of a parity
# check (run by parity_original.py in the authors' venv).
HELPERS = frozenset({"results.py", "timing.py", "original_env.py", "parity_original_side.py"})


def benchmark_scripts() -> list[Path]:
    """Every benchmark script of ``benchmarks/`` (what the quick-mode test runs)."""
    return sorted(p for p in HERE.glob("*.py") if p.name not in HELPERS)


def machine() -> dict:
    """Cores, CPU model and the 1-minute load average, now."""
    cpu = "unknown"
    try:
        for row in Path("/proc/cpuinfo").read_text().splitlines():
            if row.startswith("model name"):
                cpu = row.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cores": os.cpu_count(), "cpu": cpu, "load": round(os.getloadavg()[0], 2)}


def text_of(value: float | int, unit: str) -> str:
    """A figure as the table and the README write it: ``1.78x``, ``3.5 MB``, ``1,234 clips/s``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"a figure is a number, got {value!r}")
    if isinstance(value, int):
        number = f"{value:,}"
    elif not math.isfinite(value):
        number = str(value)
    elif abs(value) >= 100:
        number = f"{value:,.0f}"
    elif abs(value) >= 10:
        number = f"{value:.1f}"
    elif abs(value) >= 1:
        number = f"{value:.2f}"
    else:
        number = f"{value:.3g}"
    return number + (unit if unit in ("x", "%") else f" {unit}" if unit else "")


def seeds_reference(a: dict) -> str:
    """The reference of a figure with the seeds as the unit (``findings.across_seeds``'s dict):
    each seed's effect, the 95 % t-interval and the one-sided p."""
    per_seed = ", ".join(f"{100 * e:+.1f}" for e in a["effects"])
    return (f"per seed {per_seed}; 95% t-interval [{100 * a['low']:+.2f}, "
            f"{100 * a['high']:+.2f}], one-sided p={a['p_value']:.2g}")  # fmt: skip


def _figure_line(fid: str, figure: dict) -> str:
    parts = [f"FIGURE {fid} = {figure['text']}"]
    if figure.get("reference"):
        parts.append(f"reference: {figure['reference']}")
    if figure.get("target"):
        parts.append(f"target: {figure['target']}")
        parts.append({True: "met", False: "NOT met", None: "-"}[figure.get("met")])
    return " | ".join(parts)


@contextmanager
def _locked(path: Path):
    """One writer at a time for the table at ``path`` (the lock file lives in the temp folder,
    named after the table's path, so the repository gets no stray file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    with open(Path(tempfile.gettempdir()) / f"verbnoun-bench-{digest}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def read_table(path: Path = TABLE) -> dict:
    """The table ``{"figures": {"script.key": figure}}``; empty when the file is absent."""
    from verbnoun.fileio import read_json

    if not path.exists():
        return {"figures": {}}
    return read_json(path, expect=dict)


def record(script: str, figures: dict[str, dict], *, path: Path | None = None,
           command: str | None = None) -> None:  # fmt: skip
    """Write ``figures`` (key -> the keyword arguments of :meth:`Report.figure`, ``value`` and
    ``unit`` included) of ``script`` into the table at ``path`` (default: ``results.json``)."""
    from verbnoun.fileio import atomic_write_bytes, write_json

    path = Path(path) if path is not None else TABLE
    stamp = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "command": command or shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }
    made = {}
    for key, fields in figures.items():
        if not KEY.fullmatch(key):
            raise ValueError(f"figure key {key!r}: lower-case letters, digits and _ only")
        made[f"{script}.{key}"] = _figure(**fields) | stamp
    with _locked(path):
        table = read_table(path)
        table.setdefault("figures", {}).update(made)
        table["figures"] = dict(sorted(table["figures"].items()))
        write_json(path, table)
        if path.resolve() == TABLE:  # the rendered table follows the real one at once
            atomic_write_bytes(RENDERED, render(table).encode())


def _figure(value, unit: str, *, reference: str = "", target: str = "",
            met: bool | None = None, note: str = "") -> dict:  # fmt: skip
    return {"value": value, "unit": unit, "text": text_of(value, unit), "reference": reference,
            "target": target, "met": met, "note": note}  # fmt: skip


class Report:
    """The figures of one run of one script (see the module's docstring)."""

    def __init__(self, script: str, quick: bool = False) -> None:
        self.script = script
        self.quick = quick
        if quick:
            print(f"QUICK {script}: tiny sizes, the figures below mean nothing", flush=True)

    @property
    def path(self) -> Path | None:
        """Where figures go: ``$VERBNOUN_BENCH_RESULTS``, else the table in full mode only."""
        if os.environ.get(ENV):
            return Path(os.environ[ENV])
        return None if self.quick else TABLE

    def figure(self, key: str, value: float | int, unit: str, *, reference: str = "",
               target: str = "", met: bool | None = None, note: str = "") -> str:  # fmt: skip
        """Print and record one figure; returns its text (``1.78x``)."""
        fields = {"value": value, "unit": unit, "reference": reference, "target": target,
                  "met": met, "note": note}  # fmt: skip
        print(_figure_line(f"{self.script}.{key}", _figure(**fields)), flush=True)
        if self.path is not None:
            record(self.script, {key: fields}, path=self.path)
        return text_of(value, unit)

    def skip(self, reason: str) -> None:
        """Say why this script cannot run here, and exit with status 0."""
        print(f"SKIP {self.script}: {reason}", flush=True)
        raise SystemExit(0)


def quick_flag(parser) -> None:
    """``--quick`` on an argparse parser, with the one help text."""
    parser.add_argument("--quick", action="store_true",
                        help="the same code path at tiny sizes (the suite runs it); "
                             "figures go nowhere unless $VERBNOUN_BENCH_RESULTS names a file")  # fmt: skip


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render(table: dict, scripts: list[str] | None = None) -> str:
    """The table as Markdown: the targets not met first, then one section per script (its
    command, machine and dates) with one row per figure, then the scripts without a figure."""
    figures = table.get("figures", {})
    scripts = scripts if scripts is not None else [p.stem for p in benchmark_scripts()]
    lines = [
        "# Benchmark figures",
        "",
        "Written by the benchmarks themselves (`make bench`; `benchmarks/results.json`, rendered "
        "by `python benchmarks/results.py`): do not edit by hand. Each figure stands beside a "
        "reference measured in the same run, its target and whether it is met. Times depend on "
        "the machine and its load (the 1-minute load average is given; on a shared machine "
        "times are longer than on idle cores).",
        "",
    ]
    missed = [fid for fid, f in figures.items() if f.get("met") is False]
    if missed:
        lines += ["**Targets not met:** "
                  + ", ".join(f"[`{fid}`](#{fid}) ({figures[fid]['text']} at load "
                              f"{figures[fid]['machine']['load']:g} on "
                              f"{figures[fid]['machine']['cores']} cores; target "
                              f"{figures[fid]['target']})" for fid in missed) + ".", ""]  # fmt: skip
    by_script: dict[str, list[str]] = {}
    for fid in figures:
        by_script.setdefault(fid.split(".", 1)[0], []).append(fid)
    for script, fids in by_script.items():
        rows = [figures[fid] for fid in fids]
        machines = sorted({f"{f['machine']['cores']} cores, {f['machine']['cpu']}" for f in rows})
        dates = sorted({f["date"] for f in rows})
        loads = sorted(f["machine"]["load"] for f in rows)
        commands = sorted({f["command"] for f in rows})
        when = dates[0] if len(dates) == 1 else f"{dates[0]} to {dates[-1]}"
        load = f"{loads[0]:g}" if loads[0] == loads[-1] else f"{loads[0]:g}-{loads[-1]:g}"
        lines += [
            f"## {script}",
            "",
            f"{'; '.join(f'`{c}`' for c in commands)} on {'; '.join(machines)}, load {load}, "
            f"{when}.",
            "",
            "| figure | value | reference (same run) | target | met? |",
            "|---|---|---|---|---|",
        ]
        for fid, f in zip(fids, rows, strict=True):
            met = {True: "met", False: "**NOT met**", None: ""}[f.get("met")]
            note = f" ({f['note']})" if f.get("note") else ""
            cells = [f'<a id="{fid}"></a>`{fid.split(".", 1)[1]}`', f["text"],
                     f["reference"] + note, f["target"], met]  # fmt: skip
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        lines.append("")
    missing = [s for s in scripts if s not in by_script]
    if missing:
        lines += ["## Not measured here", "",
                  "No figure in the table yet (too long or too large for the machine that made "
                  "it, or it needs what that machine lacks: the authors' package, a GPU): "
                  + ", ".join(f"`{s}`" for s in missing) + ".", ""]  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    from verbnoun.fileio import atomic_write_bytes

    source = Path(sys.argv[1]) if len(sys.argv) > 1 else TABLE
    target = Path(sys.argv[2]) if len(sys.argv) > 2 else RENDERED
    atomic_write_bytes(target, render(read_table(source)).encode())
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
