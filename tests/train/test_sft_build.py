"""SFT task generators on the real EK100 annotations: format, class ids and the rules of SPEC 5."""

from __future__ import annotations

import json
import random
import re

import pytest

from verbnoun.bench import prompts
from verbnoun.bench.build import OptionTexts, prior_actions
from verbnoun.cli import main
from verbnoun.data.kitchen import kitchen_script, write_kitchen_annotations
from verbnoun.errors import VerbnounError
from verbnoun.train.sft import SftSettings, build_sft, with_time_instruction

KEYS = ["id", "video", "start_timestamp", "end_timestamp", "question_type", "verb_id", "noun_id",
        "action_id", "conversations"]  # fmt: skip
HEAD = "<image>\n"


def read(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def fake_predictions(segments, vocabulary, path):
    """Original-format file: 12 ranked actions per row, the truth inside the top 10 for half."""
    data = {}
    for segment in segments:
        rng = random.Random(segment.row)
        ranked = [a for a in rng.sample(vocabulary.actions, 13) if a != segment.action_id][:12]
        if segment.row % 2 == 0:
            ranked.insert(segment.row % 10, segment.action_id)
        data[str(segment.row)] = {"predictions": ranked, "target": segment.action_id}
    path.write_text(json.dumps(data))
    return {str(k): v["predictions"] for k, v in data.items()}


@pytest.fixture(scope="module")
def built(ek100, ek100_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("sft")
    segments = ek100.segments("validation", require_labels=True)
    vocabulary = ek100.action_vocabulary()
    ranked = fake_predictions(segments, vocabulary, out / "pred.json")
    settings = SftSettings(split="validation", seed=3)
    manifest = build_sft(ek100_dir, out / "a", settings, out / "pred.json")
    files = {task: read(out / "a" / f"{task}.jsonl") for task in ("mqa", "temporal", "narration")}
    return {"out": out, "manifest": manifest, "files": files, "segments": segments,
            "ranked": ranked, "vocabulary": vocabulary, "settings": settings}  # fmt: skip


@pytest.mark.slow
def test_record_format_and_class_ids(built):
    segments, vocabulary = built["segments"], built["vocabulary"]
    for task, records in built["files"].items():
        assert len(records) == len(segments) == 9668
        for segment, r in zip(segments, records, strict=True):
            assert list(r) == KEYS
            assert r["id"] == f"{task}:{segment.narration_id}" and r["video"] == segment.video_id
            assert (r["verb_id"], r["noun_id"]) == (segment.verb_class, segment.noun_class)
            assert vocabulary.actions[r["action_id"]] == segment.action_id
            human, gpt = r["conversations"]
            assert human["from"] == "human" and human["value"].startswith(HEAD)
            assert "The provided video lasts" not in human["value"]  # inserted by the trainer
            assert gpt["from"] == "gpt" and gpt["value"]
    counts = {task: o["records"] for task, o in built["manifest"]["outputs"].items()}
    assert counts == {"mqa": 9668, "temporal": 9668, "narration": 9668}
    assert built["manifest"]["mqa_distractors"]["strategy"] == "specialist"
    assert {i["path"] for i in built["manifest"]["inputs"]} >= {"EPIC_100_validation.csv"}


def test_mqa_uses_the_training_rule_of_the_specialist_file(built, ek100):
    ranked, vocabulary = built["ranked"], built["vocabulary"]
    texts = OptionTexts(vocabulary, ek100.verbs(), ek100.nouns(), "narration")
    allowed = {
        a: {*vocabulary.narrations.get(a, {}), texts.key_text(a)} for a in vocabulary.actions
    }
    for segment, r in zip(built["segments"], built["files"]["mqa"], strict=True):
        text = r["conversations"][0]["value"]
        options = re.findall(r"([A-E])\. (.*?)(?=, [A-E]\. |$)", text.split(":\n")[-1])
        assert [letter for letter, _ in options] == list("ABCDE")
        answer = r["conversations"][1]["value"]
        assert answer in [f"{letter}. {t}" for letter, t in options]
        assert answer.split(". ", 1)[1] == segment.narration
        top10 = [a for a in ranked[str(segment.row)][:10] if a != segment.action_id]
        wrong = [t for letter, t in options if f"{letter}. {t}" != answer]
        # each distractor's text names one of the top-10 actions other than the truth
        for t in wrong:
            assert any(t in allowed[a] for a in top10), (segment.narration_id, t)


def test_a_smaller_specialist_pool_keeps_distractors_in_its_top_n(
    built, ek100, ek100_dir, tmp_path
):
    settings = SftSettings(split="validation", seed=3, tasks=("mqa",), specialist_pool=5)
    manifest = build_sft(ek100_dir, tmp_path, settings, built["out"] / "pred.json")
    assert manifest["mqa_distractors"]["rule"].startswith(
        "training: K-1 of the specialist's top 5 "
    )
    ranked, vocabulary = built["ranked"], built["vocabulary"]
    texts = OptionTexts(vocabulary, ek100.verbs(), ek100.nouns(), "narration")
    records = read(tmp_path / "mqa.jsonl")
    for segment, r in zip(built["segments"], records, strict=True):
        top5 = [a for a in ranked[str(segment.row)][:5] if a != segment.action_id]
        allowed = {t for a in top5 for t in (*vocabulary.narrations.get(a, {}), texts.key_text(a))}
        options = re.findall(r"[A-E]\. (.*?)(?=, [A-E]\. |$)", r["conversations"][0]["value"])
        answer = r["conversations"][1]["value"].split(". ", 1)[1]
        assert all(t in allowed for t in options if t != answer), segment.narration_id
    for pool, distractors, message in (
        (3, None, "holds fewer than the 4 distractors"),
        (5, "random", "only used with specialist distractors"),
    ):
        settings = SftSettings(tasks=("mqa",), distractors=distractors, specialist_pool=pool)
        with pytest.raises(VerbnounError, match=message):
            build_sft(ek100_dir, tmp_path / "x", settings, built["out"] / "pred.json")


def test_prior_actions_on_about_30_percent_of_qualifying_segments(built):
    qualifying = prior_actions(built["segments"])
    shown = {r["id"].split(":", 1)[1] for r in built["files"]["mqa"]
             if r["question_type"] == "mqa_prior_actions"}  # fmt: skip
    assert shown <= set(qualifying)
    share = len(shown) / len(qualifying)
    assert len(qualifying) == 3019 and 0.27 < share < 0.33
    for r in built["files"]["mqa"]:
        nid = r["id"].split(":", 1)[1]
        text = r["conversations"][0]["value"]
        if nid in shown:
            older, newer = qualifying[nid]
            story = (
                f"\n{older.offset:.2f} seconds ago, you started an action {older.narration}. "
                f"{newer.offset:.2f} seconds ago, you started an action {newer.narration}. "
            )
            assert story in text
            assert "Here are the options of actions you can select:\n" in text
        else:
            assert "Here are the options of actions you are selecting:\n" in text


def test_temporal_answers_match_the_padding_and_the_question_format(built):
    clamped = 0
    for segment, r in zip(built["segments"], built["files"]["temporal"], strict=True):
        question, answer = (turn["value"] for turn in r["conversations"])
        assert question == HEAD + prompts.TEMPORAL_DETECTION.format(
            narration=segment.narration, duration=f"{segment.duration:.2f}"
        )
        assert re.fullmatch(r"\d+\.\d\d: \d+\.\d\d", answer)  # 'start_timestamp: end_timestamp'
        start, end = (float(x) for x in answer.split(": "))
        w0, w1 = r["start_timestamp"], r["end_timestamp"]
        assert w0 >= 0 and w0 <= segment.start and w1 >= segment.stop
        assert abs(start - (segment.start - w0)) < 0.006 and abs(end - (segment.stop - w0)) < 0.006
        if w0 == 0 and segment.start < 3:
            clamped += 1
        else:
            assert abs((w1 - w0) - (segment.duration + 3.0)) < 0.002
    assert clamped < 100


@pytest.mark.slow
def test_narration_answers_and_determinism(built, ek100, tmp_path):
    for segment, r in zip(built["segments"], built["files"]["narration"], strict=True):
        assert r["conversations"][0]["value"] == HEAD + prompts.DIRECT_NARRATION
        assert r["conversations"][1]["value"] == segment.narration
    again = build_sft(ek100, tmp_path / "b", built["settings"], built["out"] / "pred.json")
    other = build_sft(ek100, tmp_path / "c", SftSettings(split="validation", seed=4),
                      built["out"] / "pred.json")  # fmt: skip
    for task in ("mqa", "temporal", "narration"):
        assert again["outputs"][task]["sha256"] == built["manifest"]["outputs"][task]["sha256"]
    assert other["outputs"]["mqa"]["sha256"] != again["outputs"]["mqa"]["sha256"]
    assert other["outputs"]["temporal"]["sha256"] != again["outputs"]["temporal"]["sha256"]
    assert other["outputs"]["narration"]["sha256"] == again["outputs"]["narration"]["sha256"]


def test_time_instruction_is_inserted_after_the_image_token():
    value = HEAD + "task"
    assert with_time_instruction(value, 2.5, 8) == (
        HEAD + "The provided video lasts for 2.500 seconds, and 8 frames are uniformly "
        "sampled from it.task"
    )


@pytest.mark.slow
def test_train_fallback_gives_minus_one_for_actions_outside_the_vocabulary(ek100, tmp_path):
    manifest = build_sft(ek100, tmp_path, SftSettings(tasks=("narration",)))
    assert manifest["outputs"]["narration"]["records"] == 29023
    assert manifest["split_files"][0].startswith("UDA_annotations/")
    records = read(tmp_path / "narration.jsonl")
    outside = ek100.action_vocabulary().provenance["train_fallback"][
        "uda_segments_outside_vocabulary"
    ]
    assert outside > 0 and sum(r["action_id"] == -1 for r in records) == outside
    assert all(r["verb_id"] >= 0 and r["noun_id"] >= 0 for r in records)
    assert len({r["id"] for r in records}) == 29023


def test_user_errors_name_the_problem(ek100_dir, tmp_path):
    with pytest.raises(VerbnounError, match="'prior' changes 'mqa'"):
        build_sft(ek100_dir, tmp_path, SftSettings(tasks=("prior", "temporal")))
    (tmp_path / "p.json").write_text(
        json.dumps({"0": {"predictions": [f"0:{n}" for n in range(1, 8)]}})
    )
    with pytest.raises(VerbnounError, match=r"p\.json \[1\]: no prediction for row 1"):
        build_sft(ek100_dir, tmp_path, SftSettings(split="validation", tasks=("mqa",)),
                  tmp_path / "p.json")  # fmt: skip


def test_cli_build_on_the_kitchen(tmp_path, capsys):
    annotations = write_kitchen_annotations(tmp_path / "ann", kitchen_script(6, 0))
    out = tmp_path / "sft"
    code = main(["sft", "build", "--annotations", str(annotations), "--out", str(out),
                 "--tasks", "mqa,temporal", "--seed", "1"])  # fmt: skip
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "mixture.yaml", "mqa.jsonl", "sft.manifest.json", "temporal.jsonl"
    ]  # fmt: skip
    assert "mqa: " in capsys.readouterr().out
    manifest = json.loads((out / "sft.manifest.json").read_text())
    assert manifest["mqa_distractors"]["strategy"] == "prior-hard"  # no --predictions given
    assert manifest["settings"]["seed"] == 1 and manifest["outputs"]["mqa"]["records"] > 20
    code = main(["sft", "build", "--annotations", str(annotations), "--out", str(out),
                 "--tasks", "mqa,bogus"])  # fmt: skip
    assert code == 1 and "unknown task(s) bogus" in capsys.readouterr().err


def test_cli_random_distractors_for_comparison_runs(tmp_path, capsys):
    annotations = write_kitchen_annotations(tmp_path / "ann", kitchen_script(6, 0))
    outputs = {}
    for kind in ("random", "prior-hard"):
        out = tmp_path / kind
        args = ["sft", "build", "--annotations", str(annotations), "--out", str(out),
                "--tasks", "mqa", "--distractors", kind]  # fmt: skip
        assert main(args) == 0
        manifest = json.loads((out / "sft.manifest.json").read_text())
        assert manifest["mqa_distractors"]["strategy"] == kind
        assert manifest["settings"]["distractors"] == kind
        outputs[kind] = (out / "mqa.jsonl").read_text()
    assert outputs["random"] != outputs["prior-hard"]
    args = ["sft", "build", "--annotations", str(annotations), "--out", str(tmp_path / "x"),
            "--tasks", "mqa", "--distractors", "hardest"]  # fmt: skip
    assert main(args) == 1 and "hardest" in capsys.readouterr().err
