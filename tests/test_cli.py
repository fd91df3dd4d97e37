"""The command line: mqa build and stats end to end, one-line errors, lazy imports."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from verbnoun.cli import main
from verbnoun.data.kitchen import kitchen_script, write_kitchen_annotations


@pytest.fixture(scope="module")
def kitchen(tmp_path_factory):
    return write_kitchen_annotations(tmp_path_factory.mktemp("kitchen"), kitchen_script(12, 0))


def test_build_and_stats(kitchen, tmp_path, capsys):
    out = tmp_path / "q.jsonl"
    args = ["mqa", "build", "--annotations", str(kitchen), "--out", str(out), "--distractors", "prior-hard",
            "--num-options", "4", "--seed", "3"]  # fmt: skip
    assert main(args) == 0
    assert "questions to" in capsys.readouterr().out
    manifest = json.loads((tmp_path / "q.manifest.json").read_text())
    assert manifest["settings"]["num_options"] == 4 and manifest["settings"]["seed"] == 3
    assert main(["mqa", "stats", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["questions"] == manifest["counts"]["questions"] > 0
    assert summary["options_per_question"] == [4]
    assert set(summary["correct_letters"]) == {"A", "B", "C", "D"}
    assert summary["distractors_sharing"]["neither"]["count"] == 0
    assert main(["mqa", "stats", str(out)]) == 0
    assert "correct letters" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["mqa", "build", "--bogus"], 2, "No such option: --bogus"),
        (
            ["mqa", "build", "--annotations", "x", "--out", "y", "--num-options", "30"],
            2,
            "--num-options",
        ),
        (
            ["mqa", "build", "--annotations", "x", "--out", "y", "--distractors", "best"],
            2,
            "--distractors",
        ),
        (["mqa", "build", "--annotations", "x"], 2, "Missing option '--out'"),
        (
            ["mqa", "build", "--annotations", "/no/such/dir", "--out", "y"],
            1,
            "annotation folder not found",
        ),
        (["mqa", "stats", "/no/such/file.jsonl"], 1, "file not found"),
    ],
)
def test_errors_are_one_line(args, code, message, capsys):
    assert main(args) == code
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and err.startswith("verbnoun: error: ")


def test_bad_predictions_file_names_it(kitchen, tmp_path, capsys):
    bad = tmp_path / "pred.json"
    bad.write_text('{"0": {"predictions": ["1:2", ')
    args = ["mqa", "build", "--annotations", str(kitchen), "--out", str(tmp_path / "q.jsonl"),
            "--distractors", "specialist", "--predictions", str(bad)]  # fmt: skip
    assert main(args) == 1
    assert f"{bad}:1: not valid JSON" in capsys.readouterr().err


def test_mqa_does_not_import_torch(kitchen, tmp_path):
    out = tmp_path / "q.jsonl"
    script = (
        "import sys; from verbnoun.cli import main; "
        f"assert main(['mqa', 'build', '--annotations', {str(kitchen)!r}, '--out', {str(out)!r}]) == 0; "
        f"assert main(['mqa', 'stats', {str(out)!r}]) == 0; "
        "heavy = sorted(m for m in ('torch', 'transformers', 'av', 'pandas') if m in sys.modules); "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)


def test_console_script_entry_point(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "verbnoun.cli", "mqa", "build", "--nope"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "No such option" in result.stderr
