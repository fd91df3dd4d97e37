"""The built-in specialist on a small synthetic kitchen: it beats chance on validation, its
prediction files load and feed hard-MQA building, and train predictions are cross-validated."""

from __future__ import annotations

import json

import pytest
import torch

from verbnoun.bench.build import BuildSettings, build_benchmark
from verbnoun.bench.predictions import load_predictions
from verbnoun.bench.questions import read_questions
from verbnoun.cli import main
from verbnoun.data.annotations import EK100Annotations
from verbnoun.data.synth import render_kitchen
from verbnoun.train import specialist as sp
from verbnoun.train.sft import SftSettings, build_sft


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("specialist")
    render_kitchen(root / "k", videos=10, workers=1)
    ann, videos = str(root / "k" / "annotations"), str(root / "k" / "videos")
    code = main(["specialist", "train", "--annotations", ann, "--videos", videos,
                 "--out", str(root / "model"), "--folds", "2"])  # fmt: skip
    assert code == 0
    code = main(["specialist", "predict", "--model", str(root / "model"), "--annotations", ann,
                 "--videos", videos, "--out", str(root / "val.json")])  # fmt: skip
    assert code == 0
    return root, EK100Annotations(ann)


@pytest.mark.slow
def test_beats_chance_on_validation(trained):
    root, annotations = trained
    segments = annotations.segments("validation", require_labels=True)
    data = json.loads((root / "val.json").read_text())
    assert sorted(data, key=int) == [str(s.row) for s in segments]
    ranked = [data[str(s.row)]["predictions"] for s in segments]
    assert all(len(r) == 20 and len(set(r)) == 20 for r in ranked)
    assert [data[str(s.row)]["target"] for s in segments] == [s.action_id for s in segments]
    acc = sp.accuracy(segments, ranked)
    print("validation accuracy", acc)
    # chance: verb 1/12, noun 1/15, action top-5 about 5/47
    assert acc["verb_top1"] >= 0.3 and acc["noun_top1"] >= 0.25 and acc["action_top5"] >= 0.3
    assert sorted(p.name for p in (root / "model").iterdir()) == [
        "model.safetensors", "predictions_train.json", "specialist.json"
    ]  # fmt: skip
    _, config = sp.load_specialist(root / "model")
    assert config["settings"]["folds"] == 2 and len(config["actions"]) == len(
        annotations.action_vocabulary()
    )


def test_prediction_files_feed_hard_mqa_and_sft(trained, tmp_path):
    root, annotations = trained
    val = load_predictions(root / "val.json", num_verbs=12, num_nouns=15)
    assert val.format == "original"
    manifest = build_benchmark(annotations.root, tmp_path / "hard.jsonl",
                               BuildSettings(distractors="specialist"), root / "val.json")  # fmt: skip
    questions = read_questions(tmp_path / "hard.jsonl")
    assert manifest["counts"]["questions"] == len(questions) > 0
    assert all(o.source in ("ground_truth", "specialist") for q in questions for o in q.options)
    train = load_predictions(root / "model" / "predictions_train.json")
    assert len(train.by_key) == len(annotations.segments("train"))
    sft = build_sft(annotations.root, tmp_path / "sft", SftSettings(tasks=("mqa",)),
                    root / "model" / "predictions_train.json")  # fmt: skip
    assert sft["mqa_distractors"]["strategy"] == "specialist"
    assert sft["outputs"]["mqa"]["records"] == len(train.by_key)


