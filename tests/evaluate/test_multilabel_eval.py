"""Multi-select questions through `eval` and `score`: replies read as sets, scored as sets.

The question files are written here by hand (several labels per clip, known truth); the
adapters reply from a script, so every figure is computed again independently in the test.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, jaccard_score

from verbnoun.bench.questions import Option, Question, read_questions, write_questions
from verbnoun.cli import main
from verbnoun.data.ek100 import ClassVocabulary
from verbnoun.errors import VerbnounError
from verbnoun.evaluate.adapters import NO_ABILITIES, RandomAdapter, Reply
from verbnoun.evaluate.answer_sets import AnswerSetSettings
from verbnoun.evaluate.records import answered
from verbnoun.evaluate.runner import EvalSettings, run_evaluation
from verbnoun.evaluate.score import compare, load_run
from verbnoun.interpret.open_vocab import OpenVocabMapper

VERBS = ["open", "stir", "take", "wash", "cut"]
NOUNS = ["door", "pot", "cup", "tap", "knife", "bread"]
ACTIONS = [(v, n) for v in range(len(VERBS)) for n in range(len(NOUNS))]


def question(k: int, truth: list[tuple[int, int]], distractors: list[tuple[int, int]]) -> Question:
    actions = sorted({*truth, *distractors})
    options = tuple(
        Option(f"{VERBS[v]} {NOUNS[n]}", f"{v}:{n}", "ground_truth" if (v, n) in truth else
               "random", "narration")
        for v, n in actions
    )  # fmt: skip
    ids = tuple(f"{v}:{n}" for v, n in truth)
    indices = tuple(i for i, o in enumerate(options) if o.action_id in ids)
    return Question(
        id=f"q{k}", video_id=f"v{k}", participant_id="P01", start=0.0, stop=2.0,
        options=options, answer_index=indices[0], narration=options[indices[0]].text,
        verb_class=truth[0][0], noun_class=truth[0][1], action_ids=ids, answer_indices=indices,
    )  # fmt: skip


@pytest.fixture
def multi_file(tmp_path):
    rng = np.random.default_rng(0)
    questions = []
    for k in range(30):
        picks = rng.choice(len(ACTIONS), size=5, replace=False)
        labels = int(rng.integers(1, 3))
        truth = [ACTIONS[i] for i in picks[:labels]]
        questions.append(question(k, truth, [ACTIONS[i] for i in picks[labels:]]))
    path = tmp_path / "multi.jsonl"
    write_questions(path, questions)
    return path


class Scripted:
    """Replies from a function of the question: text, and option scores when asked."""

    name = "scripted"
    needs_frames = False
    abilities = NO_ABILITIES

    def __init__(self, reply):
        self.reply = reply

    def settings(self):
        return {}

    def answer(self, requests):
        return [self.reply(r.question) for r in requests]


def letters_of(q: Question, indices) -> str:
    return ", ".join("ABCDEFGHIJKLMNOPQRSTUVWXYZ"[i] for i in indices)


def half_right(q: Question) -> Reply:
    """The first true option and, on odd questions, also the first wrong one; every fifth
    question hedges (unparsed)."""
    number = int(q.id[1:])
    wrong = next(i for i in range(len(q.options)) if i not in q.answer_indices)
    chosen = [q.answer_indices[0]] + ([wrong] if number % 2 else [])
    if number % 5 == 0:
        return Reply(f"{letters_of(q, chosen)} or maybe {letters_of(q, [wrong])}")
    return Reply(f"The answers are {letters_of(q, chosen)}.")


def expected_jaccard(questions, predicted):
    y_true = np.array([[a in q.action_ids for a in map("{0[0]}:{0[1]}".format, ACTIONS)]
                       for q in questions])  # fmt: skip
    y_pred = np.array([[a in p for a in map("{0[0]}:{0[1]}".format, ACTIONS)] for p in predicted])
    return jaccard_score(y_true, y_pred, average="samples", zero_division=1.0)


def _sklearn_map(questions, option_scores) -> float:
    """scikit-learn's macro AP over the classes with a positive: each clip's options scored by the
    softmax of ``option_scores[question id]``, a class not among its options below every score."""
    classes = sorted({o.action_id for q in questions for o in q.options})
    y_true = np.array([[c in q.action_ids for c in classes] for q in questions])
    scores = np.full(y_true.shape, -np.inf)
    for row, q in enumerate(questions):
        probabilities = np.exp(option_scores[q.id]) / np.exp(option_scores[q.id]).sum()
        for i, o in enumerate(q.options):
            scores[row, classes.index(o.action_id)] = probabilities[i]
    scores[np.isinf(scores)] = scores[np.isfinite(scores)].min() - 1
    keep = y_true.any(axis=0)
    return average_precision_score(y_true[:, keep], scores[:, keep], average="macro")


def test_letters_are_read_as_sets_and_scored(multi_file, tmp_path):
    run = tmp_path / "run"
    metrics = run_evaluation(multi_file, Scripted(half_right), run, EvalSettings(),
                             progress=False)  # fmt: skip
    questions = read_questions(multi_file)
    records = answered(run)
    predicted = []
    for q in questions:
        number = int(q.id[1:])
        record = records[q.id]
        if number % 5 == 0:
            assert record["labels"] is None and record["rule"] == "unparsed"
            predicted.append(set())
            continue
        wrong = next(i for i in range(len(q.options)) if i not in q.answer_indices)
        chosen = {q.answer_indices[0]} | ({wrong} if number % 2 else set())
        assert record["choices"] == sorted(chosen) and record["rule"] == "statement"
        labels = {q.options[i].action_id for i in chosen}
        assert record["labels"] == sorted(labels)
        assert record["correct"] == (labels == set(q.action_ids))
        predicted.append(labels)
    multi = metrics["multilabel"]
    assert multi["answer_set"] == "letters" and multi["n"] == 30
    assert multi["jaccard"]["value"] == pytest.approx(expected_jaccard(questions, predicted))
    assert multi["map"] is None  # no scores
    assert metrics["overall"]["unparsed"] == 6
    config = json.loads((run / "config.json").read_text())
    assert config["multilabel"]["answer_set"] == "letters"
    assert "threshold" not in config["multilabel"]
    # score reads the run back to the same figures, and its table shows them
    again = load_run(run).metrics
    assert again["multilabel"] == multi
    row = compare([load_run(run)])["runs"][0]
    assert row["multilabel"]["jaccard"] == multi["jaccard"]


def probabilities(q: Question) -> Reply:
    """Log-likelihoods that give each true option 0.4 and share the rest among the others."""
    rest = (1 - 0.4 * len(q.answer_indices)) / (len(q.options) - len(q.answer_indices))
    scores = [math.log(0.4 if i in q.answer_indices else rest) for i in range(len(q.options))]
    return Reply("A", scores=scores)


def test_threshold_on_option_probabilities_and_map(multi_file, tmp_path):
    run = tmp_path / "run"
    settings = AnswerSetSettings("threshold", 0.3)
    metrics = run_evaluation(multi_file, Scripted(probabilities), run, EvalSettings(),
                             progress=False, answer_set=settings)  # fmt: skip
    multi = metrics["multilabel"]
    # every true option at 0.4 >= 0.3, every other below: each set is exactly the truth
    assert multi["jaccard"]["value"] == 1.0 and metrics["overall"]["accuracy"] == 1.0
    assert multi["map"]["value"] == pytest.approx(1.0)
    config = json.loads((run / "config.json").read_text())
    assert config["multilabel"] == {"answer_set": "threshold", "version": "1", "threshold": 0.3}
    # with noisy scores mAP is scikit-learn's over the classes with a positive clip
    rng = np.random.default_rng(1)
    noisy = {}

    def noisy_reply(q):
        noisy[q.id] = (-5 * rng.random(len(q.options))).tolist()  # log-likelihoods
        return Reply("", scores=noisy[q.id])

    other = tmp_path / "noisy"
    metrics = run_evaluation(multi_file, Scripted(noisy_reply), other, EvalSettings(),
                             progress=False, answer_set=settings)  # fmt: skip
    questions = read_questions(multi_file)
    expected = _sklearn_map(questions, {q.id: np.array(noisy[q.id]) for q in questions})
    assert metrics["multilabel"]["map"]["value"] == pytest.approx(expected)


def test_free_text_answers_give_every_action(multi_file, tmp_path):
    def vocabulary(kind, keys):
        return ClassVocabulary(kind, tuple(keys), tuple((k,) for k in keys),
                               tuple("" for _ in keys), f"{kind}.csv")  # fmt: skip

    mapper = OpenVocabMapper(vocabulary("verb", VERBS), vocabulary("noun", NOUNS))

    def narrate(q):
        said = [q.options[i].text for i in q.answer_indices]
        return Reply("The person is going to " + " and ".join(said) + ".")

    run = tmp_path / "run"
    metrics = run_evaluation(multi_file, Scripted(narrate), run, EvalSettings(),
                             progress=False, open_vocab=mapper)  # fmt: skip
    assert metrics["multilabel"]["answer_set"] == "free-text"
    assert metrics["multilabel"]["jaccard"]["value"] == 1.0
    record = answered(run)["q1"]
    assert record["choices"] is None and record["rule"] == "free-text"
    with pytest.raises(VerbnounError, match="--answer-set free-text reads free text"):
        run_evaluation(multi_file, Scripted(narrate), tmp_path / "x", EvalSettings(),
                       progress=False, answer_set=AnswerSetSettings("free-text"))  # fmt: skip


def test_threshold_without_scores_and_single_label_files_are_refused(multi_file, tmp_path):
    with pytest.raises(VerbnounError, match="needs per-option scores"):
        run_evaluation(multi_file, Scripted(lambda q: Reply("A")), tmp_path / "r",
                       EvalSettings(), progress=False,
                       answer_set=AnswerSetSettings("threshold"))  # fmt: skip
    counts = Scripted(lambda q: Reply("A", scores=[3.0] * len(q.options)))  # the prior's kind
    with pytest.raises(VerbnounError, match=r"needs per-option log-likelihoods \(a score above"):
        run_evaluation(multi_file, counts, tmp_path / "c", EvalSettings(), progress=False,
                       answer_set=AnswerSetSettings("threshold"))  # fmt: skip
    # read by the multi-select parser, the same replies give no mAP: counts are no probabilities
    metrics = run_evaluation(multi_file, counts, tmp_path / "l", EvalSettings(), progress=False)
    assert metrics["multilabel"]["map"] is None
    single = tmp_path / "single.jsonl"
    q = question(99, [(0, 0)], [(1, 1), (2, 2)])
    plain = Question(**{**q.__dict__, "action_ids": (), "answer_indices": ()})
    write_questions(single, [plain])
    with pytest.raises(VerbnounError, match="this file has none"):
        run_evaluation(single, RandomAdapter(0), tmp_path / "s", EvalSettings(),
                       progress=False, answer_set=AnswerSetSettings("threshold"))  # fmt: skip
    run_evaluation(single, RandomAdapter(0), tmp_path / "s", EvalSettings(), progress=False)
    config = json.loads((tmp_path / "s" / "config.json").read_text())
    assert "multilabel" not in config  # single-answer runs record what they always did


def test_eval_and_score_from_the_command_line(multi_file, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["eval", "--model", "random", "--questions", str(multi_file), "--out", str(run),
                 "--no-progress"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "Jaccard accuracy" in out and "(letters)" in out
    questions = read_questions(multi_file)
    records = answered(run)
    # random picks one letter: Jaccard 1/|truth| when it is a true option, else 0
    expected = np.mean([
        1 / len(q.action_ids) if records[q.id]["labels"][0] in q.action_ids else 0.0
        for q in questions
    ])  # fmt: skip
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["multilabel"]["jaccard"]["value"] == pytest.approx(expected)
    assert f"{100 * expected:.1f}%" in out
    assert main(["score", str(run)]) == 0
    table = capsys.readouterr().out
    assert "multi-label" in table and f"{100 * expected:.1f}" in table


def test_threshold_from_the_command_line_needs_scores(multi_file, tmp_path, capsys):
    args = ["eval", "--model", "random", "--questions", str(multi_file), "--out",
            str(tmp_path / "run"), "--no-progress", "--answer-set", "threshold"]  # fmt: skip
    assert main(args) == 1
    assert "needs per-option scores" in capsys.readouterr().err


def test_reparse_refuses_a_multi_select_run(multi_file, tmp_path):
    from verbnoun.evaluate.reparse import reparse_run

    run = tmp_path / "run"
    run_evaluation(multi_file, Scripted(half_right), run, EvalSettings(), progress=False)
    with pytest.raises(VerbnounError, match="multi-select run"):
        reparse_run(run, tmp_path / "new")


def test_the_overlapping_kitchen_as_a_person_runs_it(tmp_path, capsys):
    """mqa build on the overlapping kitchen's description, eval, score: the truth is the
    script's, and the figures are those of the stored answers."""
    from verbnoun.data.overlap import overlap_script, write_overlap_annotations

    description = write_overlap_annotations(tmp_path / "kitchen", videos=6, seed=0)
    questions_path = tmp_path / "q.jsonl"
    assert main(["mqa", "build", "--dataset", str(description), "--out", str(questions_path)]) == 0
    questions = read_questions(questions_path)
    script = {k: v for video in overlap_script(6, 0) for k, v in video.labels().items()}
    assert all(q.multi_select for q in questions)
    assert {q.id: tuple(q.action_ids) for q in questions} == {
        q.id: tuple(f"{v}:{n}" for v, n in script[q.id]) for q in questions
    }
    assert any(len(q.action_ids) == 2 for q in questions)
    run = tmp_path / "run"
    args = ["eval", "--model", "random", "--seed", "3", "--questions", str(questions_path),
            "--out", str(run), "--no-progress"]  # fmt: skip
    assert main(args) == 0
    records = answered(run)
    predicted = [set(records[q.id]["labels"]) for q in questions]
    truths = [set(q.action_ids) for q in questions]
    expected = np.mean([len(p & t) / len(p | t) for p, t in zip(predicted, truths, strict=True)])
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["multilabel"]["jaccard"]["value"] == pytest.approx(expected)
    assert metrics["multilabel"]["per_class"]  # precision / recall per class
    capsys.readouterr()
    assert main(["score", str(run)]) == 0
    assert f"{100 * expected:.1f}" in capsys.readouterr().out


