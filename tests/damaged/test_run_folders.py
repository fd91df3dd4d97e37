"""Damaged run folders in score, report and a resumed eval (see conftest.py)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from damagetools import cli, lines_of, refused, set_line

# ----------------------------------------------------------------------------- run folders


def _config(change: Callable[[dict], object]) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        data = json.loads((run / "config.json").read_text())
        result = change(data)
        (run / "config.json").write_text(json.dumps(data if result is None else result))

    return damage


def _prediction_line(number: int, text: bytes) -> Callable[[Path], None]:
    return lambda run: set_line(run / "predictions.jsonl", number, lambda x: text)


RUN_DAMAGE = [
    (
        "config not JSON",
        lambda r: (r / "config.json").write_text("{model: random"),
        "config.json",
        r"config\.json:1: not valid JSON",
    ),
    ("config a list", _config(lambda d: [d]), "config.json", r"expected a JSON object"),
    (
        "config missing key",
        _config(lambda d: d.pop("questions_sha256") and None),
        "config.json",
        r"\[questions_sha256\]: missing key",
    ),
    (
        "config wrong value type",
        _config(lambda d: d.__setitem__("questions", 5)),
        "config.json",
        r"\[questions\]: expected a string",
    ),
    ("config empty", lambda r: (r / "config.json").write_bytes(b""), "config.json", r"empty file"),
    ("no config", lambda r: (r / "config.json").unlink(), "run", r"not a run directory"),
    (
        "prediction line not JSON",
        _prediction_line(2, b"{oops\n"),
        "predictions.jsonl",
        r":2: malformed prediction line",
    ),
    (
        "prediction without correct",
        _prediction_line(3, b'{"id": "P03_01_2", "choice": 1}\n'),
        "predictions.jsonl",
        r":3: malformed.*correct",
    ),
    (
        "prediction choice a string",
        _prediction_line(4, b'{"id": "P03_01_3", "choice": "B", "correct": true}\n'),
        "predictions.jsonl",
        r":4: malformed.*choice",
    ),
    (
        "prediction choice outside the options",
        _prediction_line(5, b'{"id": "P03_01_4", "choice": 7, "correct": false}\n'),
        "run",
        r"P03_01_4: choice 7 is outside",
    ),
    (
        "prediction labels not a list",
        _prediction_line(
            3, b'{"id": "P03_01_2", "choice": null, "labels": "1:2", "correct": false}\n'
        ),
        "predictions.jsonl",
        r":3: malformed.*labels",
    ),
    (
        "prediction for an unknown question",
        _prediction_line(6, b'{"id": "X_9", "choice": 1, "correct": false}\n'),
        "run",
        r"unknown question ids.*X_9",
    ),
    (
        "prediction non-UTF-8",
        _prediction_line(7, b'{"id": "\xff"}\n'),
        "predictions.jsonl",
        r":7: malformed",
    ),
]


@pytest.mark.parametrize(
    ("damage", "named", "place"), [(d, n, p) for _, d, n, p in RUN_DAMAGE],
    ids=[n for n, _, _, _ in RUN_DAMAGE],
)  # fmt: skip
@pytest.mark.slow
def test_run_folder_in_score(world, tmp_path, capsys, damage, named, place):
    run = tmp_path / "run"
    shutil.copytree(world.run, run)
    damage(run)
    refused(capsys, ["score", run], file=run / named if named != "run" else run, place=place)


def test_run_folder_question_file_changed(world, tmp_path, capsys):
    questions = tmp_path / "q.jsonl"
    shutil.copy(world.questions, questions)
    run = tmp_path / "run"
    assert cli("eval", "--model", "random", "--questions", questions, "--out", run) == 0
    capsys.readouterr()
    questions.write_bytes(b"".join(lines_of(questions)[:-1]))
    refused(capsys, ["score", run], file=questions, place=r"changed since the run")


def test_run_folder_in_report_keeps_the_earlier_report(world, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(world.run, run)
    html = tmp_path / "report.html"
    html.write_text("<html>an earlier report</html>\n")
    _config(lambda d: d.pop("model") and None)(run)
    refused(capsys, ["report", run, "--out", html], file=run / "config.json",
            place=r"\[model\]: missing key", keep=(html,))  # fmt: skip


@pytest.mark.parametrize(
    ("damage", "place"),
    [
        (lambda r: (r / "config.json").write_text("[1, 2"), r"config\.json:1: not valid JSON"),
        (_config(lambda d: d.pop("parser_version") and None), r"config\.json: .*parser_version"),
        (
            _prediction_line(3, b'{"id": "P03_01_2", "choice": true, "correct": 1}\n'),
            r"predictions\.jsonl:3",
        ),
    ],
    ids=["config not JSON", "config missing key", "prediction wrong types"],
)
def test_run_folder_in_resumed_eval(world, tmp_path, capsys, damage, place):
    run = tmp_path / "run"
    shutil.copytree(world.run, run)
    damage(run)
    named = "predictions.jsonl" if "predictions" in place else "config.json"
    refused(capsys, ["eval", "--model", "random", "--questions", world.questions, "--out", run],
            file=run / named, place=place)  # fmt: skip


@pytest.mark.parametrize(
    ("damage", "named", "place"), [(d, n, p) for _, d, n, p in RUN_DAMAGE],
    ids=[n for n, _, _, _ in RUN_DAMAGE],
)  # fmt: skip
def test_run_folder_in_reparse(world, tmp_path, capsys, damage, named, place):
    run = tmp_path / "run"
    shutil.copytree(world.run, run)
    damage(run)
    new = tmp_path / "new"
    refused(capsys, ["score", "--reparse", run, "--out", new],
            file=run / named if named != "run" else run, place=place)  # fmt: skip
    assert not new.exists()


@pytest.mark.parametrize(
    ("damage", "named", "place"),
    [(d, n, p) for _, d, n, p in RUN_DAMAGE if n == "config.json" or p == "not a run directory"],
    ids=[n for n, _, f, p in RUN_DAMAGE if f == "config.json" or p == "not a run directory"],
)
def test_run_folder_in_show_prompt(world, tmp_path, capsys, damage, named, place):
    run = tmp_path / "run"
    shutil.copytree(world.run, run)
    damage(run)
    question = json.loads(lines_of(world.questions)[0])["id"]
    refused(capsys, ["show-prompt", run, question],
            file=run / named if named != "run" else run, place=place)  # fmt: skip


def test_prompt_record_in_resumed_eval(world, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(world.run, run)
    set_line(run / "prompts.jsonl", 1, lambda x: b"{oops\n")
    refused(capsys, ["eval", "--model", "random", "--questions", world.questions, "--out", run],
            file=run / "prompts.jsonl", place=r"prompts\.jsonl:1: not valid JSON")  # fmt: skip
