"""The demo pipeline on the embedded kitchen, and HTML escaping of its benchmark page."""

from __future__ import annotations

import json

from llavaction.bench.questions import read_questions
from llavaction.demo import render_html, run_demo


def test_demo_runs_every_stage(tmp_path):
    out = tmp_path / "demo"
    report = run_demo(out, seed=1, videos=6)
    assert report == out / "report.html"
    assert sorted(p.name for p in (out / "kitchen" / "videos").iterdir())  # participants' folders
    data = json.loads((out / "benchmarks.json").read_text())
    assert [s["name"] for s in data["benchmarks"]] == [
        "validation, random distractors",
        "validation, prior-hard distractors",
    ]
    for section in data["benchmarks"]:
        questions = read_questions(out / section["questions_file"])
        assert section["summary"]["questions"] == len(questions) > 0
    hard = data["benchmarks"][1]["summary"]
    # only the frequency fallback may share neither the verb nor the noun
    fallback = hard["distractor_sources"].get("prior-hard:frequency", 0)
    assert hard["distractors_sharing"]["neither"]["count"] == fallback
    for name in ("random", "prior"):
        metrics = json.loads((out / "eval" / name / "metrics.json").read_text())
        assert metrics["overall"]["n"] == hard["questions"]
    page = report.read_text()
    assert page.count("class='question'") == hard["questions"]
    assert page.count("data:image/png;base64,") == hard["questions"] + 1
    # a second run reuses the kitchen and resumes the evaluations (nothing answered twice)
    before = (out / "eval" / "prior" / "predictions.jsonl").read_bytes()
    run_demo(out, seed=1, videos=6)
    assert (out / "eval" / "prior" / "predictions.jsonl").read_bytes() == before


def test_benchmark_page_escapes_every_string():
    summary = {
        "questions": 1, "correct_letters": {"A": 1}, "distractor_sources": {"<b>x</b>": 1},
        "distractors_sharing": {"verb": {"count": 0, "fraction": 0}},
    }  # fmt: skip
    report = {
        "run": "<script>alert(1)</script>",
        "benchmarks": [{
            "name": "a & b", "questions_file": "q<1>.jsonl", "sha256": "0", "summary": summary,
            "samples": [{"id": "<i>", "prompt": "<|im_start|>", "answer": "A. <u>"}],
        }],
    }  # fmt: skip
    page = render_html(report)
    for raw in ("<script>", "<b>x", "<i>", "<u>", "<|im_start|>", "q<1>"):
        assert raw not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "a &amp; b" in page
