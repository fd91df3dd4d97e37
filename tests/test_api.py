"""The notebook API: the README's worked example runs as written, and matches the CLI's files."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "guides" / "python.md"


def _readme_example() -> str:
    match = re.search(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S)
    assert match, f"{GUIDE} has no python example"
    return match.group(1)


@pytest.fixture(scope="module")
def example_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("notebook")
    result = subprocess.run(
        [sys.executable, "-c", _readme_example()],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    (folder / "stdout.txt").write_text(result.stdout)
    return folder


@pytest.mark.slow
def test_readme_example_writes_what_the_cli_writes(example_dir):
    import verbnoun as lva
    from verbnoun.cli import main

    out = (example_dir / "stdout.txt").read_text()
    assert re.search(r"^\d+ questions$", out, re.M)
    assert "runs/random | random |" in out and "runs/prior | prior |" in out
    assert (example_dir / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (example_dir / "report.html").read_text()
    assert "runs/prior" in page or "prior" in page
    # the CLI builds the same bytes from the same inputs
    annotations = example_dir / "kitchen" / "annotations"
    cli_copy = example_dir / "cli.jsonl"
    assert (
        main(["mqa", "build", "--annotations", str(annotations), "--distractors", "prior-hard",
              "--out", str(cli_copy)])
        == 0
    )  # fmt: skip
    assert cli_copy.read_bytes() == (example_dir / "mqa" / "prior-hard.jsonl").read_bytes()
    # runs read back from their folders give the scores the example printed
    scores = lva.score(example_dir / "runs" / "random", example_dir / "runs" / "prior")
    for row in scores.runs:
        assert 0.0 <= row["accuracy"] <= 1.0
        assert row["answered"] == row["questions"] > 0
    assert len(scores.paired) == 1 and scores.paired[0]["questions"] == scores.runs[0]["questions"]


def test_evaluate_resumes_and_returns_the_same_run(example_dir):
    import verbnoun as lva

    questions = example_dir / "mqa" / "prior-hard.jsonl"
    first = lva.load_run(example_dir / "runs" / "random")
    again = lva.eval(questions, model="random", out=example_dir / "runs" / "random")
    assert again.predictions == first.predictions
    assert again.metrics["overall"] == first.metrics["overall"]


def test_changed_setting_refuses_to_mix_into_a_run(example_dir):
    import verbnoun as lva
    from verbnoun.errors import VerbnounError

    with pytest.raises(VerbnounError):
        lva.eval(
            example_dir / "mqa" / "prior-hard.jsonl",
            model="random",
            seed=7,
            out=example_dir / "runs" / "random",
        )


def test_scores_html_escapes_run_names(tmp_path):
    from verbnoun.api import Scores

    row = {"run": "<b>x</b>", "model": "m&m", "answered": 1, "questions": 2,
           "accuracy": 0.5, "ci95": [0.1, 0.9], "unparsed_rate": 0.0}  # fmt: skip
    page = Scores([row], [])._repr_html_()
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page and "m&amp;m" in page
    assert "50.0" in str(Scores([row], []))


def test_models_that_need_frames_say_so(tmp_path, example_dir, monkeypatch):
    import verbnoun as lva
    from verbnoun.errors import VerbnounError

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")

    with pytest.raises(VerbnounError, match="needs frames"):
        lva.eval(
            example_dir / "mqa" / "prior-hard.jsonl",
            model="openai",
            api_model="m",
            out=tmp_path / "run",
        )
