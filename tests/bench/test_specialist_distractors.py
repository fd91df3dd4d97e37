"""Specialist prediction files (three formats) and the benchmark and training rules."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from verbnoun.bench.distractors import SpecialistDistractors
from verbnoun.bench.predictions import challenge_ranked_actions, load_predictions
from verbnoun.data.ek100 import Segment
from verbnoun.errors import PredictionFileError, VerbnounError


def segment(row=0, nid="P01_11_0", verb=0, noun=2):
    return Segment(nid, "P01", "P01_11", 0.0, 1.0, "00:00:00.00", "00:00:01.00", 0, 60, row, row + 2,
                   "x.csv", "take plate", "take", verb, "plate", noun, (noun,))  # fmt: skip


def load(tmp_path, data, name="pred.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return load_predictions(path, num_verbs=97, num_nouns=300)


def choose(predictions, seg, k=5, rule="benchmark", seed=0, pool=0):
    chosen = SpecialistDistractors(predictions, rule, pool).choose(seg, k, random.Random(seed))
    return [(d.action_id, d.rank) for d in chosen]


def test_benchmark_rule_ground_truth_at_rank_1_rank_4_and_absent(tmp_path):
    ranked_gt1 = ["0:2", "1:2", "0:3", "2:2", "0:4", "5:5"]
    ranked_gt4 = ["1:2", "0:3", "2:2", "0:2", "0:4", "5:5"]
    ranked_absent = ["1:2", "0:3", "2:2", "0:4", "5:5", "6:6"]
    predictions = load(tmp_path, {
        "0": {"predictions": ranked_gt1, "target": "0:2"},
        "1": {"predictions": ranked_gt4},
        "2": {"predictions": ranked_absent},
    })  # fmt: skip
    assert predictions.format == "original"
    assert choose(predictions, segment(0)) == [("1:2", 2), ("0:3", 3), ("2:2", 4), ("0:4", 5)]
    assert choose(predictions, segment(1)) == [("1:2", 1), ("0:3", 2), ("2:2", 3), ("0:4", 5)]
    # absent: the ground truth replaces the 5th, so the 5th prediction is not offered
    assert choose(predictions, segment(2)) == [("1:2", 1), ("0:3", 2), ("2:2", 3), ("0:4", 4)]


def test_duplicates_are_removed_and_too_few_is_an_error(tmp_path):
    predictions = load(
        tmp_path, {"P01_11_0": {"predictions": ["1:2", "1:2", "0:3", "2:2", "0:3", "0:4", "3:3"]}}
    )
    assert predictions.format == "narration_id"
    assert choose(predictions, segment()) == [("1:2", 1), ("0:3", 2), ("2:2", 3), ("0:4", 4)]
    short = load(
        tmp_path, {"P01_11_0": {"predictions": ["1:2", "1:2", "0:3", "2:2"]}}, "short.json"
    )
    with pytest.raises(
        PredictionFileError, match=r"short.json \[P01_11_0\]: .*has 3 distinct predictions, need 5"
    ):
        choose(short, segment())


def test_training_rule_takes_k_minus_1_of_top_2k(tmp_path):
    ranked = [
        "1:2",
        "0:2",
        "0:3",
        "2:2",
        "0:4",
        "5:5",
        "6:6",
        "7:7",
        "8:8",
        "9:9",
        "10:10",
        "11:11",
    ]
    predictions = load(tmp_path, {"0": {"predictions": ranked}})
    seen = set()
    for seed in range(40):
        chosen = choose(predictions, segment(), rule="training", seed=seed)
        assert len(chosen) == 4 and len(set(chosen)) == 4
        assert all(rank <= 10 and action != "0:2" for action, rank in chosen)
        seen.update(action for action, _ in chosen)
    assert seen == set(ranked[:10]) - {"0:2"}  # every one of the top 10 but the truth is used
    few = load(tmp_path, {"0": {"predictions": ["0:2", "1:2", "0:3"]}}, "few.json")
    with pytest.raises(PredictionFileError, match="need 4"):
        choose(few, segment(), rule="training")


def test_training_rule_with_a_smaller_pool(tmp_path):
    ranked = ["1:2", "0:3", "0:2", "2:2", "0:4", "5:5", "6:6", "7:7", "8:8", "9:9"]
    predictions = load(tmp_path, {"0": {"predictions": ranked}})
    seen = set()
    for seed in range(40):
        chosen = choose(predictions, segment(), rule="training", seed=seed, pool=6)
        assert len(chosen) == 4 and all(rank <= 6 and a != "0:2" for a, rank in chosen)
        seen.update(a for a, _ in chosen)
    assert seen == set(ranked[:6]) - {"0:2"}
    # the truth inside a pool of 5 leaves exactly the other 4: the benchmark's question
    assert choose(predictions, segment(), rule="training", pool=5) == choose(predictions, segment())
    with pytest.raises(PredictionFileError, match="in its top 4, need 4"):
        choose(predictions, segment(), rule="training", pool=4)
    with pytest.raises(VerbnounError, match="only used by the training rule"):
        choose(predictions, segment(), pool=5)


def test_target_mismatch_and_missing_key(tmp_path):
    predictions = load(tmp_path, {"0": {"predictions": ["1:2"] * 5, "target": "4:4"}})
    with pytest.raises(
        PredictionFileError, match="target 4:4 differs from the annotated action 0:2"
    ):
        choose(predictions, segment())
    with pytest.raises(PredictionFileError, match=r"no prediction for row 7 \(P01_11_7\)"):
        choose(predictions, segment(row=7, nid="P01_11_7"))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"0": {"predictions": ["1:2", "0:3"', "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"0": {"predictions": "1:2"}}', "expected"),
        ('{"0": {"predictions": ["1-2"]}}', "not an action id"),
        ('{"0": {"predictions": ["97:2"]}}', "unknown class id in action 97:2"),
        ('{"0": {"predictions": ["1:300"]}}', "unknown class id"),
        ('{"0": {"predictions": [12]}}', "must be a string"),
        ('{"0": {"predictions": []}, "P01_11_0": {"predictions": []}}', "mix row indices"),
        ('{"version": "0.2", "results": {"P01_11_0": {"verb": {"0": 1.0}}}}', "expected"),
        (
            '{"version": "0.2", "results": {"P01_11_0": {"verb": {"97": 1.0}, "noun": {"0": 1}}}}',
            "unknown verb class id",
        ),
    ],
)
def test_malformed_files(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(PredictionFileError, match=message) as info:
        load_predictions(path, num_verbs=97, num_nouns=300)
    assert str(path) in str(info.value)


def test_challenge_scores_rank_like_the_official_evaluation(tmp_path):
    rng = np.random.default_rng(0)
    verb_scores, noun_scores = rng.normal(size=97), rng.normal(size=300)
    ranked = challenge_ranked_actions(verb_scores, noun_scores)
    # reference: full outer product of softmax over the top-100 of each, best 100
    top_v = np.argsort(-verb_scores)[:100]
    top_n = np.argsort(-noun_scores)[:100]
    pv = np.exp(verb_scores[top_v]) / np.exp(verb_scores[top_v]).sum()
    pn = np.exp(noun_scores[top_n]) / np.exp(noun_scores[top_n]).sum()
    pairs = sorted(
        ((pv[i] * pn[j], f"{top_v[i]}:{top_n[j]}") for i in range(97) for j in range(100)),
        reverse=True,
    )
    assert ranked == [a for _, a in pairs[:100]]
    assert ranked[0] == f"{np.argmax(verb_scores)}:{np.argmax(noun_scores)}"
    data = {
        "version": "0.2", "challenge": "action_recognition", "sls_pt": 0, "sls_tl": 0, "sls_td": 0,
        "results": {"P01_11_0": {
            "verb": {str(i): float(s) for i, s in enumerate(verb_scores)},
            "noun": {str(i): float(s) for i, s in enumerate(noun_scores)},
        }},
    }  # fmt: skip
    predictions = load(tmp_path, data)
    assert predictions.format == "challenge"
    assert predictions.ranked(segment()) == ranked
