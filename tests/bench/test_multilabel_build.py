"""Multi-select questions (issue 25) on the overlapping kitchen, whose truth is known by
construction (:mod:`verbnoun.data.overlap`).

For every strategy and option text: a question per segment, every true label among the options
and marked in ``answer_indices``, no distractor one of the segment's labels, ``max(K, labels + 1)``
options; records read back to equal questions; the task asks for every option that applies and
the target lists every true option. Single-label questions keep their record's keys, so existing
files read and compare unchanged. Bad multi-select records are refused with the file's line.
"""

from __future__ import annotations

import json
import random

import pytest

from verbnoun.bench import prompts
from verbnoun.bench.build import (
    BuildSettings,
    OptionTexts,
    build_benchmark,
    build_two_stage_questions,
)
from verbnoun.bench.predictions import load_predictions
from verbnoun.bench.questions import Question, read_questions
from verbnoun.data.dataset import open_dataset
from verbnoun.data.ek100 import action_id
from verbnoun.data.kitchen import kitchen_script
from verbnoun.data.overlap import overlap_script, write_overlap_annotations
from verbnoun.errors import QuestionFileError

VIDEOS = 10


@pytest.fixture(scope="module")
def overlap(tmp_path_factory):
    root = tmp_path_factory.mktemp("overlap")
    description = write_overlap_annotations(root, videos=VIDEOS, seed=3)
    truth = {}
    for video in overlap_script(VIDEOS, seed=3):
        for segment_id, labels in video.labels().items():
            truth[segment_id] = tuple(action_id(v, n) for v, n in labels)
    return root, description, truth


def test_the_overlap_script_keeps_the_kitchen_and_adds_a_second_action():
    base = kitchen_script(VIDEOS, seed=3)
    script = overlap_script(VIDEOS, seed=3, share=0.5)
    assert [v.left for v in script] == base  # the kitchen itself, untouched
    two = [s for v in script for s in v.right.segments]
    total = sum(len(v.segments) for v in base)
    assert 0.35 < len(two) / total < 0.65
    left = {s.narration_id: s for v in base for s in v.segments}
    for second in two:
        first = left[second.narration_id]
        assert (second.start, second.stop) == (first.start, first.stop)
        assert second.verb_class != first.verb_class and second.noun_class != first.noun_class
    assert overlap_script(VIDEOS, seed=3) == script
    assert not any(v.right.segments for v in overlap_script(VIDEOS, seed=3, share=0.0))


def test_the_reader_gives_the_scripts_truth(overlap):
    _root, description, truth = overlap
    dataset = open_dataset(description)
    segments = [s for split in ("train", "validation") for s in dataset.segments(split)]
    assert {s.narration_id: s.action_ids for s in segments} == truth
    assert all(s.action_id == s.action_ids[0] for s in segments)


@pytest.mark.parametrize("distractors", ["random", "prior-hard"])
@pytest.mark.parametrize("option_text", ["narration", "official_key"])
def test_multi_select_questions(overlap, tmp_path, distractors, option_text):
    _root, description, truth = overlap
    out = tmp_path / "q.jsonl"
    settings = BuildSettings(distractors=distractors, option_text=option_text, num_options=4)
    manifest = build_benchmark(description, out, settings)
    questions = read_questions(out)
    validation = {s.narration_id for s in open_dataset(description).segments("validation")}
    assert {q.id for q in questions} == validation
    for q in questions:
        labels = truth[q.id]
        assert q.multi_select and q.action_ids == labels == q.true_action_ids
        assert len(q.options) == max(4, len(labels) + 1)
        ids = [o.action_id for o in q.options]
        assert sorted(ids[i] for i in q.answer_indices) == sorted(labels)
        assert q.correct_indices == q.answer_indices == tuple(sorted(q.answer_indices))
        assert q.answer_index == q.answer_indices[0]
        for index, option in enumerate(q.options):
            is_true = index in q.answer_indices
            assert (option.source == "ground_truth") == is_true
            assert (option.action_id in labels) == is_true  # no distractor is a true label
        assert "More than one option may be correct" in q.task()
        assert q.target() == prompts.MULTI_ANSWER_SEPARATOR.join(
            f"{prompts.letter(i)}. {q.options[i].text}" for i in q.answer_indices
        )
    two = sum(len(truth[q.id]) == 2 for q in questions)
    assert manifest["counts"]["multi_select"] == {
        "questions": len(questions),
        "labels_per_question": {"1": len(questions) - two, "2": two},
        "true_options_shown": len(questions) + two,
    }
    # the same bytes again, and records that read back to the same questions
    again = tmp_path / "again.jsonl"
    build_benchmark(description, again, settings)
    assert again.read_bytes() == out.read_bytes()
    for q in questions:
        assert Question.from_dict(json.loads(json.dumps(q.to_dict()))) == q


