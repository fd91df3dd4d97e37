"""The multi-select parser: replies that give several options -> sets; doubt -> unparsed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from verbnoun.bench import prompts
from verbnoun.interpret.multiselect import parse_selection
from verbnoun.interpret.parsing import parse_answer

OPTIONS = ["eat", "walk", "fly", "sleep", "swim"]  # A..E

READ = [
    ("A, C", {0, 2}, "list"),
    ("A and C", {0, 2}, "list"),
    ("A & C.", {0, 2}, "list"),
    ("A, C, and D", {0, 2, 3}, "list"),
    ("(A), (C)", {0, 2}, "list"),
    ("(a) and (c)", {0, 2}, "list"),
    ("B. walk; D. sleep", {1, 3}, "list"),
    ("A. eat, C. fly", {0, 2}, "list"),
    ("walk and eat", {0, 1}, "list"),
    ("walk (B), sleep (D)", {1, 3}, "list"),
    ("B", {1}, "list"),
    ("Both A and C", {0, 2}, "list"),
    ("A, A and C", {0, 2}, "list"),
    ("A and C - the bird pecks at seeds while it walks along", {0, 1, 2} - {1}, "list"),
    ("The answers are A and C.", {0, 2}, "statement"),
    ("Answer: B, D", {1, 3}, "statement"),
    ("Final answer: A; C", {0, 2}, "statement"),
    ("The correct options are B and E.", {1, 4}, "statement"),
    ("I choose A and C because the bird eats and flies.", {0, 2}, "statement"),
    (
        "The animal pecks the ground and moves its legs. The answers are A and B.",
        {0, 1},
        "statement",
    ),
    ("Looking at the frames, the bird flaps.\nA, C", {0, 2}, "list"),
    ('{"answers": ["A", "C"]}', {0, 2}, "json"),
    ('{"answer": "A, C"}', {0, 2}, "json"),
    ('["B. walk", "D. sleep"]', {1, 3}, "json"),
    ('```json\n{"choices": ["A", "E"]}\n```', {0, 4}, "json"),
    ("<answer>A, C</answer>", {0, 2}, "tag"),
    ("\\boxed{B, D}", {1, 3}, "tag"),
    ("Ａ，Ｃ", {0, 2}, "list"),  # full-width: NFKC
    ("The answers are A and C. Actually, the answers are B and D.", {1, 3}, "statement"),
    ("The answer is A.\nActually, D.", {3}, "statement"),
    ("First I thought A, but no. Correcting myself: the answers are B and C.", {1, 2}, "statement"),
    ("I think it's B.", {1}, "single"),  # one option as the single-letter parser reads it
]


@pytest.mark.parametrize(("reply", "expected", "rule"), READ)
def test_read(reply, expected, rule):
    parsed = parse_selection(reply, OPTIONS)
    assert parsed.indices == frozenset(expected), reply
    assert parsed.rule == rule


UNPARSED = [
    "A or C",
    "A/C",
    "A vs C",
    "A and maybe C",
    "A, C, possibly B",
    "Could be A and C",
    "A and C, not B",
    "A and C but not B",
    "Not A and C",
    "Neither A nor C",
    "None of the above",
    "All of the above",
    "A and F",  # F is no option
    "B. eat and C",  # B's text is not "eat"
    "A and C?",
    "The answers are A and C. The answers are B and D.",  # statements disagree
    "The answer is A. Actually, A and D. Hmm, not sure.",  # a correction, then doubt
    "The options are:\n- A. eat\n- B. walk\n- C. fly\nI can't tell which from these frames.",
    "I don't think the answers are A and C.",
    "The answer is unclear.",
    "A person is walking",
    "",
    '{"answers": [1, 3]}',  # numbers are no letters
    '{"answers": ["A or C"]}',
    "<answer>A, C</answer><answer>B</answer>x<answer>A or B</answer>",
    "A, C\nB, D",  # answer lines disagree
]


@pytest.mark.parametrize("reply", UNPARSED)
def test_never_guessed(reply):
    assert parse_selection(reply, OPTIONS).indices is None, reply


def test_the_training_target_reads_back():
    for indices in ((1, 3), (0,), (0, 2, 4)):
        target = prompts.mqa_multi_answer(indices, OPTIONS)
        assert parse_selection(target, OPTIONS).indices == frozenset(indices), target


def test_single_letter_parser_is_unchanged_by_lists():
    # the single-letter parser still refuses two letters; the multi-select one reads them
    assert parse_answer("A and C", OPTIONS).index is None
    assert parse_selection("A and C", OPTIONS).indices == frozenset({0, 2})
    assert parse_answer("B", OPTIONS).index == 1


def test_json_list_reply_with_text_items():
    reply = json.dumps({"selected_options": ["walk", "swim"]})
    assert parse_selection(reply, OPTIONS).indices == frozenset({1, 4})


CORPUS = Path(__file__).resolve().parents[1] / "evaluate" / "answer_corpus.jsonl"


def test_the_single_letter_corpus_reads_the_same_as_sets():
    """On the 684 single-answer replies of the parser's corpus (nine model families), the
    multi-select parser gives the single-letter parser's option as a set of one, and nothing
    where it gives nothing, except replies that list several options with their texts (a list
    is what a multi-select question asks for)."""
    rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 684
    lists = []
    for row in rows:
        single = parse_answer(row["reply"], row["options"]).index
        chosen = parse_selection(row["reply"], row["options"]).indices
        if single is not None:
            assert chosen == frozenset({single}), row["reply"]
        elif chosen is not None:
            lists.append(row["reply"])
            assert len(chosen) >= 2, row["reply"]
    assert 0 < len(lists) <= 5  # "B. fill carrot, A. fill plate" and its kind
