"""The evaluation runner: resume, refusal to mix settings, shards, kills, and `score`."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time

import pytest

from verbnoun.bench.build import BuildSettings, build_benchmark
from verbnoun.cli import main
from verbnoun.data.kitchen import kitchen_script, write_kitchen_annotations
from verbnoun.errors import VerbnounError
from verbnoun.evaluate.adapters import PriorAdapter, RandomAdapter, Reply
from verbnoun.evaluate.records import answered
from verbnoun.evaluate.runner import EvalSettings, Shard, run_evaluation
from verbnoun.evaluate.score import compare, load_run
from verbnoun.interpret.parsing import PARSER_VERSION


@pytest.fixture(scope="module")
def kitchen(tmp_path_factory):
    root = tmp_path_factory.mktemp("kitchen")
    annotations = write_kitchen_annotations(root / "annotations", kitchen_script(24, 0))
    questions = root / "q.jsonl"
    build_benchmark(annotations, questions, BuildSettings(distractors="prior-hard"))
    return annotations, questions


def _choices(run_dir):
    return {i: (r["raw"], r["choice"], r["correct"]) for i, r in answered(run_dir).items()}


def test_run_writes_files_and_resumes(kitchen, tmp_path):
    _, questions = kitchen
    run = tmp_path / "run"
    metrics = run_evaluation(questions, RandomAdapter(1), run, EvalSettings(), progress=False)
    lines = (run / "predictions.jsonl").read_text().splitlines()
    total = metrics["overall"]["n"]
    assert len(lines) == total > 100
    assert json.loads((run / "metrics.json").read_text()) == metrics
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == "random" and config["parser_version"] == PARSER_VERSION
    # resuming answers nothing again
    run_evaluation(questions, RandomAdapter(1), run, EvalSettings(), progress=False)
    assert (run / "predictions.jsonl").read_text().splitlines() == lines
    # a half-written last line (a kill mid-write) is dropped and that question answered again
    data = (run / "predictions.jsonl").read_bytes()
    cut = data.rstrip(b"\n").rsplit(b"\n", 1)[0] + b"\n" + b'{"id": "P0'
    (run / "predictions.jsonl").write_bytes(cut)
    again = run_evaluation(questions, RandomAdapter(1), run, EvalSettings(), progress=False)
    assert again == metrics

    def without_latency(text_lines):
        return [{k: v for k, v in json.loads(x).items() if k != "latency"} for x in text_lines]

    after = (run / "predictions.jsonl").read_text().splitlines()
    assert without_latency(after) == without_latency(lines)  # the cut answer came back, once


def test_changed_settings_refuse_to_mix(kitchen, tmp_path):
    _, questions = kitchen
    run = tmp_path / "run"
    run_evaluation(questions, RandomAdapter(1), run, EvalSettings(), progress=False)
    with pytest.raises(VerbnounError, match=r"other settings \(frames: 8 -> 16\)"):
        run_evaluation(questions, RandomAdapter(1), run, EvalSettings(frames=16), progress=False)
    with pytest.raises(VerbnounError, match="model_settings"):
        run_evaluation(questions, RandomAdapter(2), run, EvalSettings(), progress=False)
    with pytest.raises(VerbnounError, match="parser"):
        run_evaluation(
            questions, RandomAdapter(1), run, EvalSettings(parser="original"), progress=False
        )


def test_shards_then_resume_with_another_count(kitchen, tmp_path):
    _, questions = kitchen
    reference = tmp_path / "reference"
    run_evaluation(questions, RandomAdapter(5), reference, EvalSettings(), progress=False)
    run = tmp_path / "sharded"
    assert (
        run_evaluation(
            questions, RandomAdapter(5), run, EvalSettings(), shard=Shard(1, 2), progress=False
        )
        is None
    )
    first = _choices(run)
    assert 0 < len(first) < len(_choices(reference))
    # the rest, resumed under three shards instead of two
    for k in (1, 2, 3):
        metrics = run_evaluation(
            questions, RandomAdapter(5), run, EvalSettings(), shard=Shard(k, 3), progress=False
        )
    assert metrics is not None
    assert sorted(p.name for p in run.glob("predictions*.jsonl")) == [
        "predictions.shard-1-of-2.jsonl", "predictions.shard-1-of-3.jsonl",
        "predictions.shard-2-of-3.jsonl", "predictions.shard-3-of-3.jsonl",
    ]  # fmt: skip
    ids = [
        json.loads(line)["id"]
        for p in run.glob("predictions*.jsonl")
        for line in p.read_text().splitlines()
    ]
    assert len(ids) == len(set(ids))  # nothing answered twice
    assert _choices(run) == _choices(reference)
    with pytest.raises(VerbnounError, match="K/N"):
        Shard.parse("2")
    with pytest.raises(VerbnounError, match="1 <= K <= N"):
        Shard.parse("3/2")


KILL_SCRIPT = """
import sys, time
from verbnoun.evaluate.adapters import RandomAdapter
from verbnoun.evaluate.runner import EvalSettings, run_evaluation

