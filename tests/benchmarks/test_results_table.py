"""The benchmarks' table, and the README and docs quoting it.

What counts as a quoted figure: in ``README.md`` and ``docs/**/*.md``, a Markdown link to the
rendered table whose anchor is the figure's id, e.g.
``[1.78x](benchmarks/results.md#bench_decode.hd_vs_decord)``. Its text must be the table's text
of that figure (``benchmarks/results.json``), so a figure changes in one place only.

What must not be there: a speed, memory or size figure written in prose instead (a number with
a unit of size or memory (``MB``, ``GiB``, ...), milliseconds, a ratio such as ``2.1x``, a rate
such as ``40 clips/s``, seconds of CPU or wall time, or a time something takes: ``takes about
9 s``) outside such links and outside code.
Left out of that scan: ``docs/reference/cli.md`` (generated from the commands) and the demo's
section of ``docs/results.md`` (the demo's own run, written from ``bench_demo_seeds.py``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from benchresults import BENCHMARKS, ROOT, results

QUOTE = re.compile(r"\[([^\]]+)\]\(([^)\s]*results\.md)#([^)\s]+)\)")
FIGURE = re.compile(
    r"\d[\d,]*(?:\.\d+)?\s?(?:KB|kB|KiB|MB|MiB|GB|GiB|TB|ms|µs)\b"
    r"|\b\d+(?:\.\d+)?(?:-\d+(?:\.\d+)?)?x\b"
    r"|\d[\d,]*(?:\.\d+)?\s?(?:[a-z]+)?/s\b"
    r"|\d[\d,]*(?:\.\d+)?\s?s (?:of )?(?:CPU|wall)\b"
    r"|\b(?:takes?|took|taking|in|at) (?:about |under |over |only )?\d[\d,.]* ?"
    r"(?:ms|s|seconds|minutes|min|hours)\b"
)
# Facts of data or settings, not measurements of this project's code (each with its reason).
ALLOWED = {
    "4 MiB": "the size of EPIC_100_train.csv, a fact of the data set",
}


def documents() -> list[Path]:
    docs = sorted((ROOT / "docs").rglob("*.md"))
    return [ROOT / "README.md", *(p for p in docs if p != ROOT / "docs/reference/cli.md")]


def prose(path: Path) -> str:
    """The text a reader reads as prose: code blocks and code spans left out, and the demo's
    section of docs/results.md."""
    text = path.read_text(encoding="utf-8")
    if path == ROOT / "docs" / "results.md":
        text = text[text.index("## Benchmarks' figures") :]
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    return re.sub(r"`[^`]*`", "", text)  # a code span may wrap onto the next line


def test_every_quoted_figure_is_the_tables():
    table = results.read_table()["figures"]
    quoted = 0
    for path in documents():
        for text, target, fid in QUOTE.findall(path.read_text(encoding="utf-8")):
            where = f"{path.relative_to(ROOT)}: [{text}]({target}#{fid})"
            assert (path.parent / target).resolve() == results.RENDERED, f"{where}: wrong path"
            assert fid in table, f"{where}: no figure {fid} in benchmarks/results.json"
            assert text == table[fid]["text"], f"{where}: the table says {table[fid]['text']}"
            quoted += 1
    assert quoted >= 5  # the README and the guides do quote the table


@pytest.mark.parametrize("path", documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_figure_copied_into_prose(path: Path):
    text = QUOTE.sub("", prose(path))
    found = [m.group(0) for m in FIGURE.finditer(text) if m.group(0) not in ALLOWED]
    assert not found, (
        f"{path.relative_to(ROOT)} writes speed, memory or size figures in prose: {found}; "
        "quote the table instead: [TEXT](benchmarks/results.md#script.key)"
    )


def test_the_scan_finds_copied_figures():
    text = ("decoding is 2.1-2.7x decord; 2.1 MB of HTML; 4.1 s CPU; 12 clips/s; 0.14 ms each; "
            "it takes about 9 s; windows of 2 s every 0.5 s")  # fmt: skip
    assert [m.group(0) for m in FIGURE.finditer(text)] == [
        "2.1-2.7x", "2.1 MB", "4.1 s CPU", "12 clips/s", "0.14 ms", "takes about 9 s"
    ]  # fmt: skip


def test_the_rendered_table_is_current():
    rendered = results.render(results.read_table())
    assert results.RENDERED.read_text(encoding="utf-8") == rendered, (
        "benchmarks/results.md is stale: run `python benchmarks/results.py`"
    )


def test_every_figure_says_where_and_when():
    for fid, figure in results.read_table()["figures"].items():
        script = fid.split(".", 1)[0]
        assert (BENCHMARKS / f"{script}.py").is_file(), fid
        assert figure["text"] == results.text_of(figure["value"], figure["unit"]), fid
        assert figure["machine"]["cores"] and figure["machine"]["cpu"], fid
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", figure["date"]), fid
        assert figure["met"] in (True, False, None), fid
        assert figure["met"] is None or figure["target"], f"{fid}: met without a target"


def test_quick_figures_never_reach_the_table(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(results.ENV, raising=False)
    monkeypatch.setattr(results, "TABLE", tmp_path / "results.json")
    monkeypatch.setattr(results, "RENDERED", tmp_path / "results.md")
    results.Report("bench_x", quick=True).figure("speed", 2.0, "x", target=">= 1.5x", met=True)
    assert not (tmp_path / "results.json").exists()
    results.Report("bench_x").figure("speed", 1.25, "x", target=">= 1.5x", met=False)
    results.Report("bench_x").figure("size", 3.5, "MB", reference="same run")
    results.Report("bench_x").figure("rate", 1234.5, "clips/s")
    table = json.loads((tmp_path / "results.json").read_text())["figures"]
    assert table["bench_x.speed"]["text"] == "1.25x" and table["bench_x.speed"]["met"] is False
    assert table["bench_x.size"]["text"] == "3.50 MB"
    assert table["bench_x.rate"]["text"] == "1,234 clips/s"
    assert '<a id="bench_x.rate"></a>' in (tmp_path / "results.md").read_text()
    out = capsys.readouterr().out
    assert "FIGURE bench_x.speed = 1.25x | target: >= 1.5x | NOT met" in out
    assert "| **NOT met** |" in results.render({"figures": table}, scripts=["bench_x", "bench_y"])
    assert "`bench_y`" in results.render({"figures": table}, scripts=["bench_x", "bench_y"])
