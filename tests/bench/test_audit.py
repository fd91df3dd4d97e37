"""The blind audit (verbnoun.bench.audit): each rule on small hand-made question files whose
right answers are known, the blind reader, SFT records as training material, the CLI on real
files, the report's "answerable without looking" finding, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from verbnoun.bench.audit import (
    BlindReader,
    audit_questions,
    fit_blind_reader,
    fold_of,
    parse_options,
    read_training,
)
from verbnoun.bench.build import BuildSettings, build_benchmark
from verbnoun.bench.questions import Option, Question, read_questions, write_questions
from verbnoun.cli import main
from verbnoun.data.kitchen import kitchen_script, write_kitchen_annotations
from verbnoun.errors import VerbnounError


def question(qid: str, options: list[tuple[str, str]], answer: int, video: str = "V1") -> Question:
    """A question whose options are (text, action id) pairs and whose right one is ``answer``."""
    verb, noun = (int(x) for x in options[answer][1].split(":"))
    built = tuple(
        Option(text, action, "ground_truth" if i == answer else "random", "narration")
        for i, (text, action) in enumerate(options)
    )
    q = Question(qid, video, "P01", 0.0, 1.0, built, answer, options[answer][0], verb, noun)
    q.validate()
    return q


def rotate(options: list[tuple[str, str]], answer: int, shift: int) -> tuple[list, int]:
    """The same options moved ``shift`` places (the answer moves with them)."""
    k = len(options)
    moved = [options[(i - shift) % k] for i in range(k)]
    return moved, (answer + shift) % k


def written(tmp_path: Path, name: str, questions: list[Question]) -> list[Question]:
    """Write the questions as a real question file and read them back."""
    path = tmp_path / name
    write_questions(path, questions)
    return read_questions(path)


# ----------------------------------------------------------------------------- the rules


def hub(number: int, video: str) -> Question:
    """The answer 1:1 shares its verb with two options and its noun with two (prior-hard)."""
    options = [("cut onion", "1:1"), ("cut bread", "1:2"), ("cut cheese", "1:3"),
               ("wash onion", "2:1"), ("peel onion", "3:1")]  # fmt: skip
    moved, answer = rotate(options, 0, number % 5)
    return question(f"hub-{number}", moved, answer, video)


def test_overlap_finds_the_hub_and_misses_the_rim(tmp_path):
    hubs = written(tmp_path, "hub.jsonl", [hub(i, f"V{i % 6}") for i in range(30)])
    audit = audit_questions(hubs)  # cross-fitted: overlap needs no training at all
    assert audit["rules"]["overlap"]["accuracy"] == 1.0
    assert audit["rules"]["overlap"]["correct"] == 30
    assert audit["best"]["accuracy"] == 1.0  # prior too: 1:1 is always the answer here
    assert audit["chance"] == pytest.approx(0.2)
    low, high = audit["rules"]["overlap"]["ci95"]
    assert low == high == 1.0
    # the same options with a rim option right: overlap is never right
    rims = []
    for i in range(30):
        moved, answer = rotate([("cut onion", "1:1"), ("cut bread", "1:2"), ("cut cheese", "1:3"),
                                ("wash onion", "2:1"), ("peel onion", "3:1")], 1, i % 5)  # fmt: skip
        verb, noun = moved[answer][1].split(":")
        rims.append(question(f"rim-{i}", moved, answer, f"V{i % 6}"))
        assert (verb, noun) == ("1", "2")
    audit = audit_questions(written(tmp_path, "rim.jsonl", rims))
    assert audit["rules"]["overlap"]["accuracy"] == 0.0


def test_prior_letter_and_length_learn_from_training(tmp_path):
    # training: 5:5 is the most frequent answer, the answer is always letter C and the longest
    train = []
    pool = [("a", "5:5"), ("bb", "6:6"), ("ccc", "7:7"), ("dddd", "8:8")]
    for i in range(40):
        answer_action = ["5:5"] * 6 + ["6:6"] * 2 + ["7:7", "8:8"]
        action = answer_action[i % len(answer_action)]
        texts = {a: t for t, a in pool}
        others = [(texts[a] + "x", a) for _, a in pool if a != action][:3]
        options = [others[0], others[1], (texts[action] + "x" * 20, action), others[2]]
        train.append(question(f"t{i}", options, 2, f"T{i}"))
    train = written(tmp_path, "train.jsonl", train)
    # test: 5:5 right in the first 12 (prior right), 7:7 right in the next 8 (prior wrong);
    # letter C right in the first 10; the longest right in the first 15
    test = []
    for i in range(20):
        action = "5:5" if i < 12 else "7:7"
        letter = 2 if i < 10 else 0
        long_right = i < 15
        texts = [f"opt{j}" for j in range(4)]
        actions = ["5:5", "6:6", "7:7", "8:8"]
        order = [a for a in actions if a != action]
        order.insert(letter, action)
        options = []
        for j, a in enumerate(order):
            is_answer = a == action
            text = texts[j] + ("-long-long" if is_answer == long_right else "")
            options.append((text, a))
        test.append(question(f"q{i}", options, letter, f"Q{i}"))
    test = written(tmp_path, "test.jsonl", test)
    audit = audit_questions(test, train)
    rules = audit["rules"]
    assert rules["prior"]["accuracy"] == pytest.approx(12 / 20)
    assert rules["letter"]["accuracy"] == pytest.approx(10 / 20)
    assert rules["length"]["accuracy"] == pytest.approx(15 / 20)
    assert audit["train"]["mode"] == "on the training material"
    assert audit["train"]["questions"] == 40
    # given action counts replace the training answers' counts: 7:7 now most frequent
    counted = audit_questions(test, train, frequencies={"7:7": 50, "5:5": 1})
    assert counted["rules"]["prior"]["accuracy"] == pytest.approx(8 / 20)
    assert counted["train"]["frequencies"] == "given action counts"


def test_length_takes_the_shortest_when_training_says_so(tmp_path):
    train = [question(f"t{i}", [("a much longer option", "1:1"), ("short", "2:2"),
                                ("another long one", "3:3")], 1, f"T{i}")
             for i in range(12)]  # fmt: skip
    test = [question(f"q{i}", [("tiny", "4:4"), ("a longer one here", "5:5"),
                               ("medium one", "6:6")], 0, f"Q{i}")
            for i in range(6)]  # fmt: skip
    audit = audit_questions(test, train, rules=("length",))
    assert audit["rules"]["length"]["accuracy"] == 1.0
    assert list(audit["rules"]) == ["length"]


def test_chance_is_the_mean_of_one_over_the_options(tmp_path):
    two = [question(f"a{i}", [("x", "1:1"), ("y", "2:2")], i % 2, f"V{i}") for i in range(12)]
    four = [question(f"b{i}", [("x", "1:1"), ("y", "2:2"), ("z", "3:3"), ("w", "4:4")], i % 4,
                     f"W{i}") for i in range(12)]  # fmt: skip
    audit = audit_questions(written(tmp_path, "mixed.jsonl", two + four), two + four)
    assert audit["chance"] == pytest.approx((0.5 + 0.25) / 2)
    for result in audit["rules"].values():
        assert result["gain"] == pytest.approx(result["accuracy"] - audit["chance"])


def test_cross_fitting_never_lets_a_question_inform_its_own_answer(tmp_path):
    # videos of fold 0 always answer A, videos of fold 1 always answer B: each fold's letter
    # rule, fitted on the other fold, is always wrong
    questions = []
    for i in range(40):
        video = f"vid{i}"
        answer = 0 if fold_of(video) == 0 else 1
        options = [("x", "1:1"), ("y", "2:2"), ("z", "3:3")]
        options[0], options[answer] = options[answer], options[0]
        questions.append(question(f"q{i}", options, answer, video))
    assert {fold_of(f"vid{i}") for i in range(40)} == {0, 1}
    audit = audit_questions(written(tmp_path, "folds.jsonl", questions), rules=("letter",))
    assert audit["rules"]["letter"]["accuracy"] == 0.0
    assert audit["train"]["mode"].startswith("cross-fit")
    # fitted on the questions themselves instead, the letter rule is right half the time
    assert audit_questions(questions, questions, rules=("letter",))["rules"]["letter"][
        "accuracy"
    ] == pytest.approx(sum(fold_of(f"vid{i}") == 0 for i in range(40)) / 40)


# ----------------------------------------------------------------------------- the reader


def test_blind_reader_learns_the_hub_and_its_api(tmp_path):
    train = [hub(i, f"T{i % 7}") for i in range(40)]
    reader = fit_blind_reader(train)
    assert isinstance(reader, BlindReader) and reader.trained_on == 40
    test = [hub(i + 100, "Q") for i in range(10)]
    assert reader.accuracy(test) == 1.0
    assert [reader.choose(q) for q in test] == [q.answer_index for q in test]
    with pytest.raises(VerbnounError, match="at least 10 training questions"):
        fit_blind_reader(train[:3])


@pytest.fixture(scope="module")
def kitchen(tmp_path_factory) -> dict[str, Path]:
    """A kitchen's prior-hard and prior-grid validation benchmarks and prior-hard SFT records."""
    root = tmp_path_factory.mktemp("kitchen")
    annotations = write_kitchen_annotations(root / "a", kitchen_script(30, 4))
    files = {"annotations": annotations}
    for strategy in ("prior-hard", "prior-grid"):
        for split in ("train", "validation"):
            files[f"{split}-{strategy}"] = root / f"{split}-{strategy}.jsonl"
            build_benchmark(annotations, files[f"{split}-{strategy}"],
                            BuildSettings(split=split, distractors=strategy))  # fmt: skip
    assert main(["sft", "build", "--annotations", str(annotations), "--out", str(root / "sft"),
                 "--tasks", "mqa,prior", "--distractors", "prior-hard"]) == 0  # fmt: skip
    files["sft"] = root / "sft" / "mqa.jsonl"
    return files


