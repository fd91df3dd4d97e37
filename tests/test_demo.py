"""The demo pipeline on the embedded kitchen, and HTML escaping of the report."""

from __future__ import annotations

import json

from llavaction.bench.questions import read_questions
from llavaction.demo import render_html, run_demo


def test_demo_runs_and_reports(tmp_path):
    report = run_demo(tmp_path / "demo", seed=1, videos=12)
    assert report == tmp_path / "demo" / "report.html"
    data = json.loads((tmp_path / "demo" / "report.json").read_text())
    assert [s["name"] for s in data["benchmarks"]] == [
        "validation, random distractors",
        "validation, prior-hard distractors",
    ]
    for section in data["benchmarks"]:
        questions = read_questions(tmp_path / "demo" / section["questions_file"])
        assert section["summary"]["questions"] == len(questions) > 0
    hard = data["benchmarks"][1]["summary"]
    # only the frequency fallback may share neither the verb nor the noun
    fallback = hard["distractor_sources"].get("prior-hard:frequency", 0)
    assert hard["distractors_sharing"]["neither"]["count"] == fallback
    page = report.read_text()
    assert "&lt;image&gt;" in page and "<image>" not in page  # prompts are shown escaped


def test_html_escapes_every_string():
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