class Slow(RandomAdapter):
    def answer(self, requests):
        time.sleep(0.02)
        return super().answer(requests)

run_evaluation(sys.argv[1], Slow(9), sys.argv[2], EvalSettings(), batch_size=1, progress=False)
"""


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_and_repeats_nothing(kitchen, tmp_path):
    _, questions = kitchen
    reference = tmp_path / "reference"
    run_evaluation(questions, RandomAdapter(9), reference, EvalSettings(), progress=False)
    run = tmp_path / "killed"
    rng = random.Random(0)
    kills = 0
    for _ in range(12):
        process = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(questions), str(run)])
        time.sleep(rng.uniform(0.5, 1.2))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait()
        if (run / "metrics.json").is_file():
            break
    subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(questions), str(run)], check=True)
    assert kills >= 1
    lines = (run / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == len({json.loads(line)["id"] for line in lines})
    assert _choices(run) == _choices(reference)


class Garbled:
    name = "garbled"
    needs_frames = False

    def settings(self):
        return {}

    def answer(self, requests):
        return [Reply("I am not sure" if i % 2 else "A") for i, _ in enumerate(requests)]


def test_unparsed_answers_are_counted_not_guessed(kitchen, tmp_path):
    _, questions = kitchen
    metrics = run_evaluation(
        questions, Garbled(), tmp_path / "g", EvalSettings(), batch_size=4, progress=False
    )
    records = answered(tmp_path / "g").values()
    unparsed = [r for r in records if r["raw"] == "I am not sure"]
    assert all(r["choice"] is None and r["correct"] is False for r in unparsed)
    assert metrics["overall"]["unparsed"] == len(unparsed) > 0


def test_score_compares_runs(kitchen, tmp_path, capsys):
    annotations, questions = kitchen
    from verbnoun.data.annotations import EK100Annotations

    vocabulary = EK100Annotations(annotations).action_vocabulary(("train",))
    frequency = {a: vocabulary.frequency(a) for a in vocabulary.actions}
    run_evaluation(questions, RandomAdapter(0), tmp_path / "random", EvalSettings(), progress=False)
    run_evaluation(questions, PriorAdapter(frequency, "train"), tmp_path / "prior", EvalSettings(),
                   progress=False, annotations=annotations)  # fmt: skip
    prior = json.loads((tmp_path / "prior" / "metrics.json").read_text())
    assert set(prior["participants"]) == {"seen", "unseen"}
    assert set(prior["head_tail"]) <= {"head", "tail"}
    comparison = compare([load_run(tmp_path / "random"), load_run(tmp_path / "prior")])
    assert [row["model"] for row in comparison["runs"]] == ["random", "prior"]
    pair = comparison["paired"][0]
    assert pair["questions"] == comparison["runs"][0]["questions"]
    assert 0.0 <= pair["p_value"] <= 1.0
    assert main(["score", str(tmp_path / "random"), str(tmp_path / "prior"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == comparison
    assert main(["score", str(tmp_path / "nothing")]) == 1
    assert "not a run directory" in capsys.readouterr().err


def test_eval_cli(kitchen, tmp_path, capsys):
    annotations, questions = kitchen
    args = ["eval", "--questions", str(questions), "--model", "prior", "--annotations", str(annotations),
            "--out", str(tmp_path / "run"), "--no-progress"]  # fmt: skip
    assert main(args) == 0
    assert "accuracy" in capsys.readouterr().out
    assert main([*args[:-1], "--frames", "4", "--no-progress"]) == 1
    assert "other settings" in capsys.readouterr().err
    assert (
        main(
            [
                "eval",
                "--questions",
                str(questions),
                "--model",
                "openai",
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 1
    )
    assert "--api-model" in capsys.readouterr().err


class Recorder:
    """Answers 'A' and remembers each prompt it saw."""

    name = "recorder"
    needs_frames = False

    def __init__(self):
        self.tasks = {}

    def settings(self):
        return {}

    def answer(self, requests):
        for r in requests:
            self.tasks[r.question.id] = r.task
        return [Reply("A") for _ in requests]


def test_sequential_prediction_uses_the_models_own_answers(kitchen, tmp_path):
    _, questions_path = kitchen
    from verbnoun.bench.questions import read_questions

    questions = {q.id: q for q in read_questions(questions_path)}
    with_prior = [
        q
        for q in questions.values()
        if q.prior_actions and all(p.id in questions for p in q.prior_actions)
    ]
    assert with_prior
    recorder = Recorder()
    run_evaluation(questions_path, recorder, tmp_path / "seq", EvalSettings(prior_actions="model"),
                   batch_size=16, progress=False)  # fmt: skip
    records = answered(tmp_path / "seq")
    for q in with_prior:
        older, newer = (questions[p.id] for p in q.prior_actions)
        task = recorder.tasks[q.id]
        # the model answered 'A' before: its option A texts fill the prompt, not the ground truth
        assert f"you started an action {older.options[0].text}. " in task
        assert f"you started an action {newer.options[0].text}. What action" in task
        assert records[q.id]["prior_sources"] == ["model", "model"]
    recorder = Recorder()
    run_evaluation(questions_path, recorder, tmp_path / "gt", EvalSettings(prior_actions="ground_truth"),
                   batch_size=16, progress=False)  # fmt: skip
    q = with_prior[0]
    assert (
        f"you started an action {q.prior_actions[1].narration}. What action" in recorder.tasks[q.id]
    )


def test_shard_from_torchrun_environment(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert Shard.from_environment() == Shard(1, 1)
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "2")
    assert Shard.from_environment() == Shard(3, 4)
    assert Shard.from_environment().filename == "predictions.shard-3-of-4.jsonl"
    assert Shard.from_environment("1/2") == Shard(1, 2)  # an explicit --shard wins


@pytest.mark.slow
def test_processes_under_torchrun_fill_one_run(kitchen, tmp_path):
    import os

    _, questions = kitchen
    run = tmp_path / "torchrun"
    reference = tmp_path / "reference"
    run_evaluation(questions, RandomAdapter(4), reference, EvalSettings(), progress=False)
    base = [
        "eval",
        "--questions",
        str(questions),
        "--model",
        "random",
        "--seed",
        "4",
        "--out",
        str(run),
        "--no-progress",
    ]
    env = {**os.environ, "WORLD_SIZE": "2"}
    processes = [
        subprocess.Popen([sys.executable, "-m", "verbnoun.cli", *base], env={**env, "RANK": str(r)})
        for r in range(2)
    ]
    assert [p.wait() for p in processes] == [0, 0]
    assert sorted(p.name for p in run.glob("predictions*")) == [
        "predictions.shard-1-of-2.jsonl", "predictions.shard-2-of-2.jsonl",
    ]  # fmt: skip
    assert _choices(run) == _choices(reference)