def test_two_stage_on_the_overlapping_kitchen(tmp_path):
    """--two-stage: the specialist's top-5 as options; every true label among them is right."""
    from verbnoun.data.dataset import open_dataset
    from verbnoun.data.overlap import write_overlap_annotations

    description = write_overlap_annotations(tmp_path / "kitchen", videos=6, seed=0)
    dataset = open_dataset(description, None)
    segments = dataset.segments("validation", require_labels=True)
    actions = [f"{v}:{n}" for v in range(len(dataset.verbs())) for n in range(len(dataset.nouns()))]
    ranked = {}
    for k, segment in enumerate(segments):
        truth = list(segment.action_ids)
        # the specialist puts the first label first; the second one it misses on even segments
        kept = truth if k % 2 else truth[:1]
        ranked[segment.narration_id] = {
            "predictions": kept + [a for a in actions if a not in truth][: 10 - len(kept)]
        }
    predictions = tmp_path / "specialist.json"
    predictions.write_text(json.dumps(ranked))
    run = tmp_path / "run"
    args = ["eval", "--model", "random", "--two-stage", "--top-k", "5", "--predictions",
            str(predictions), "--dataset", str(description), "--out", str(run),
            "--no-progress"]  # fmt: skip
    assert main(args) == 0
    questions = read_questions(run / "two-stage-top5.jsonl")
    for k, (q, segment) in enumerate(zip(questions, segments, strict=True)):
        assert q.action_ids == segment.action_ids
        shown = {q.options[i].action_id for i in q.answer_indices}
        expected = set(segment.action_ids) if k % 2 else {segment.action_ids[0]}
        assert shown == expected
    records = answered(run)
    metrics = json.loads((run / "metrics.json").read_text())
    expected_jaccard = np.mean([
        len(set(records[q.id]["labels"]) & set(q.action_ids))
        / len(set(records[q.id]["labels"]) | set(q.action_ids))
        for q in questions
    ])  # fmt: skip
    assert metrics["multilabel"]["jaccard"]["value"] == pytest.approx(expected_jaccard)
    assert metrics["truth_among_options"] == 1.0
    ceiling = np.mean([1.0 if k % 2 else 1 / len(q.action_ids) for k, q in enumerate(questions)])
    assert ceiling < 1.0
    assert metrics["multilabel"]["labels_among_options"] == pytest.approx(ceiling)