def test_more_labels_than_options(tmp_path):
    (tmp_path / "actions.csv").write_text("key\n" + "".join(f"a{i}\n" for i in range(12)))
    rows = "id,video,start,stop,action\n"
    rows += 's0,v,0,1,"0,1,2,3,4"\n' + "".join(f"s{i},v,{i},{i + 1},{i}\n" for i in range(1, 12))
    (tmp_path / "segments.csv").write_text(rows)
    (tmp_path / "set.yaml").write_text(
        "labels: action\nsegments:\n  columns: {id: id, video: video, start: start, stop: stop, "
        "action: action}\n  multi_label: {separator: ','}\nclasses:\n  action: actions.csv\n"
        "splits:\n  validation: segments.csv\n"
    )
    build_benchmark(tmp_path / "set.yaml", tmp_path / "q.jsonl", BuildSettings(num_options=5))
    first = read_questions(tmp_path / "q.jsonl")[0]
    assert len(first.options) == 6 and len(first.answer_indices) == 5
    assert [first.options[i].action_id for i in range(6) if i not in first.answer_indices] != []


def test_specialist_distractors_skip_the_other_true_labels(overlap, tmp_path):
    _root, description, truth = overlap
    dataset = open_dataset(description)
    actions = list(dataset.action_vocabulary().actions)
    predictions = {}
    for segment in dataset.segments("validation"):
        # the specialist ranks the second true label first: it must not become a distractor
        labels = list(segment.action_ids)
        others = [a for a in actions if a not in labels][:12]
        predictions[segment.narration_id] = {"predictions": labels[::-1] + others}
    path = tmp_path / "pred.json"
    path.write_text(json.dumps(predictions))
    out = tmp_path / "q.jsonl"
    build_benchmark(description, out, BuildSettings(distractors="specialist", num_options=5), path)
    for q in read_questions(out):
        distractors = [o for i, o in enumerate(q.options) if i not in q.answer_indices]
        assert all(o.source == "specialist" and o.action_id not in truth[q.id] for o in distractors)
        assert len(q.answer_indices) == len(truth[q.id])


def test_two_stage_marks_every_true_label_the_specialist_shows(overlap, tmp_path):
    _root, description, truth = overlap
    dataset = open_dataset(description)
    segments = dataset.segments("validation")
    actions = list(dataset.action_vocabulary().actions)
    rng = random.Random(0)
    predictions = {}
    for segment in segments:
        ranked = [a for a in actions if a not in segment.action_ids]
        rng.shuffle(ranked)
        shown = list(segment.action_ids[: 1 + (rng.random() < 0.5)])
        if rng.random() < 0.3:
            shown = []  # the specialist missed every label
        predictions[segment.narration_id] = {"predictions": shown + ranked[:8]}
    path = tmp_path / "pred.json"
    path.write_text(json.dumps(predictions))
    loaded = load_predictions(path, num_verbs=len(dataset.verbs()), num_nouns=len(dataset.nouns()))
    texts = OptionTexts.of(dataset, dataset.action_vocabulary(), "official_key")
    questions = build_two_stage_questions(segments, loaded, texts, top_k=6)
    assert any(q.answer_index == -1 for q in questions)
    for q, segment in zip(questions, segments, strict=True):
        shown = [i for i, o in enumerate(q.options) if o.action_id in truth[q.id]]
        assert q.action_ids == truth[q.id] and list(q.answer_indices) == shown
        assert q.answer_index == (shown[0] if shown else -1)
        assert [o.action_id for o in q.options][: len(shown)] == [
            a for a in predictions[segment.narration_id]["predictions"][: len(shown)]
        ]


