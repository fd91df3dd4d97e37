"""Answer parsing cases and metrics on small hand-computed examples."""

from __future__ import annotations

import pytest

from verbnoun.evaluate.metrics import (
    accuracy_summary,
    bootstrap_interval,
    grouped_accuracy,
    mcnemar_exact,
    recognition_top1,
    topk_recall,
)
from verbnoun.interpret.parsing import get_parser, parse_answer, parse_answer_original

OPTIONS = ["open door", "close door", "take plate", "put down plate", "wash cup"]


@pytest.mark.parametrize(
    ("output", "index", "rule"),
    [
        ("B", 1, "letter"),
        ("B.", 1, "letter"),
        ("(B)", 1, "letter"),
        ("B)", 1, "letter"),
        ("  C  ", 2, "letter"),
        ("Answer: B", 1, "statement"),
        ("answer: (D)", 3, "statement"),
        ("The answer is E.", 4, "statement"),
        ("B. close door", 1, "letter+text"),
        ("B. close door.", 1, "letter+text"),
        ("B. something else entirely", 1, "letter"),  # text that names no option: the letter
        ("close door", 1, "text"),
        ("Close Door.", 1, "text"),
        ('{"answer": "C. take plate"}', 2, "json"),
        ('{"answer": "D"}', 3, "json"),
        # strict v2 (issue 23): how models write answers
        ("**A**", 0, "letter"),
        ("`C`", 2, "letter"),
        ("**A. open door**", 0, "letter+text"),
        ("I think the answer is A. open door.", 0, "statement"),
        ("Based on the frames, the answer is (B) close door.", 1, "statement"),
        ("The hand pulls.\n\n...so the correct option is C.", 2, "statement"),
        ("Final answer: D", 3, "statement"),
        ("The answer is A.\nLooking again, the hand pushes: the answer is B.", 1, "statement"),
        ("Option C", 2, "letter"),
        ("C:", 2, "letter"),
        ("[C]", 2, "letter"),
        ('Here it is:\n```json\n{"answer": "E. wash cup"}\n```', 4, "json"),
        ("(a)", 0, "letter"),
        ("b) close door", 1, "letter+text"),
        ("（Ｂ）close door", 1, "letter+text"),
        ("close door (B)", 1, "letter+text"),
        ("<think>A or B?</think><answer>B</answer>", 1, "tag"),
        ("B. close door\n\nThe hand pushes the door shut.", 1, "line"),
        ("It's not A (open door). The answer is B.", 1, "statement"),
        # never guessed
        ("B. open door", None, "unparsed"),  # letter and text disagree
        ("F", None, "unparsed"),  # no option F
        ("I think it is the door", None, "unparsed"),
        ("", None, "unparsed"),
        ('{"answer": 3}', None, "unparsed"),
        ('{"answer": "maybe"}', None, "unparsed"),
        ("{not json", None, "unparsed"),
        ("A or B", None, "unparsed"),  # two letters offered
        ("The answer is B/C.", None, "unparsed"),
        ("B, but C is also possible.", None, "unparsed"),
        ("not A", None, "unparsed"),  # negations
        ("Neither A nor B", None, "unparsed"),
        ("It is not B.", None, "unparsed"),
        ("I don't think the answer is A.", None, "unparsed"),
        ("The answer is B. Actually, it is not B.", None, "unparsed"),  # retracted
        ("The answer is C (close door).", None, "unparsed"),  # C's text is B's
        ("It could be A, but I cannot tell.", None, "unparsed"),  # a hedge
        ("A person is closing the door.", None, "unparsed"),  # "A" the article
        ("A. open door\nB. close door", None, "unparsed"),  # lines disagree
        ("B?", None, "unparsed"),  # a question, not an answer
    ],
)
def test_strict_parser(output, index, rule):
    parsed = parse_answer(output, OPTIONS)
    assert (parsed.index, parsed.rule) == (index, rule)


@pytest.mark.parametrize(
    ("output", "index"),
    [  # the release's process_raw_pred, then its ``pred == gt_name`` (checked against its code)
        ("C. take plate", 2),
        ("A. open door, no wait: B. close door.", None),  # one match, to the end of the line
        ("A. open door\nB. close door.", 1),  # the last line's match, cut at its period
        ("B. take plate", 2),  # the text decides, not the letter
        ("B", None),
        ("take plate", 2),  # no match: the whole output is the prediction
        ("C.  take plate", None),  # exactly one whitespace after the period
        ("None. open door", 0),
        ("C. take plate,", 2),  # the local-model path drops trailing commas
        ("The answer is C. take plate. It is clear.", 2),
        ('{"answer": "D. put down plate"}', 3),  # structured: the answer field
        ('{"answer": "E. wash cup."}', 4),
        ('{"answer": "take plate"}', 2),
        ('{"answer": "C. take plate,"}', None),  # GPT-4o's answers are not comma-stripped
    ],
)
def test_original_parser_follows_the_release(output, index):
    parsed = parse_answer_original(output, OPTIONS)
    assert parsed.index == index
    assert parsed.rule == ("original" if index is not None else "unparsed")


def test_parsers_by_name():
    assert get_parser("original") is parse_answer_original
    with pytest.raises(ValueError, match="unknown parser"):
        get_parser("lenient")


def test_accuracy_and_bootstrap():
    correct = [True] * 30 + [False] * 70
    summary = accuracy_summary(correct, unparsed=5)
    assert summary["accuracy"] == 0.3 and summary["n"] == 100 and summary["unparsed_rate"] == 0.05
    low, high = summary["ci95"]
    assert 0.2 < low < 0.3 < high < 0.4  # normal approximation: 0.3 +- 0.09
    assert bootstrap_interval(correct, seed=1) == bootstrap_interval(correct, seed=1)
    assert bootstrap_interval([True] * 10) == (1.0, 1.0)


def test_grouped_and_recognition():
    groups = grouped_accuracy([(0, True), (0, False), (10, True), (2, True)])
    assert groups == {
        "0": {"n": 2, "accuracy": 0.5},
        "10": {"n": 1, "accuracy": 1.0},
        "2": {"n": 1, "accuracy": 1.0},
    }
    top1 = recognition_top1(["0:1", "0:2", "3:1", "4:4"], ["0:1", "0:1", "0:1", "0:1"])
    assert top1 == {"verb": 0.5, "noun": 0.5, "action": 0.25, "n": 4}
    assert topk_recall([["0:1", "0:2"], ["0:3", "0:1"], ["1:1"]], ["0:1", "0:1", "0:1"], 1) == 1 / 3
    assert topk_recall([["0:1", "0:2"], ["0:3", "0:1"], ["1:1"]], ["0:1", "0:1", "0:1"], 2) == 2 / 3


def test_mcnemar_exact_by_hand():
    # 1 discordant pair in favour of A, 9 in favour of B: p = 2 * (C(10,0) + C(10,1)) / 2^10
    a = [True] + [False] * 9 + [True] * 5
    b = [False] + [True] * 9 + [True] * 5
    result = mcnemar_exact(a, b)
    assert (result["a_only"], result["b_only"]) == (1, 9)
    assert result["p_value"] == pytest.approx(2 * 11 / 1024)
    assert mcnemar_exact([True, False], [True, False])["p_value"] == 1.0
    with pytest.raises(ValueError):
        mcnemar_exact([True], [True, False])
