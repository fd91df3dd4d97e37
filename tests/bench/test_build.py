"""The MQA builder on the real EK100 validation split and on small hand-made tables."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import Counter

import pytest

from verbnoun.bench.build import BuildSettings, build_benchmark, manifest_path, prior_actions
from verbnoun.bench.distractors import PriorHardDistractors, RandomDistractors
from verbnoun.bench.questions import read_questions
from verbnoun.data.annotations import ActionVocabulary
from verbnoun.data.ek100 import Segment
from verbnoun.errors import QuestionFileError, VerbnounError


@pytest.fixture(scope="module")
def random_benchmark(ek100_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("mqa") / "validation-random.jsonl"
    manifest = build_benchmark(ek100_dir, out, BuildSettings())
    return out, manifest, read_questions(out)


@pytest.mark.slow
def test_validation_benchmark(random_benchmark, ek100):
    _out, manifest, questions = random_benchmark
    segments = {s.narration_id: s for s in ek100.segments("validation")}
    assert len(questions) == 9668 == manifest["counts"]["questions"]
    vocabulary = ek100.action_vocabulary()
    for q in questions:
        truth = segments[q.id]
        assert len(q.options) == 5
        assert len({o.action_id for o in q.options}) == 5 and len(set(q.option_texts)) == 5
        correct = [o for o in q.options if o.source == "ground_truth"]
        assert correct == [q.options[q.answer_index]]
        assert correct[0].text == truth.narration and correct[0].action_id == truth.action_id
        for i, option in enumerate(q.options):
            if i != q.answer_index:
                assert option.action_id != truth.action_id and option.action_id in vocabulary
                assert option.text in vocabulary.narrations[option.action_id]
    letters = Counter(q.answer_letter for q in questions)
    assert all(abs(letters[L] / 9668 - 0.2) < 0.02 for L in "ABCDE"), letters
    assert manifest["counts"]["letter_chi2"] < 18.5  # chi-square, 4 dof: p > 0.001
    with_prior = [q for q in questions if q.prior_actions]
    assert len(with_prior) == manifest["counts"]["with_prior_actions"] > 1000


def test_manifest(random_benchmark, ek100_dir):
    out, manifest, _ = random_benchmark
    assert json.loads(manifest_path(out).read_text()) == manifest
    from verbnoun.fileio import sha256_file

    assert manifest["output"] == {"path": out.name, "sha256": sha256_file(out)}
    paths = {entry["path"]: entry["sha256"] for entry in manifest["inputs"]}
    assert paths["EPIC_100_validation.csv"] == sha256_file(ek100_dir / "EPIC_100_validation.csv")
    assert "UDA_annotations/EPIC_100_uda_source_train.csv" in paths
    assert manifest["settings"]["distractors"] == "random" and manifest["settings"]["seed"] == 0
    assert manifest["vocabulary"]["actions"] == 3806
    assert manifest["llavaction_version"]


@pytest.mark.slow
def test_identical_bytes_across_processes_and_hash_seeds(ek100_dir, tmp_path, random_benchmark):
    script = (
        "import sys; from verbnoun.bench.build import BuildSettings, build_benchmark; "
        "build_benchmark(sys.argv[1], sys.argv[2], BuildSettings(distractors='prior-hard', seed=7))"
    )
    outputs = []
    for hash_seed in ("1", "12345"):
        out = tmp_path / f"q{hash_seed}.jsonl"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run(
            [sys.executable, "-c", script, str(ek100_dir), str(out)], check=True, env=env
        )
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    assert outputs[0] != random_benchmark[0].read_bytes()


@pytest.mark.slow
def test_specialist_benchmark_end_to_end(ek100, ek100_dir, tmp_path):
    segments = ek100.segments("validation")
    vocabulary = ek100.action_vocabulary()
    rng = random.Random(0)
    data, where = {}, {}
    for s in segments:
        others = [a for a in rng.sample(vocabulary.actions, 8) if a != s.action_id][:6]
        position = rng.choice([0, 3, None])  # ground truth at rank 1, rank 4, or absent
        if position is not None:
            others.insert(position, s.action_id)
        data[str(s.row)] = {"predictions": others, "target": s.action_id}
        where[s.narration_id] = (position, others)
    path = tmp_path / "specialist.json"
    path.write_text(json.dumps(data))
    out = tmp_path / "tim.jsonl"
    build_benchmark(ek100_dir, out, BuildSettings(distractors="specialist"), path)
    for q in read_questions(out):
        position, ranked = where[q.id]
        distractors = sorted((o.rank, o.action_id) for o in q.options if o.source == "specialist")
        expected = [(r, a) for r, a in enumerate(ranked[:5], 1) if a != q.action_id][:4]
        assert distractors == expected
    with pytest.raises(VerbnounError, match="needs --predictions"):
        build_benchmark(ek100_dir, out, BuildSettings(distractors="specialist"))


@pytest.mark.slow
def test_official_key_text_and_k(ek100, ek100_dir, tmp_path):
    out = tmp_path / "keys.jsonl"
    build_benchmark(ek100_dir, out, BuildSettings(option_text="official_key", num_options=26))
    questions = read_questions(out)
    first = questions[0]
    assert len(first.options) == 26
    assert first.options[first.answer_index].text == "take plate"
    assert all(o.text_source == "official_key" for q in questions[:50] for o in q.options)
    dust_pan = ek100.nouns().keys.index("pan:dust")
    dust = [q for q in questions if q.noun_class == dust_pan]
    assert dust and all(q.options[q.answer_index].text.endswith(" dust pan") for q in dust)
    with pytest.raises(VerbnounError, match=r"num_options must be 2\.\.26"):
        build_benchmark(ek100_dir, out, BuildSettings(num_options=27))
    with pytest.raises(VerbnounError, match=r"EPIC_100_test_timestamps\.csv:1: labels required"):
        build_benchmark(ek100_dir, out, BuildSettings(split="test"))


def _seg(nid, video, start, action="0:1", row=0):
    verb, noun = map(int, action.split(":"))
    return Segment(nid, "P01", video, start, start + 1.0, "", "", 0, 1, row, row + 2, "x.csv",
                   f"n{nid}", "v", verb, "n", noun, (noun,))  # fmt: skip


def test_prior_actions_rule():
    segments = [
        _seg("a", "V1", 0.0, row=0), _seg("b", "V1", 2.0, row=1), _seg("c", "V1", 4.5, row=2),
        _seg("d", "V1", 9.0, row=3), _seg("e", "V1", 10.0, row=4), _seg("f", "V1", 11.0, row=5),
        _seg("g", "V2", 11.5, row=6),
    ]  # fmt: skip
    priors = prior_actions(segments)
    assert set(priors) == {"c", "f"}
    older, newer = priors["c"]
    assert (older.narration, older.offset, newer.narration, newer.offset) == ("na", 4.5, "nb", 2.5)
    older, newer = priors["f"]
    assert (older.offset, newer.offset) == (2.0, 1.0)


def _vocabulary(counts: dict[str, int]) -> ActionVocabulary:
    return ActionVocabulary(tuple(sorted(counts)), {a: {f"text {a}": c} for a, c in counts.items()})


def test_prior_hard_shares_verb_or_noun_weighted_by_frequency():
    counts = {
        "0:1": 5,
        "0:2": 100,
        "0:3": 1,
        "0:4": 1,
        "1:1": 100,
        "2:1": 1,
        "3:1": 1,
        "5:5": 1,
        "6:6": 1,
    }
    strategy = PriorHardDistractors(_vocabulary(counts))
    truth = _seg("x", "V", 0.0, "0:1")
    picks = Counter()
    for seed in range(300):
        chosen = strategy.choose(truth, 3, random.Random(seed))
        assert len(chosen) == 2 and len({d.action_id for d in chosen}) == 2
        sources = sorted(d.source for d in chosen)
        assert sources == [
            "prior-hard:noun",
            "prior-hard:verb",
        ]  # one shares the verb, one the noun
        for d in chosen:
            verb, noun = d.action_id.split(":")
            assert d.action_id != "0:1" and (verb == "0" or noun == "1")
            picks[d.action_id] += 1
    assert picks["0:2"] > 250 and picks["1:1"] > 250  # frequent actions dominate
    # too few sharing actions: the rest by frequency from everything else
    chosen = strategy.choose(truth, 9, random.Random(0))
    assert len(chosen) == 8
    assert sorted(d.source for d in chosen).count("prior-hard:frequency") == 2
    with pytest.raises(VerbnounError, match="too few actions"):
        strategy.choose(truth, 11, random.Random(0))


def test_random_excludes_ground_truth():
    strategy = RandomDistractors(_vocabulary({"0:1": 1, "0:2": 1, "0:3": 1}))
    for seed in range(50):
        chosen = strategy.choose(_seg("x", "V", 0.0, "0:1"), 3, random.Random(seed))
        assert sorted(d.action_id for d in chosen) == ["0:2", "0:3"]


def test_truncated_question_file(random_benchmark, tmp_path):
    data = random_benchmark[0].read_bytes()
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(QuestionFileError, match=r"cut.jsonl:\d+: "):
        read_questions(cut)
    lines = data.splitlines(keepends=True)
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(
        lines[0] + lines[1].replace(b'"answer_index": ', b'"answer_index": 9') + lines[2]
    )
    with pytest.raises(QuestionFileError, match=r"bad.jsonl:2: bad question: answer_index"):
        read_questions(bad)


@pytest.mark.slow
def test_train_split_from_the_uda_fallback(ek100_dir, tmp_path):
    out = tmp_path / "train.jsonl"
    manifest = build_benchmark(
        ek100_dir, out, BuildSettings(split="train", distractors="prior-hard")
    )
    assert manifest["counts"]["questions"] == 29023
    assert manifest["split_files"] == [
        "UDA_annotations/EPIC_100_uda_source_train.csv",
        "UDA_annotations/EPIC_100_uda_source_val.csv",
        "UDA_annotations/EPIC_100_uda_target_val.csv",
    ]
    assert "EPIC_100_train.csv not found" in manifest["vocabulary"]["train_fallback"]["reason"]
    # the two UDA actions outside the vocabulary still get questions (their own narration is
    # the answer) but are never offered as distractors
    questions = read_questions(out)
    outside = {"35:69", "40:6"}
    assert sum(q.action_id in outside for q in questions) == 2
    assert not any(
        o.action_id in outside for q in questions for o in q.options if o.source != "ground_truth"
    )
