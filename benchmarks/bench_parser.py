"""The strict answer parser against the answer corpus (issue 23): how many parseable replies it
chooses right, how many it leaves unparsed or chooses wrong, and how many negatives (replies that
offer no single answer) it chooses. Targets: 100 % of parseable replies chosen right, 0 negatives
chosen (a missed target is a NOT met figure; the exit status is 0 whenever the count ran).

    .venv/bin/python benchmarks/bench_parser.py [--parser-file OLD_parsing.py] [--failures]

``--parser-file`` counts another copy of ``parsing.py`` (e.g. an older version taken with ``git
show REV:src/verbnoun/interpret/parsing.py > /tmp/old.py``) beside the current one, on the same
corpus, in the same run. The corpus is ``tests/evaluate/answer_corpus.jsonl`` (written by
``tests/evaluate/make_answer_corpus.py``). ``--quick``: every 10th reply of the corpus.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from collections import Counter
from pathlib import Path

from results import Report, quick_flag

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "evaluate" / "answer_corpus.jsonl"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def read_corpus(path: Path = CORPUS) -> list[dict]:
    from verbnoun.fileio import read_jsonl

    return [row for _, row in read_jsonl(path)]


def load_parser(path: Path | None):
    """``parse_answer`` of the current module, or of the parsing.py copy at ``path``."""
    if path is None:
        from verbnoun.interpret.parsing import PARSER_VERSION, parse_answer

        return parse_answer, PARSER_VERSION
    spec = importlib.util.spec_from_file_location("parsing_under_test", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.parse_answer, module.PARSER_VERSION


def count(parse, rows: list[dict]) -> dict:
    """Tallies of one parser on the corpus, and the rows it gets wrong."""
    tally = Counter()
    wrong = []
    for row in rows:
        parsed = parse(row["reply"], row["options"])
        got = None if parsed.index is None else LETTERS[parsed.index]
        if row["expected"] is None:
            tally["negatives"] += 1
            if got is not None:
                tally["negatives_chosen"] += 1
                wrong.append((row, got, parsed.rule))
        else:
            tally["parseable"] += 1
            if got == row["expected"]:
                tally["right"] += 1
            else:
                tally["unparsed" if got is None else "chosen_wrong"] += 1
                wrong.append((row, got, parsed.rule))
    return {"tally": tally, "wrong": wrong}


def line(name: str, result: dict) -> str:
    t = result["tally"]
    return (
        f"{name:<22} parseable chosen right {t['right']}/{t['parseable']} "
        f"({100 * t['right'] / max(t['parseable'], 1):.1f}%; {t['unparsed']} unparsed, "
        f"{t['chosen_wrong']} chosen wrong)   negatives chosen {t['negatives_chosen']}/"
        f"{t['negatives']}"
    )


DEGENERATE = {  # what a local model stuck in a loop writes until its token limit
    "repeated cue": "the answer is " * 2000,
    "repeated copula": "it is " * 2000,
    "repeated emphasis": "**a " * 5000,
    "repeated answer": "the answer is B " * 2000,
    "repeated reasoning": "The hand moves toward the door and it is closing it. " * 500 + "So: B",
}


def _speed(rows: list[dict], report: Report) -> None:
    """The current parser's time per corpus reply, and on replies of a model stuck in a loop."""
    from verbnoun.interpret.parsing import parse_answer

    start = time.perf_counter()
    for row in rows:
        parse_answer(row["reply"], row["options"])
    each = (time.perf_counter() - start) / len(rows)
    worst = 0.0
    for text in DEGENERATE.values():
        start = time.perf_counter()
        parse_answer(text, ["open door", "close door", "take plate", "put down plate", "wash cup"])
        worst = max(worst, time.perf_counter() - start)
    longest = max(len(t) for t in DEGENERATE.values())
    report.figure("time_per_reply", 1e3 * each, "ms", reference=f"{len(rows)} corpus replies")
    report.figure(
        "worst_looping_reply",
        1e3 * worst,
        "ms",
        reference=f"replies of a model stuck in a loop, up to {longest:,} characters",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parser-file", type=Path, help="Another parsing.py to count beside.")
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--failures", action="store_true", help="List every reply gotten wrong.")
    quick_flag(parser)
    args = parser.parse_args(argv)
    report = Report("bench_parser", args.quick)
    rows = read_corpus(args.corpus)
    if args.quick:
        rows = rows[::10]
    families = sorted({row["family"] for row in rows})
    print(f"corpus: {len(rows)} replies, {len(families)} families ({', '.join(families)}), "
          f"{sum(r['expected'] is None for r in rows)} negatives")  # fmt: skip
    sys.stdout.flush()
    runs = []
    if args.parser_file is not None:
        runs.append((args.parser_file, *load_parser(args.parser_file)))
    runs.append((None, *load_parser(None)))
    for path, parse, version in runs:
        result = count(parse, rows)
        name = f"strict v{version}" + (f" ({path.name})" if path is not None else "")
        print(line(name, result))
        if args.failures:
            for row, got, rule in result["wrong"]:
                print(f"  [{row['family']}/{row['kind']}] expected {row['expected']} got {got} "
                      f"({rule}): {row['reply']!r}")  # fmt: skip
        if path is None:
            t = result["tally"]
            report.figure("parseable_right", 100 * t["right"] / t["parseable"], "%",
                          reference=f"{t['right']}/{t['parseable']} parseable replies",
                          target="100%", met=t["right"] == t["parseable"])  # fmt: skip
            report.figure("negatives_chosen", t["negatives_chosen"], "",
                          reference=f"of {t['negatives']} replies offering no single answer",
                          target="0", met=t["negatives_chosen"] == 0)  # fmt: skip
    _speed(rows, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
