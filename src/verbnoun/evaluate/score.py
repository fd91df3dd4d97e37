"""``verbnoun score``: compare finished (or partial) runs on the same questions.

Each run directory is read back from its files alone: ``config.json`` names the question file
and its sha256 (checked), the prediction files are merged over shards, and the metrics are
recomputed. Runs on the same questions are compared pairwise with an exact McNemar test.
A question file shared by several runs is hashed, read and checked once per process
(:data:`QUESTION_FILES`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

from verbnoun.bench.questions import Question, read_questions
from verbnoun.errors import VerbnounError
from verbnoun.evaluate.metrics import mcnemar_counts
from verbnoun.evaluate.records import answered, failures
from verbnoun.evaluate.run_metrics import compute_metrics
from verbnoun.fileio import read_json, require, sha256_file

RUN_CONFIG_KEYS = ("model", "questions", "questions_sha256")  # what score reads of config.json


class QuestionFiles:
    """Question files hashed, read and checked once per process, however many runs share them
    (``verbnoun report`` on 12 runs of one 10,000-question file reads it once). A file is known
    by its resolved path, size, inode and modification time: one changed on disk is read again.
    The last ``limit`` files are kept; ``enabled = False`` reads every time (the old path, for
    ``benchmarks/bench_report.py``)."""

    def __init__(self, limit: int = 8) -> None:
        self.limit, self.enabled = limit, True
        self.files: OrderedDict[tuple, dict] = OrderedDict()
        self.lock = threading.Lock()

    def sha256(self, path: Path) -> str:
        """The file's sha256."""
        return self._get(path, "sha256", sha256_file)

    def questions(self, path: Path) -> list[Question]:
        """The file's questions (:func:`~verbnoun.bench.questions.read_questions`), a new list
        of the same (frozen) questions for each caller."""
        return list(self._get(path, "questions", read_questions))

    def _get(self, path: Path, what: str, read):
        key = _stamp(path)
        with self.lock:
            entry = self.files.get(key) if self.enabled else None
            if entry is not None and what in entry:
                self.files.move_to_end(key)
                return entry[what]
            value = read(path)
            if self.enabled and _stamp(path) == key:  # unchanged while it was read
                self.files.setdefault(key, {})[what] = value
                self.files.move_to_end(key)
                while len(self.files) > self.limit:
                    self.files.popitem(last=False)
            return value

    def clear(self) -> None:
        with self.lock:
            self.files.clear()


def _stamp(path: Path) -> tuple:
    stat = path.stat()
    return (str(path.resolve()), stat.st_size, stat.st_ino, stat.st_mtime_ns)


QUESTION_FILES = QuestionFiles()


@dataclass
class Run:
    path: Path
    config: dict
    questions: list[Question]
    predictions: dict[str, dict]
    metrics: dict

    @property
    def label(self) -> str:
        return self.path.name

    @property
    def complete(self) -> bool:
        return all(q.id in self.predictions for q in self.questions)


def load_run(run_dir: str | Path, *, annotations: str | Path | None = None) -> Run:
    """Read a run directory back: config, questions (sha256 checked), merged predictions."""
    run_dir = Path(run_dir)
    config_path = run_dir / "config.json"
    if not run_dir.is_dir():
        raise VerbnounError(f"{run_dir}: not a run directory (folder not found)")
    if not config_path.exists():
        raise VerbnounError(f"{run_dir}: not a run directory (no config.json)")
    config = read_json(config_path, expect=dict)
    for key in RUN_CONFIG_KEYS:
        require(config, key, str, config_path)
    questions_path = Path(config["questions"])
    if not questions_path.is_file():
        raise VerbnounError(f"{config_path}: question file {questions_path} not found")
    if QUESTION_FILES.sha256(questions_path) != config["questions_sha256"]:
        raise VerbnounError(f"{questions_path}: changed since the run {run_dir} was made")
    questions = QUESTION_FILES.questions(questions_path)
    predictions = answered(run_dir)
    unknown = sorted(set(predictions) - {q.id for q in questions})
    if unknown:
        raise VerbnounError(f"{run_dir}: predictions for unknown question ids: {unknown[:3]}")
    for question in questions:
        choice = predictions.get(question.id, {}).get("choice")
        if choice is not None and choice >= len(question.options):
            raise VerbnounError(
                f"{run_dir}: prediction for question {question.id}: choice {choice} is outside its "
                f"{len(question.options)} options"
            )
    metrics = compute_metrics(
        questions, predictions, annotations=annotations, open_vocab="open_vocab" in config,
        failed=failures(run_dir, predictions),
        answer_set=(config.get("multilabel") or {}).get("answer_set"),
    )  # fmt: skip
    return Run(run_dir, config, questions, predictions, metrics)


