"""Prediction records: what one line of a run's ``predictions.jsonl`` / ``failed.jsonl`` holds.

* Made from the model's replies, a chunk at a time: :func:`parsed_records` (a multiple-choice
  reply parsed to the option it chose), :func:`mapped_records` (a free-text answer mapped to
  verb and noun classes), :func:`selected_records` (a multi-select reply read as a set of action
  ids), :func:`failed_record` (a question the endpoint could not answer); :func:`with_usage`
  adds an endpoint's token usage and tries.
* Read back from a run folder, every record checked (an answered one has an option index or
  ``null`` as ``choice``, a boolean ``correct`` and, multi-select, a list of action ids or
  ``null`` as ``labels``; a malformed line is an error naming it, a last line cut short by a
  kill is dropped): :func:`read_predictions` (one file), :func:`answered` and :func:`failures`
  (merged over shard files), :func:`compact_failed` (keep only the latest failure per question).

The shared run-folder mechanics (torn lines, shards, atomic rewrites) are :mod:`verbnoun.runs`';
the evaluation loop that asks the questions is :mod:`verbnoun.evaluate.runner`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from verbnoun import runs

if TYPE_CHECKING:
    from verbnoun.interpret.open_vocab import OpenVocabMapper


def read_predictions(path: Path, *, repair: bool = False) -> list[dict]:
    """Read one predictions (or failed) file. A last line cut short by a kill is ignored (and,
    with ``repair``, removed from the file); any other malformed line is an error naming it."""
    if repair:
        runs.repair_tail(path)
    return list(runs.iter_records(path, "malformed prediction line", _record_problem))


def _record_problem(record: dict) -> str | None:
    """What is wrong with an answered record's ``choice`` / ``correct`` (failed ones have none)."""
    if "failed" in record:
        return None
    labels = record.get("labels", [])
    if labels is not None and not (
        isinstance(labels, list) and all(isinstance(label, str) for label in labels)
    ):
        return f"'labels' must be a list of action ids or null, got {labels!r}"
    choice = record.get("choice")
    if "choice" not in record or not (
        choice is None or (type(choice) is int and 0 <= choice < 26)  # a bool is no index
    ):
        return f"'choice' must be an option index or null, got {choice!r}"
    if not isinstance(record.get("correct"), bool):
        return f"'correct' must be true or false, got {record.get('correct')!r}"
    return None


def answered(run_dir: Path) -> dict[str, dict]:
    """All predictions of a run directory, merged over shard files (first answer wins)."""
    merged: dict[str, dict] = {}
    for record in runs.merged(run_dir, "predictions", "malformed prediction line", _record_problem):
        merged.setdefault(record["id"], record)
    return merged


def failures(run_dir: Path, answered_ids=None) -> dict[str, dict]:
    """The failed records of a run directory (the latest per question, over shard files) of
    the questions that have no answer (``answered_ids``: default, those of :func:`answered`)."""
    if answered_ids is None:
        answered_ids = answered(run_dir)
    merged: dict[str, dict] = {}
    for record in runs.merged(run_dir, "failed", "malformed prediction line", _record_problem):
        if record["id"] not in answered_ids:
            merged[record["id"]] = record
    return merged


def compact_failed(path: Path, answered_ids) -> None:
    """Keep in a failed file only the latest record of each still unanswered question (an
    atomic rewrite; nothing to do when it holds nothing else)."""
    records = read_predictions(path, repair=True)
    latest = {r["id"]: r for r in records if r["id"] not in answered_ids}
    if len(latest) == len(records):
        return
    runs.rewrite(path, latest.values())


def parsed_records(parse):
    """Records of multiple-choice answers: each reply parsed to the option it chose."""

    def records_of(answered: list[tuple]) -> Iterator[dict]:
        for request, reply, latency in answered:
            q = request.question
            parsed = parse(reply.raw, q.option_texts)
            record = {
                "id": q.id,
                "raw": reply.raw,
                "choice": parsed.index,
                "rule": parsed.rule,
                "correct": parsed.index == q.answer_index,
                "latency": round(latency, 4),
            }
            if reply.scores is not None:
                record["scores"] = reply.scores
            if request.extra.get("prior_sources"):
                record["prior_sources"] = request.extra["prior_sources"]
            yield record

    return records_of


def mapped_records(mapper: OpenVocabMapper):
    """Records of free-text answers: each mapped to (verb class, noun class), a chunk at once."""

    def records_of(answered: list[tuple]) -> Iterator[dict]:
        mappings = mapper.map_many([reply.raw for _, reply, _ in answered])
        for (request, reply, latency), mapping in zip(answered, mappings, strict=True):
            q = request.question
            yield {
                "id": q.id,
                "raw": reply.raw,
                "answer": mapping.text,
                "choice": None,  # no options were shown
                "verb_class": mapping.verb_class,
                "noun_class": mapping.noun_class,
                "action_id": mapping.action_id,
                "method": mapping.method,
                "confidence": round(mapping.confidence, 4),
                "mapping": {"verb": mapping.verb.to_dict(), "noun": mapping.noun.to_dict()},
                "actions": mapping.actions,  # actions the answer names; the first done is mapped
                "correct": mapping.action_id == q.action_id,
                "latency": round(latency, 4),
            }

    return records_of


def selected_records(read, mapper: OpenVocabMapper | None):
    """Records of multi-select answers: each reply read as a set of action ids (``read``: an
    :mod:`~verbnoun.evaluate.answer_sets` reading); ``correct``: exactly the true set."""

    def records_of(answered: list[tuple]) -> Iterator[dict]:
        for request, reply, latency in answered:
            q = request.question
            found = read(q, reply.raw, reply.scores, mapper)
            labels = sorted(found.labels) if found.labels is not None else None
            record = {
                "id": q.id,
                "raw": reply.raw,
                "choice": None,  # a set, not one option: see labels
                "choices": list(found.choices) if found.choices is not None else None,
                "labels": labels,
                "rule": found.rule,
                "correct": found.labels == frozenset(q.true_action_ids),
                "latency": round(latency, 4),
            }
            if reply.scores is not None:
                record["scores"] = reply.scores
            yield record

    return records_of


def failed_record(question_id: str, reply) -> dict:
    """The record of a question the endpoint could not answer: no answer, no choice."""
    return with_usage({"id": question_id, "failed": reply.failure}, reply)


def with_usage(record: dict, reply) -> dict:
    """Add an endpoint's token usage and tries to a record (nothing for local models)."""
    if reply.usage is not None:
        record["usage"] = reply.usage
    if reply.extra.get("attempts") is not None:
        record["attempts"] = reply.extra["attempts"]
    return record