@pytest.mark.slow
def test_the_report_shows_the_multilabel_table(multi_file, tmp_path):
    from verbnoun.evaluate.report import render_report

    run = tmp_path / "run"
    metrics = run_evaluation(multi_file, Scripted(half_right), run, EvalSettings(),
                             progress=False)  # fmt: skip
    page = render_report([load_run(run)])
    assert "<table id='multilabel'>" in page
    jaccard = metrics["multilabel"]["jaccard"]
    assert (
        f"{100 * jaccard['value']:.1f} <small class='muted'>[{100 * jaccard['ci95'][0]:.1f}" in page
    )
    record = answered(run)["q1"]
    assert f"{{{', '.join(record['labels'])}}} (statement)" in page  # the browser shows the set


def test_a_new_answer_set_is_one_registry_entry(multi_file, tmp_path):
    """Adding a reading is one function and one ANSWER_SETS entry; --answer-set lists it."""
    from verbnoun.evaluate.answer_sets import ANSWER_SETS, AnswerSet, SetRead

    def first_two(settings):
        def read(question, raw, scores, mapper):
            return SetRead(frozenset(o.action_id for o in question.options[:2]), (0, 1), "two")

        return read

    with ANSWER_SETS.added(AnswerSet("first-two", "the first two options", first_two)):
        metrics = run_evaluation(multi_file, RandomAdapter(0), tmp_path / "run", EvalSettings(),
                                 progress=False, answer_set=AnswerSetSettings("first-two"))  # fmt: skip
    questions = read_questions(multi_file)
    expected = np.mean([
        len({o.action_id for o in q.options[:2]} & set(q.action_ids))
        / len({o.action_id for o in q.options[:2]} | set(q.action_ids))
        for q in questions
    ])  # fmt: skip
    assert metrics["multilabel"]["jaccard"]["value"] == pytest.approx(expected)
    assert metrics["multilabel"]["answer_set"] == "first-two"
    with pytest.raises(VerbnounError, match="unknown answer set 'first-two'; choose one of "
                       "letters, free-text, threshold"):  # fmt: skip
        AnswerSetSettings("first-two").check()


