"""Two-stage recognition: specialist top-K as options, no ground truth forced in."""

from __future__ import annotations

import json
import random

from verbnoun.bench.questions import read_questions
from verbnoun.cli import main
from verbnoun.data.annotations import EK100Annotations
from verbnoun.data.kitchen import kitchen_script, write_kitchen_annotations


def test_two_stage_with_the_specialist_baseline(tmp_path, capsys):
    annotations = write_kitchen_annotations(tmp_path / "a", kitchen_script(20, 1))
    folder = EK100Annotations(annotations)
    segments = folder.segments("validation")
    actions = folder.action_vocabulary().actions
    rng = random.Random(0)
    data, rank_of_truth = {}, {}
    for s in segments:
        others = [a for a in rng.sample(actions, 7) if a != s.action_id][:6]
        rank = rng.choice([1, 2, 6, None])  # None: the specialist missed it
        if rank is not None:
            others.insert(rank - 1, s.action_id)
        data[s.narration_id] = {"predictions": others[:6]}
        rank_of_truth[s.narration_id] = rank
    predictions = tmp_path / "specialist.json"
    predictions.write_text(json.dumps(data))
    run = tmp_path / "run"
    args = ["eval", "--two-stage", "--top-k", "5", "--model", "specialist", "--predictions", str(predictions),
            "--annotations", str(annotations), "--out", str(run), "--no-progress"]  # fmt: skip
    assert main(args) == 0
    questions = read_questions(run / "two-stage-top5.jsonl")
    assert len(questions) == len(segments)
    for q in questions:
        rank = rank_of_truth[q.id]
        expected = rank - 1 if rank is not None and rank <= 5 else -1
        assert q.answer_index == expected
        assert [o.rank for o in q.options] == [1, 2, 3, 4, 5]
    metrics = json.loads((run / "metrics.json").read_text())
    n = len(segments)
    at_1 = sum(r == 1 for r in rank_of_truth.values()) / n
    within_5 = sum(r is not None and r <= 5 for r in rank_of_truth.values()) / n
    assert metrics["recognition"]["action"] == at_1  # the baseline always picks rank 1
    assert metrics["truth_among_options"] == within_5  # the ceiling
    assert metrics["recognition"]["verb"] >= metrics["recognition"]["action"]
    # resuming the same command rebuilds identical questions and answers nothing again
    before = (run / "predictions.jsonl").read_bytes()
    assert main(args) == 0
    assert (run / "predictions.jsonl").read_bytes() == before
    assert main(["eval", "--two-stage", "--model", "random", "--out", str(tmp_path / "x")]) == 1
    assert "--two-stage needs --predictions" in capsys.readouterr().err