def compare(runs: list[Run]) -> dict:
    """A table row per run and a paired test per pair of runs on the same questions."""
    rows = []
    for run in runs:
        overall = run.metrics["overall"]
        rows.append(
            {
                "run": str(run.path),
                "model": run.config["model"],
                "answered": overall["n"],
                "failed": run.metrics["coverage"]["failed"],  # the endpoint never answered
                "questions": len(run.questions),
                "accuracy": overall["accuracy"],
                "ci95": overall["ci95"],
                "unparsed_rate": overall["unparsed_rate"],
                # free-text answers mapped to classes: top-1 verb / noun / action, unmapped share
                "open_vocab": run.metrics.get("open_vocab"),
                # multi-select questions: Jaccard accuracy, exact match, mAP (with scores)
                "multilabel": _multilabel_row(run.metrics.get("multilabel")),
            }
        )
    pairs = []
    states = {id(run): _states(run) for run in runs}
    for a, b in combinations(runs, 2):
        if a.config["questions_sha256"] != b.config["questions_sha256"]:
            continue  # (the same file: the same questions in the same order)
        if ("open_vocab" in a.config) != ("open_vocab" in b.config):
            continue  # free-text vs multiple-choice answers: not the same task
        x, y = states[id(a)], states[id(b)]
        common = int(((x >= 0) & (y >= 0)).sum())
        test = mcnemar_counts(int(((x == 1) & (y == 0)).sum()), int(((x == 0) & (y == 1)).sum()))
        pairs.append({"a": str(a.path), "b": str(b.path), "questions": common, **test})
    return {"runs": rows, "paired": pairs}


def _multilabel_row(multi: dict | None) -> dict | None:
    """The headline multi-label figures of a run (``None`` for single-label questions)."""
    if multi is None:
        return None
    return {key: multi[key] for key in ("answer_set", "n", "jaccard", "exact_match", "map",
                                        "macro_f1", "empty_predictions")}  # fmt: skip


def _states(run: Run):
    """Per question of the run, in file order: 1 right, 0 wrong, -1 not answered (int8)."""
    import numpy as np

    answers = run.predictions
    return np.array(
        [int(bool(answers[q.id]["correct"])) if q.id in answers else -1 for q in run.questions],
        dtype=np.int8,
    )


def render(comparison: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title="runs")
    for column in ("run", "model", "answered", "accuracy", "95% CI", "unparsed"):
        table.add_column(column)
    for row in comparison["runs"]:
        low, high = row["ci95"]
        table.add_row(
            row["run"], row["model"], f"{row['answered']}/{row['questions']}"
            + (f" ({row['failed']} failed)" if row.get("failed") else ""),
            f"{100 * row['accuracy']:.1f}", f"{100 * low:.1f}-{100 * high:.1f}",
            f"{100 * row['unparsed_rate']:.1f}%",
        )  # fmt: skip
    console.print(table)
    mapped = [row for row in comparison["runs"] if row.get("open_vocab")]
    if mapped:
        free = Table(title="open vocabulary (free-text answers mapped to classes)")
        for column in ("run", "answered", "verb", "noun", "action", "unmapped"):
            free.add_column(column)
        for row in mapped:
            ov = row["open_vocab"]
            free.add_row(
                row["run"], f"{row['answered']}/{row['questions']}", f"{100 * ov['verb']:.1f}",
                f"{100 * ov['noun']:.1f}", f"{100 * ov['action']:.1f}",
                f"{100 * ov['unmapped']:.1f}%",
            )  # fmt: skip
        console.print(free)
    multi = [row for row in comparison["runs"] if row.get("multilabel")]
    if multi:
        sets = Table(title="multi-label (several behaviours per clip)")
        for column in ("run", "answer set", "Jaccard", "95% CI", "exact", "mAP", "95% CI",
                       "macro F1"):  # fmt: skip
            sets.add_column(column)
        for row in multi:
            ml = row["multilabel"]
            ap = ml["map"] or {"value": None, "ci95": [None, None]}
            sets.add_row(
                row["run"], ml["answer_set"] or "-", _pct(ml["jaccard"]["value"]),
                _span(ml["jaccard"]["ci95"]), _pct(ml["exact_match"]["value"]),
                _pct(ap["value"]), _span(ap["ci95"]), _pct(ml["macro_f1"]),
            )  # fmt: skip
        console.print(sets)
    if comparison["paired"]:
        paired = Table(title="paired (exact McNemar)")
        for column in ("a", "b", "questions", "right in a only", "right in b only", "p"):
            paired.add_column(column)
        for pair in comparison["paired"]:
            paired.add_row(
                pair["a"], pair["b"], str(pair["questions"]), str(pair["a_only"]),
                str(pair["b_only"]), f"{pair['p_value']:.3g}",
            )  # fmt: skip
        console.print(paired)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _span(interval) -> str:
    low, high = interval
    return "-" if low is None else f"{100 * low:.1f}-{100 * high:.1f}"
