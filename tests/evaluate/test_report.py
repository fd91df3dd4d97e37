"""The static HTML report, loaded in headless Chromium (Debian's `chromium`, set up by .ci/run)."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest

from verbnoun.bench.build import BuildSettings, build_benchmark
from verbnoun.data.kitchen import kitchen_script, write_kitchen_annotations
from verbnoun.evaluate.adapters import Reply
from verbnoun.evaluate.report import write_report
from verbnoun.evaluate.runner import EvalSettings, answered, run_evaluation
from verbnoun.evaluate.score import load_run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


class Evil:
    """Answers with markup (right on every other question), to check escaping and filtering."""

    name = "evil"
    needs_frames = False

    def settings(self):
        return {}

    def answer(self, requests):
        return [
            Reply(
                f"{'AB'[i % 2] if i % 2 else r.question.answer_letter}. <script>alert('x')</script>"
            )
            for i, r in enumerate(requests)
        ]


class Oracle:
    name = "oracle"
    needs_frames = False

    def settings(self):
        return {}

    def answer(self, requests):
        return [Reply(r.question.answer_letter) for r in requests]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    annotations = write_kitchen_annotations(root / "a", kitchen_script(12, 2))
    questions = root / "q.jsonl"
    build_benchmark(annotations, questions, BuildSettings(distractors="prior-hard"))
    # an oracle and a half-right run: some questions are right in both, some wrong in one
    run_evaluation(questions, Oracle(), root / "oracle", EvalSettings(), progress=False)
    run_evaluation(questions, Evil(), root / "evil", EvalSettings(), progress=False)
    runs = [load_run(root / "oracle"), load_run(root / "evil")]

    def frames_of(question):
        return np.full((8, 24, 24, 3), 200, dtype=np.uint8)

    path = write_report(runs, root / "report.html", frames_of=frames_of)
    return path, runs


def test_page_content_is_escaped_and_self_contained(report):
    path, runs = report
    page = path.read_text()
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#x27;x&#x27;)" in page
    assert "http://" not in page and "https://" not in page  # no external assets
    assert page.count("class='question'") == len(runs[0].questions)
    assert page.count("data:image/png;base64,") == len(runs[0].questions) + 1  # sheets + plot


def _dom(url: str, tmp_path) -> str:
    result = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", url],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (.ci/run installs it)")
def test_report_renders_in_headless_chromium_and_filters(report, tmp_path):
    path, runs = report
    total = len(runs[0].questions)
    wrong = sum(
        1 for q in runs[0].questions
        if not all(r.predictions[q.id]["correct"] for r in runs)
    )  # fmt: skip
    assert 0 < wrong < total
    dom = _dom(path.as_uri(), tmp_path)
    assert re.search(rf"<span id=\"shown\">{total}</span>", dom)
    assert dom.count('class="question"') == total and "display: none" not in dom
    dom = _dom(path.as_uri() + "?wrong=1", tmp_path)
    assert re.search(rf"<span id=\"shown\">{wrong}</span>", dom)
    assert dom.count("display: none") == total - wrong
    assert 'id="accuracy-plot"' in dom
    assert answered(runs[1].path)  # the evil run's raw answers are in the page, escaped
    assert "<script>alert" not in dom.split("</head>", 1)[1]