def test_sft_records_read_as_the_questions_they_were_built_from(kitchen):
    records = read_training(kitchen["sft"])
    questions = {q.id: q for q in read_questions(kitchen["train-prior-hard"])}
    assert len(records) == len(questions)
    for item in records:
        q = questions[item.id.removeprefix("mqa:")]
        assert list(item.texts) == q.option_texts
        assert item.answer == q.answer_index
        assert item.actions[item.answer] == q.action_id  # from verb_id and noun_id
        assert all(a is None for i, a in enumerate(item.actions) if i != item.answer)
    # with prior actions in the prompt (30% of qualifying records) the options still parse
    lines = [json.loads(line) for line in kitchen["sft"].read_text().splitlines()]
    assert any(r["question_type"] == "mqa_prior_actions" for r in lines)


def test_parse_options_keeps_commas_inside_options():
    task = "...selecting:\nA. put pan, lid on, B. take plate, C. wash it"
    assert parse_options(task) == ["put pan, lid on", "take plate", "wash it"]


def test_reader_fitted_on_sft_records_answers_prior_hard_but_not_prior_grid(kitchen):
    lines = [json.loads(line) for line in kitchen["sft"].read_text().splitlines()]
    reader = fit_blind_reader(lines)  # SFT records straight from the file
    hard = read_questions(kitchen["validation-prior-hard"])
    assert reader.accuracy(hard) == 1.0
    grid = read_questions(kitchen["validation-prior-grid"])
    assert reader.accuracy(grid) < 0.4