def test_animal_kingdom_rows_through_build_eval_and_score(tmp_path, capsys):
    """The Animal Kingdom description (one action class per label, several per clip) on a few
    rows of its published frame lists: replies that name the options' texts are read as sets."""
    configs = Path(__file__).resolve().parents[2] / "configs" / "datasets"
    root = tmp_path / "ak" / "annotation"
    root.mkdir(parents=True)
    header = "original_vido_id video_id frame_id path labels\n"

    def rows(clip, number, frames, labels):
        return "".join(f"{clip} {number} {f} {clip}/{clip}_f{f:06d}.jpg {labels}\n"
                       for f in range(frames))  # fmt: skip

    (root / "val.csv").write_text(header + rows("AAACXZTV", 0, 3, "2,7") + rows("AAAUILHH", 1, 2, "5")
                                  + rows("ABCDEFGH", 2, 2, "7,2,9"))  # fmt: skip
    (root / "train.csv").write_text(header + rows("EEEEEEEE", 6, 2, "8,0"))
    names = ["Abseiling", "Attacking", "Eating", "Flying", "Swimming", "Walking", "Sleeping",
             "Attending", "Drinking", "Hopping"]  # fmt: skip
    (root / "df_action.csv").write_text(  # the AR_count sheet of df_action.xlsx, as CSV
        "S/N,action_category,action,index,segment,count\n"
        + "".join(f"{i},Movement,{n},{i},head,1\n" for i, n in enumerate(names))
    )
    questions_path = tmp_path / "ak.jsonl"
    assert main(["mqa", "build", "--dataset", str(configs / "animal-kingdom.yaml"),
                 "--annotations", str(tmp_path / "ak"), "--out", str(questions_path)]) == 0  # fmt: skip
    questions = read_questions(questions_path)
    assert [sorted(q.action_ids) for q in questions] == [["2", "7"], ["5"], ["2", "7", "9"]]

    def eating_and_attending(q):  # the texts of options 2 and 7 when shown
        said = [o.text for o in q.options if o.action_id in ("2", "7")]
        return Reply(" and ".join(said) if said else "none")

    run = tmp_path / "run"
    metrics = run_evaluation(questions_path, Scripted(eating_and_attending), run, EvalSettings(),
                             progress=False)  # fmt: skip
    # clip 1: {2, 7} exactly; clip 2: {5} against distractors 2 or 7 when shown, else "none"
    # (unparsed); clip 3: {2, 7} of {2, 7, 9}
    assert metrics["multilabel"]["jaccard"]["value"] == pytest.approx((1 + 0 + 2 / 3) / 3)
    shown = any(o.action_id in ("2", "7") for o in questions[1].options)
    assert metrics["overall"]["unparsed"] == (0 if shown else 1)
    assert metrics["labels"] == "action"
    assert metrics["multilabel"]["per_class"]["2"]["recall"] == 1.0
    capsys.readouterr()
    assert main(["score", str(run)]) == 0
    assert "55.6" in capsys.readouterr().out