def test_single_label_records_keep_their_keys(tmp_path):
    from verbnoun.data.kitchen import write_kitchen_annotations

    annotations = write_kitchen_annotations(tmp_path / "k", kitchen_script(videos=4, seed=0))
    build_benchmark(annotations, tmp_path / "q.jsonl", BuildSettings())
    record = json.loads((tmp_path / "q.jsonl").read_text().splitlines()[0])
    assert list(record) == [
        "id", "video_id", "participant_id", "start", "stop", "duration", "narration",
        "verb_class", "noun_class", "action_id", "answer_index", "answer_letter", "options",
        "prior_actions",
    ]  # fmt: skip
    question = read_questions(tmp_path / "q.jsonl")[0]
    assert not question.multi_select and question.correct_indices == (question.answer_index,)
    assert "More than one" not in question.task()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.update(answer_indices=r["answer_indices"][:1]), "do not mark the actions"),
        (lambda r: r.pop("action_ids"), "action_ids must be a non-empty list"),
        (lambda r: r.update(action_ids=[]), "action_ids must be a non-empty list"),
        (lambda r: r.update(answer_indices=["A"]), "answer_indices must be a list"),
        (lambda r: r.update(answer_index=r["answer_indices"][-1]), "not the first true option"),
        (lambda r: r.update(action_ids=r["action_ids"][::-1]), "action_ids start with"),
    ],
)
def test_bad_multi_select_records_are_refused(overlap, tmp_path, change, message):
    _root, description, _truth = overlap
    out = tmp_path / "q.jsonl"
    build_benchmark(description, out, BuildSettings())
    lines = out.read_text().splitlines()
    number = next(i for i, line in enumerate(lines) if len(json.loads(line)["action_ids"]) == 2)
    record = json.loads(lines[number])
    change(record)
    lines[number] = json.dumps(record)
    out.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        QuestionFileError, match=rf"q\.jsonl:{number + 1}: bad question: .*{message}"
    ):
        read_questions(out)


def test_the_blind_audit_counts_any_true_option(overlap, tmp_path):
    from verbnoun.bench.audit import audit_questions, item_of_question, item_of_record

    _root, description, _truth = overlap
    build_benchmark(description, tmp_path / "train.jsonl", BuildSettings(split="train"))
    build_benchmark(description, tmp_path / "q.jsonl", BuildSettings())
    questions = read_questions(tmp_path / "q.jsonl")
    for q in questions:
        item = item_of_question(q)
        assert [i for i in range(len(q.options)) if item.is_right(i)] == list(q.answer_indices)
        record = {"question_type": "mqa", "id": q.id, "video": q.video_id,
                  "conversations": [{"value": q.task()}, {"value": q.target()}]}  # fmt: skip
        assert item_of_record(record).right_options == q.correct_indices
    audit = audit_questions(questions, train=read_questions(tmp_path / "train.jsonl"))
    chance = sum(len(q.answer_indices) / len(q.options) for q in questions) / len(questions)
    assert audit["chance"] == pytest.approx(chance)
    # the letter rule: the letter most often right in training, right on any true option
    from collections import Counter

    letters = Counter(
        k for q in read_questions(tmp_path / "train.jsonl") for k in q.correct_indices
    )
    picks = [max(range(len(q.options)), key=lambda i: (letters.get(i, 0), -i)) for q in questions]
    right = sum(pick in q.answer_indices for pick, q in zip(picks, questions, strict=True))
    assert audit["rules"]["letter"]["correct"] == right
    assert chance > sum(1 / len(q.options) for q in questions) / len(questions)


# sha256 of the kitchen's question files as built before several labels existed (commit 3b5ec86)
BEFORE = {
    ("random", "narration"): "5ebf31362736652c38a038d90210afeceaeb0901f369870591b423534da661cd",
    ("random", "official_key"): "ffa1ad59255e8fceaadf7d59a1b63bd9063891fd69a8fdd54c740485838f985a",
    ("prior-hard", "narration"): "00756312b9447fbd723583e10f819f41ba2988383629d380f323824edd08bcbc",
    (
        "prior-hard",
        "official_key",
    ): "9d24f29789629a8cb7c553f0638b8d9688394efb95618e8da93725c965bb41e8",
}


@pytest.mark.parametrize(("distractors", "option_text"), sorted(BEFORE))
def test_single_label_question_files_keep_their_bytes(tmp_path, distractors, option_text):
    from verbnoun.data.kitchen import write_kitchen_annotations
    from verbnoun.fileio import sha256_file

    annotations = write_kitchen_annotations(tmp_path / "k", kitchen_script(videos=6, seed=0))
    out = tmp_path / "q.jsonl"
    build_benchmark(
        annotations, out, BuildSettings(distractors=distractors, option_text=option_text)
    )
    assert sha256_file(out) == BEFORE[(distractors, option_text)]