# ----------------------------------------------------------------------------- command line


def test_cli_audits_a_kitchen_file_with_sft_training(kitchen, tmp_path, capsys):
    out = tmp_path / "audit.json"
    args = ["mqa", "audit", str(kitchen["validation-prior-hard"]), "--train", str(kitchen["sft"]),
            "--annotations", str(kitchen["annotations"]), "--out", str(out)]  # fmt: skip
    assert main(args) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    for rule in ("prior", "overlap", "letter", "length", "reader", "over chance"):
        assert rule in printed
    report = json.loads(out.read_text())
    assert report["kind"] == "verbnoun.mqa_audit"
    assert report["rules"]["overlap"]["accuracy"] > 0.99  # all but a fallback question or two
    assert report["train"]["frequencies"] == "given action counts"
    assert report["train_files"][0]["path"] == str(kitchen["sft"])
    assert report["questions"] == len(read_questions(kitchen["validation-prior-hard"]))


@pytest.mark.slow
def test_cli_on_the_real_ek100_validation(ek100_dir, tmp_path, capsys):
    questions = tmp_path / "validation-prior-hard.jsonl"
    build = ["mqa", "build", "--annotations", str(ek100_dir), "--distractors", "prior-hard",
             "--out", str(questions)]  # fmt: skip
    assert main(build) == 0
    out = tmp_path / "audit.json"
    assert main(["mqa", "audit", str(questions), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["questions"] == 9668
    assert report["rules"]["overlap"]["accuracy"] > 0.999  # prior-hard is answerable blind
    assert abs(report["rules"]["letter"]["gain"]) < 0.02
    assert report["best"]["gain"] > 0.7
    assert "blind audit of" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "place"),
    [
        ('{"id": "x", "conversations": "no"}\n', r"t\.jsonl:1: neither a question nor an SFT"),
        ('[1, 2]\n', r"t\.jsonl:1: neither a question nor an SFT record"),
        ('{"id": "n", "question_type": "direct_narration", "conversations": []}\n',
         r"t\.jsonl: no MQA records"),
        ('{"id": "m", "question_type": "mqa", "conversations": [{"value": "<image>\\nA. a, B. b"},'
         ' {"value": "C. c"}]}\n', r"t\.jsonl:1: bad MQA record: answer 'C. c' is not one"),
        ('{"id": "m", "question_type": "mqa", "conversations": [{"value": "no options"},'
         ' {"value": "A. a"}]}\n', r"t\.jsonl:1: bad MQA record: no options"),
        ('{"id": "m", "question_type": "mqa", "conversations": [{"value": "x"}]}\n',
         r"t\.jsonl:1: bad MQA record: 'conversations' must hold"),
        ("not json\n", r"t\.jsonl:1: not valid JSON"),
        ("", r"t\.jsonl: no questions or SFT records"),
    ],
    ids=["conversations not a list", "not an object", "no MQA records", "answer not an option",
         "no options", "one turn", "not JSON", "empty"],
)  # fmt: skip
def test_bad_training_file_gives_one_line(kitchen, tmp_path, capsys, content, place):
    import re

    train = tmp_path / "t.jsonl"
    train.write_text(content)
    code = main(["mqa", "audit", str(kitchen["validation-prior-grid"]), "--train", str(train)])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("verbnoun: error:")]
    assert len(lines) == 1 and "unexpected" not in lines[0], err
    assert re.search(place, lines[0]), lines[0]


