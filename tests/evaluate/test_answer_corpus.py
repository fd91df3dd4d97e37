"""The strict parser against the answer corpus (``answer_corpus.jsonl``): replies in the styles of
real model families, each with the letter a careful reader takes from it or none. Every parseable
reply must be chosen right and no negative chosen (issue 23's target)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import make_answer_corpus

from verbnoun.fileio import read_jsonl
from verbnoun.interpret.parsing import RULES, parse_answer

CORPUS = Path(__file__).with_name("answer_corpus.jsonl")


def _rows() -> list[dict]:
    return [row for _, row in read_jsonl(CORPUS)]


def test_the_corpus_file_is_its_generators_output():
    assert CORPUS.read_bytes() == make_answer_corpus.corpus_bytes()


def test_the_corpus_covers_families_and_negatives():
    rows = _rows()
    families = Counter(row["family"] for row in rows)
    negatives = Counter(row["kind"] for row in rows if row["expected"] is None)
    assert len(rows) >= 400 and len(families) >= 6 and min(families.values()) >= 20
    assert sum(negatives.values()) >= 80
    for kind in ("two-letters", "negation", "contradiction", "hedge", "out-of-range"):
        assert negatives[kind] >= 5, kind
    for row in rows:
        assert (
            row["expected"] is None
            or row["expected"] in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[: len(row["options"])]
        )


def test_strict_parser_chooses_every_parseable_reply_and_no_negative(capsys):
    rows = _rows()
    wrong, rules = [], Counter()
    for row in rows:
        parsed = parse_answer(row["reply"], row["options"])
        got = None if parsed.index is None else chr(ord("A") + parsed.index)
        assert parsed.rule in RULES
        assert (parsed.rule == "unparsed") == (got is None)
        rules[parsed.rule] += 1
        if got != row["expected"]:
            wrong.append(f"[{row['family']}/{row['kind']}] expected {row['expected']} got {got}: "
                         f"{row['reply']!r}")  # fmt: skip
    parseable = sum(row["expected"] is not None for row in rows)
    with capsys.disabled():
        print(f"\nanswer corpus: {parseable - len(wrong)}/{parseable} parseable replies chosen "
              f"right, rules {dict(rules)}")  # fmt: skip
    assert not wrong, "\n".join(wrong)
    assert rules["statement"] > 50 and rules["json"] > 20 and rules["line"] > 10