def test_each_train_segment_is_predicted_by_a_model_that_never_saw_its_video(
    trained, tmp_path, monkeypatch
):
    _, annotations = trained
    segments = annotations.segments("train", require_labels=True)
    fake = torch.arange(len(segments), dtype=torch.uint8)[:, None, None, None, None]
    monkeypatch.setattr(sp, "load_clips", lambda segs, layout, s: fake.expand(-1, 2, 8, 8, 3))
    trained_on, predicted_by = [], {}
    real_fit, real_rank = sp.fit, sp.rank_actions

    def fit(clips, labels, settings, sizes, seed, *progress):
        trained_on.append({segments[int(i)].video_id for i in clips[:, 0, 0, 0, 0]})
        return real_fit(clips, labels, settings, sizes, seed, *progress)

    def rank(model, clips, vocabulary, top_k):
        for i in clips[:, 0, 0, 0, 0]:
            predicted_by[segments[int(i)].narration_id] = len(trained_on) - 1
        return real_rank(model, clips, vocabulary, top_k)

    monkeypatch.setattr(sp, "fit", fit)
    monkeypatch.setattr(sp, "rank_actions", rank)
    settings = sp.SpecialistSettings(frames=2, size=8, epochs=1, folds=3)
    config = sp.train_specialist(annotations.root, None, tmp_path, settings)
    assert len(trained_on) == 4  # 3 folds and the final model on everything
    assert trained_on[3] == {s.video_id for s in segments}
    assert set(predicted_by) == {s.narration_id for s in segments}
    for segment in segments:
        assert segment.video_id not in trained_on[predicted_by[segment.narration_id]]
    folds = config["cross_validation"]["folds"]
    assert sorted(set(folds.values())) == [0, 1, 2] and set(folds) == set(trained_on[3])


def test_multi_file_splits_are_keyed_by_narration_id(trained, tmp_path):
    _, annotations = trained
    segments = annotations.segments("validation", require_labels=True)
    ranked = [["0:0", "1:1"]] * len(segments)
    (tmp_path / "p.json").write_text(json.dumps(sp.prediction_file(segments, ranked, True)))
    loaded = load_predictions(tmp_path / "p.json")
    assert loaded.format == "narration_id" and set(loaded.by_key) == {
        s.narration_id for s in segments
    }


def test_an_unreadable_clip_stops_training_naming_it(trained, tmp_path, capsys):
    _, annotations = trained
    (tmp_path / "videos").mkdir()
    code = main(["specialist", "train", "--annotations", str(annotations.root),
                 "--videos", str(tmp_path / "videos"), "--out", str(tmp_path / "m")])  # fmt: skip
    first = annotations.segments("train")[0]
    err = capsys.readouterr().err
    assert code == 1 and f"segment {first.narration_id} of video {first.video_id}" in err
    assert not (tmp_path / "m" / "model.safetensors").exists()


@pytest.mark.slow
def test_predicts_another_kitchen_over_its_own_actions(trained, tmp_path, capsys):
    """Another data set with the same class lists (other videos, other actions seen): the
    specialist ranks the actions it was trained with; other class lists are refused in one
    line."""
    root, _ = trained
    render_kitchen(tmp_path / "other", videos=4, seed=7, workers=1)
    other = tmp_path / "other" / "annotations"
    out = tmp_path / "other.json"
    code = main(["specialist", "predict", "--model", str(root / "model"), "--annotations",
                 str(other), "--videos", str(tmp_path / "other" / "videos"), "--out", str(out)])  # fmt: skip
    assert code == 0
    _, config = sp.load_specialist(root / "model")
    known = set(config["actions"])
    seen = set(EK100Annotations(other).action_vocabulary().actions)
    assert seen != known  # the other kitchen's actions are not the specialist's
    data = json.loads(out.read_text())
    segments = EK100Annotations(other).segments("validation")
    assert sorted(data, key=int) == [str(s.row) for s in segments]
    assert all(set(row["predictions"]) <= known for row in data.values())

    verbs = other / "EPIC_100_verb_classes.csv"  # a class list of 13 verbs: refused
    verbs.write_text(verbs.read_text() + "12,stir,\"['stir']\",manipulate\n")
    code = main(["specialist", "predict", "--model", str(root / "model"), "--annotations",
                 str(other), "--videos", str(tmp_path / "other" / "videos"),
                 "--out", str(tmp_path / "refused.json")])  # fmt: skip
    err = capsys.readouterr().err
    assert code != 0 and not (tmp_path / "refused.json").exists()
    assert "13 verb and 15 noun classes, but the specialist" in err and len(err.splitlines()) == 1