def test_too_few_questions_to_cross_fit_gives_one_line(tmp_path, capsys):
    few = tmp_path / "few.jsonl"
    write_questions(few, [hub(i, f"V{i}") for i in range(6)])
    assert main(["mqa", "audit", str(few)]) == 1
    err = capsys.readouterr().err
    assert err.count("verbnoun: error:") == 1 and "too few questions (6) to cross-fit" in err
    assert main(["mqa", "audit", str(tmp_path / "missing.jsonl")]) == 1
    assert "missing.jsonl" in capsys.readouterr().err


# ----------------------------------------------------------------------------- the report


@pytest.mark.slow
def test_report_says_which_benchmark_is_answerable_without_looking(tmp_path):
    from verbnoun.evaluate.report import write_report
    from verbnoun.evaluate.score import load_run

    # a kitchen with enough validation questions for the test to have power
    annotations = write_kitchen_annotations(tmp_path / "a", kitchen_script(120, 5))
    runs = []
    for strategy in ("prior-hard", "prior-grid"):
        questions = tmp_path / f"validation-{strategy}.jsonl"
        build_benchmark(annotations, questions, BuildSettings(distractors=strategy))
        out = tmp_path / f"random-{strategy}"
        assert main(["eval", "--model", "random", "--questions", str(questions), "--out",
                     str(out)]) == 0  # fmt: skip
        runs.append(load_run(out))
    page = write_report(runs, tmp_path / "report.html").read_text()
    findings = page.split("<table id='findings'>")[1].split("</table>")[0]
    rows = {row.split("</td>")[0]: row for row in findings.split("<tr class='blind'><td>")[1:]}
    hard = rows["answerable without looking: validation-prior-hard"]
    grid = rows["answerable without looking: validation-prior-grid"]
    assert "% vs 20.0% chance" in hard and "<b>yes</b>" in hard
    assert float(hard.split("</td><td class='num'>")[1].split(" points")[0]) > 75
    assert "<b>no</b>" in grid
