"""The console script and the last-resort handler print one line, never a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from damagetools import cli

# ----------------------------------------------------------------------------- the real entry point


@pytest.mark.parametrize(
    "argv",
    [
        ["mqa", "stats", "{questions}"],
        ["score", "{run}"],
    ],
    ids=["question file", "run folder"],
)
def test_console_script_prints_no_traceback(world, tmp_path, argv):
    questions = tmp_path / "q.jsonl"
    questions.write_bytes(world.questions.read_bytes().replace(b'"options"', b'"opt\xffions"', 1))
    run = tmp_path / "run"
    shutil.copytree(world.run, run)
    (run / "config.json").write_text("not json")
    args = [a.format(questions=questions, run=run) for a in argv]
    result = subprocess.run(
        [sys.executable, "-m", "verbnoun.cli", *args], capture_output=True, text=True,
        timeout=120, env={**os.environ, "VERBNOUN_DEBUG": ""},
    )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.startswith("verbnoun: error: ") and result.stderr.count("\n") == 1


def test_last_resort_handler_names_the_command_and_hides_the_traceback(monkeypatch, capsys):
    """A bug (here: a reader that raises KeyError) still gives one line and exit 1; the
    traceback only with VERBNOUN_DEBUG=1."""
    import verbnoun.bench.questions as questions

    def broken(path):
        raise KeyError("boom")

    monkeypatch.setattr(questions, "read_questions", broken)
    assert cli("mqa", "stats", "whatever.jsonl") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unexpected KeyError" in err and "mqa stats" in err
    assert "Traceback" not in err
    monkeypatch.setenv("VERBNOUN_DEBUG", "1")
    assert cli("mqa", "stats", "whatever.jsonl") == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and err.rstrip().splitlines()[-1].startswith("verbnoun: error:")