def test_the_lmms_eval_export_refuses_multi_select_questions(multi_file, tmp_path):
    from verbnoun.integrations.lmms_eval.export import ExportSettings, export_task

    with pytest.raises(VerbnounError, match="question q0 is multi-select"):
        export_task(multi_file, tmp_path / "task", ExportSettings(str(tmp_path), "chunks"))


def test_the_specialist_ranking_gives_scores_on_multi_select_questions(multi_file, tmp_path):
    from verbnoun.evaluate.adapters import SpecialistAdapter

    questions = read_questions(multi_file)
    truth_first = {q.id: [*q.action_ids, *(o.action_id for o in q.options
                                           if o.action_id not in q.action_ids)]
                   for q in questions}  # fmt: skip
    run = tmp_path / "ranked"
    metrics = run_evaluation(multi_file, SpecialistAdapter(truth_first, "ranked.json"), run,
                             EvalSettings(), progress=False)  # fmt: skip
    # scikit-learn's mAP of the options' softmax of minus their rank (rankings, no probabilities:
    # a class second in one clip and first among the negatives of another can tie, so not 1.0)
    minus_rank = {q.id: -np.array([truth_first[q.id].index(o.action_id) for o in q.options],
                                  float) for q in questions}  # fmt: skip
    expected = _sklearn_map(questions, minus_rank)
    assert metrics["multilabel"]["map"]["value"] == pytest.approx(expected)
    assert expected > 0.9
    record = answered(run)[questions[0].id]
    first = questions[0]
    top_1 = [o.action_id for o in first.options].index(first.action_ids[0])
    assert record["choices"] == [top_1]  # its top-1 letter, read as a set of one
    # the truth ranked last: every class's positives below its negatives
    truth_last = {k: v[::-1] for k, v in truth_first.items()}
    worst = run_evaluation(multi_file, SpecialistAdapter(truth_last, "reversed.json"),
                           tmp_path / "reversed", EvalSettings(), progress=False)  # fmt: skip
    assert worst["multilabel"]["map"]["value"] < 0.6
    assert worst["multilabel"]["jaccard"]["value"] == 0.0
    # the threshold reads the ranking too: the top option alone reaches 0.5
    top = run_evaluation(multi_file, SpecialistAdapter(truth_first, "ranked.json"),
                         tmp_path / "top", EvalSettings(), progress=False,
                         answer_set=AnswerSetSettings("threshold", 0.5))  # fmt: skip
    assert all(len(r["choices"]) == 1 for r in answered(tmp_path / "top").values())
    assert top["multilabel"]["jaccard"]["value"] > 0.5
