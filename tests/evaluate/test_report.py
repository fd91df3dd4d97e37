"""The static HTML report: findings, pivot, chart, paired tests, the question browser (loaded
in headless Chromium: Debian's `chromium`, set up by .ci/run), and the page at the real
benchmark's size (10,000 questions x 12 runs)."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from verbnoun.bench.build import BuildSettings, build_benchmark
from verbnoun.data.annotations import EK100Annotations
from verbnoun.data.kitchen import kitchen_script, write_kitchen_annotations
from verbnoun.evaluate.adapters import PriorAdapter, Reply
from verbnoun.evaluate.findings import check_claims, default_claims, layout, relevant_pairs
from verbnoun.evaluate.report import chart_figure, write_report
from verbnoun.evaluate.runner import EvalSettings, run_evaluation
from verbnoun.evaluate.score import compare, load_run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (.ci/run installs it)"
)
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
EVIL = "<script>alert('x')</script>"


class Evil:
    """Answers with markup (right on every other question), to check escaping and filtering."""

    name = "evil"
    needs_frames = False

    def settings(self):
        return {}

    def answer(self, requests):
        return [
            Reply(f"{'AB'[i % 2] if i % 2 else r.question.answer_letter}. {EVIL}")
            for i, r in enumerate(requests)
        ]


class Oracle:
    name = "oracle"
    needs_frames = False

    def settings(self):
        return {}

    def answer(self, requests):
        return [Reply(r.question.answer_letter) for r in requests]


class Last:
    """A second baseline: always the last option."""

    name = "random"
    needs_frames = False

    def settings(self):
        return {"always": "E"}

    def answer(self, requests):
        return [Reply("E") for _ in requests]


class Flaky:
    """Never answered every third question (retries exhausted): shown as failed."""

    name = "flaky"
    needs_frames = False

    def settings(self):
        return {}

    def answer(self, requests):
        gave_up = {"kind": "timeout", "status": 504, "attempts": 6, "message": "<b>slow</b>"}
        return [
            Reply("", failure=gave_up) if i % 3 == 0 else Reply(r.question.answer_letter)
            for i, r in enumerate(requests)
        ]


def frames_of(question):
    shade = 40 + (int(question.start * 100) % 200)
    return np.full((4, 16, 16, 3), shade, dtype=np.uint8)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    annotations = write_kitchen_annotations(root / "a", kitchen_script(12, 2))
    vocabulary = EK100Annotations(annotations).action_vocabulary(("train",))
    frequency = {a: vocabulary.frequency(a) for a in vocabulary.actions}
    runs = []
    for bench in ("random", "prior-hard"):
        questions = root / f"{bench}.jsonl"
        build_benchmark(annotations, questions, BuildSettings(distractors=bench))
        adapters = {"oracle": Oracle(), "evil": Evil(), "last": Last(),
                    "prior": PriorAdapter(frequency, "kitchen:train")}  # fmt: skip
        if bench == "prior-hard":
            adapters["flaky"] = Flaky()
        for name, adapter in adapters.items():
            out = root / "runs" / f"{bench}-{name}"
            run_evaluation(questions, adapter, out, EvalSettings(frames=4), progress=False)
            runs.append(load_run(out))
    path = write_report(
        runs, root / "report.html", frames_of=frames_of, frame_settings={"frames": 4},
        dataset=annotations, page_size=5,
    )  # fmt: skip
    return path, runs


def _data(page: str) -> dict:
    return json.loads(re.search(r"id='report-data'>(.*?)</script>", page, re.S).group(1))


@pytest.mark.slow
def test_page_is_escaped_self_contained_and_holds_every_question(report):
    path, runs = report
    page = path.read_text()
    assert "<script>alert" not in page and "alert(&#x27;x&#x27;)" not in page.split("<h2>")[0]
    assert "\\u003cscript\\u003ealert('x')\\u003c/script\\u003e" in page  # in the data block
    assert "http://" not in page and "https://" not in page  # no external assets
    data = _data(page)
    counts = {b["name"]: b["count"] for b in data["benchmarks"]}
    assert counts == {"random": len(runs[0].questions), "prior-hard": len(runs[4].questions)}
    assert len(data["questions"]["id"]) == sum(counts.values())
    assert len(data["runs"]) == 9 and all(
        len(r["outcome"]) == counts[data["benchmarks"][r["bench"]]["name"]] for r in data["runs"]
    )
    evil = next(r for r in data["runs"] if r["label"] == "prior-hard-evil")
    assert evil["outcome"].count(0) == sum(not p["correct"] for p in runs[5].predictions.values())
    assert data["verb_names"]["0"] == "take"  # names from the annotation folder
    flaky = next(r for r in data["runs"] if r["label"] == "prior-hard-flaky")
    gave_up = [i for i, o in enumerate(flaky["outcome"]) if o == 2]  # neither right nor wrong
    assert len(gave_up) == len(runs[8].questions) - len(runs[8].predictions) > 0
    assert set(flaky["outcome"]) == {1, 2}
    reason = data["strings"][flaky["raw"][str(gave_up[0])]]
    assert reason == "timeout (HTTP 504) after 6 tries: <b>slow</b>"


def test_findings_pivot_and_only_the_pairs_that_answer_a_question(report):
    path, runs = report
    grid = layout(runs)
    assert [m["name"] for m in grid["models"]] == ["oracle", "evil", "last", "prior", "flaky"]
    assert [m["baseline"] for m in grid["models"]] == [False, False, True, True, False]
    assert [(b["name"], b["kind"]) for b in grid["benchmarks"]] == [
        ("random", "random"),
        ("prior-hard", "hard"),
    ]
    assert grid["cells"]["oracle"]["prior-hard"]["accuracy"] == 1.0
    flaky = grid["cells"]["flaky"]["prior-hard"]  # failed questions leave the accuracy
    assert flaky["accuracy"] == 1.0 and flaky["failed"] > 0
    assert flaky["n"] + flaky["failed"] == len(runs[8].questions)
    pairs = relevant_pairs(runs, grid)
    # per benchmark: the models against each other and against both baselines; not last-prior
    assert len(pairs) == (1 + 2 * 2) + (3 + 3 * 2) and len(compare(runs)["paired"]) == 6 + 10
    assert not any({p["model_a"], p["model_b"]} == {"last", "prior"} for p in pairs)
    findings = {f["claim"]: f for f in check_claims(default_claims(runs, grid), runs)}
    beat = findings["oracle beats the strongest baseline (prior) on prior-hard"]
    assert beat["held"] and beat["effect"] > 0 and beat["p_value"] < 0.05
    # the oracle is right everywhere: hard distractors are not harder for it (no discordance)
    assert not findings["prior-hard is harder than random for oracle"]["held"]
    page = path.read_text()
    assert page.index("<h2>findings</h2>") < page.index("id='pivot'") < page.index("id='pairs'")
    assert "<details id='matrix'>" in page


@pytest.mark.slow
def test_thumbnails_are_written_once_per_segment(report, tmp_path):
    path, runs = report
    folder = path.parent / "report_files" / "frames"
    sheets = sorted(folder.glob("*.jpg"))
    segments = {(q.video_id, q.start, q.stop) for r in runs for q in r.questions}
    assert len(sheets) == len(segments) == len(runs[0].questions)  # shared by both benchmarks
    assert sheets[0].read_bytes()[:3] == b"\xff\xd8\xff"
    before = {p.name: p.stat().st_mtime_ns for p in sheets}
    write_report(runs, path, frames_of=frames_of, frame_settings={"frames": 4}, page_size=5)
    assert {p.name: p.stat().st_mtime_ns for p in folder.glob("*.jpg")} == before
    write_report(runs, path, frames_of=frames_of, frame_settings={"frames": 8}, page_size=5)
    assert not {p.name for p in folder.glob("*.jpg")} & set(before)  # other settings: redone
    write_report(runs, path, frames_of=frames_of, frame_settings={"frames": 4}, page_size=5)
    webp = write_report(runs[:1], tmp_path / "w.html", frames_of=frames_of, image_format="webp")
    sheets = list((tmp_path / "w_files" / "frames").glob("*.webp"))
    assert len(sheets) == len(runs[0].questions) and sheets[0].read_bytes()[8:12] == b"WEBP"
    assert "w_files/frames" in webp.read_text()


def test_chart_labels_do_not_overlap_and_fit():
    names = [f"a rather long model name number {i} ($5 tier)" for i in range(12)]
    grid = {
        "models": [{"name": n, "baseline": False} for n in names],
        "benchmarks": [{"name": f"benchmark {j}"} for j in range(3)],
        "cells": {
            n: {f"benchmark {j}": {"n": 100, "accuracy": 0.99 - 0.05 * i,
                                    "ci95": [0.95 - 0.05 * i, 1.0]}
                for j in range(3)}
            for i, n in enumerate(names)
        },
    }  # fmt: skip
    figure = chart_figure(grid)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    axis = figure.axes[0]
    ticks = [t.get_window_extent(renderer) for t in axis.get_yticklabels()]
    values = [t.get_window_extent(renderer) for t in axis.texts]
    assert len(ticks) == 12 and len(values) == 36
    for group in (ticks, values):
        for i, a in enumerate(group):
            assert not any(a.overlaps(b) for b in group[i + 1 :])
    right = axis.get_window_extent(renderer).x1
    assert all(v.x1 < right for v in values)  # every value label inside the plot
    assert [t.get_text() for t in axis.get_yticklabels()][-1] == names[0].replace("$", r"\$")


def _dom(url: str, tmp_path) -> str:
    result = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", url],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def _shown(dom: str) -> int:
    return int(re.search(r'<span id="shown">(\d+)</span>', dom).group(1))


@needs_chromium
def test_browser_filters_pages_and_keys_in_headless_chromium(report, tmp_path):
    path, runs = report
    total = sum(len(r.questions) for r in (runs[0], runs[4]))
    dom = _dom(path.as_uri(), tmp_path)
    assert _shown(dom) == total and dom.count('class="question"') == 5  # one page of 5
    assert 'id="accuracy-plot"' in dom and 'loading="lazy"' in dom
    assert "<script>alert" not in dom.split("</head>", 1)[1]
    assert "&lt;script&gt;alert('x')&lt;/script&gt;" in _dom(
        path.as_uri() + "?run=prior-hard-evil&outcome=wrong", tmp_path
    )  # the evil raw answer, as text
    evil = runs[5]
    wrong = sum(not p["correct"] for p in evil.predictions.values())
    assert 0 < wrong < len(evil.questions)
    assert _shown(_dom(path.as_uri() + "?run=prior-hard-evil&outcome=wrong", tmp_path)) == wrong
    some_wrong = sum(
        1 for bench in (runs[:4], runs[4:]) for q in bench[0].questions
        if not all(r.predictions[q.id]["correct"] for r in bench if q.id in r.predictions)
    )  # fmt: skip
    assert _shown(_dom(path.as_uri() + "?wrong=1", tmp_path)) == some_wrong
    take = sum(q.verb_class == 0 for r in (runs[0], runs[4]) for q in r.questions)
    assert _shown(_dom(path.as_uri() + "?verb=0", tmp_path)) == take > 0
    dom = _dom(path.as_uri() + "?run=prior-hard-flaky", tmp_path)
    assert ">failed<" in dom and "&lt;b&gt;slow&lt;/b&gt;" in dom and "<b>slow" not in dom
    dom = _dom(path.as_uri() + "?keys=j,j,j", tmp_path)
    assert 'data-focused="q-2"' in dom and 'data-page="1"' in dom
    dom = _dom(path.as_uri() + "?keys=" + ",".join(["j"] * 6), tmp_path)  # past the page
    assert 'data-focused="q-5"' in dom and 'data-page="2"' in dom
    dom = _dom(path.as_uri() + "?keys=n,n,p", tmp_path)
    assert 'data-page="2"' in dom and 'data-focused="q-5"' in dom


def _bench_report():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_report.py"
    spec = importlib.util.spec_from_file_location("bench_report", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_report_at_the_real_benchmark_size(tmp_path):
    """10,000 questions x 12 runs: under 20 MB of HTML, on screen in under 3 s."""
    bench = _bench_report()
    runs = bench.make_runs(tmp_path, questions=10_000, runs=12)
    page = write_report(runs, tmp_path / "report.html")
    assert page.stat().st_size < 20e6
    data = _data(page.read_text())
    assert len(data["questions"]["id"]) == 10_000 and len(data["runs"]) == 12
    if CHROMIUM is None:
        pytest.skip("chromium not installed (.ci/run installs it)")
    dom, _ = bench.open_in_chromium(page.as_uri(), tmp_path / "profile")
    assert _shown(dom) == 10_000
    assert bench.rendered_ms(dom) < 3000
