"""Rescore a run without asking again: ``verbnoun score --reparse RUN --out NEW``.

In: a run folder (``config.json``, ``predictions*.jsonl`` over any shards, ``failed*.jsonl``) and
its question file (sha256 checked, as ``score`` does). Out: a new run folder ``NEW`` in which
every stored raw answer is parsed again with the parser of this version of verbnoun (``strict``,
or the run's own, or ``--parser``); nothing is sent to any model.

* ``NEW/config.json`` is the old one with ``parser`` and ``parser_version`` of the parser used
  now, so ``verbnoun eval ... --out NEW`` with the run's settings resumes it (a partial run's
  unasked questions are then answered and parsed with the new parser).
* ``NEW/predictions.jsonl`` holds every answered record of the run (shards merged), with
  ``choice``, ``rule`` and ``correct`` of the new parse and everything else (raw answer,
  latency, token usage, option scores) as it was; the failed records are carried to
  ``NEW/failed.jsonl``, the recorded prompts (``prompts.jsonl``) as they are.
* ``NEW/metrics.json`` is written when every question is answered or failed, as the runner
  does; the old throughput and token usage (they do not depend on parsing) are kept.
* ``NEW/reparse.json`` says where the answers came from, both parsers and versions, and how
  many choices changed (unparsed -> chosen, chosen -> unparsed, chosen -> another option).

The folder appears complete or not at all (written beside it, then renamed); an earlier output
of ``--reparse`` (it holds ``reparse.json``) is replaced, any other non-empty folder refused.
Open-vocabulary runs map free text to classes, not to options: they are refused, and so are
multi-select runs (their replies are sets). Runs that fed
the model its own earlier answers (``prior_actions: model``) are rescored too, but their prompts
were built from the old choices; ``reparse.json`` says so.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from verbnoun import __version__
from verbnoun.errors import VerbnounError
from verbnoun.evaluate.records import failures
from verbnoun.evaluate.run_metrics import compute_metrics
from verbnoun.evaluate.score import Run, load_run
from verbnoun.fileio import atomic_folder, read_json, write_json
from verbnoun.interpret.parsing import PARSER_VERSIONS, PARSERS, get_parser

MARKER = "reparse.json"
CARRIED = ("prompts.jsonl",)  # files of the run that do not depend on parsing


def reparse_run(
    run_dir: str | Path,
    out: str | Path,
    *,
    parser: str | None = None,
    annotations=None,
) -> dict:
    """Parse every stored raw answer of ``run_dir`` again into the run folder ``out`` (see the
    module's docstring); returns what ``reparse.json`` records."""
    run_dir, out = Path(run_dir), Path(out)
    if out.resolve() == run_dir.resolve():
        raise VerbnounError(f"{out}: --out must be a new folder (the old run stays as it was)")
    old = load_run(run_dir, annotations=annotations)
    if "open_vocab" in old.config:
        raise VerbnounError(
            f"{run_dir}: an open-vocabulary run maps free text to classes; there are no options "
            "to parse again"
        )
    if "multilabel" in old.config:
        raise VerbnounError(
            f"{run_dir}: a multi-select run reads replies as sets (--answer-set); --reparse "
            "parses single choices and does not rescore it"
        )
    name = parser or old.config.get("parser", "strict")
    if name not in PARSERS:
        raise VerbnounError(f"unknown parser {name!r}; choose one of {', '.join(PARSERS)}")
    parse = get_parser(name)
    by_id = {q.id: q for q in old.questions}
    records, changed = [], {"unparsed_to_chosen": 0, "chosen_to_unparsed": 0, "chosen_to_other": 0}
    for question in old.questions:  # the question file's order
        record = old.predictions.get(question.id)
        if record is None:
            continue
        raw = record.get("raw")
        if not isinstance(raw, str):
            raise VerbnounError(
                f"{run_dir}: the prediction of question {question.id} has no raw answer to parse"
            )
        parsed = parse(raw, by_id[question.id].option_texts)
        before, after = record["choice"], parsed.index
        if before != after:
            key = (
                "unparsed_to_chosen" if before is None
                else "chosen_to_unparsed" if after is None
                else "chosen_to_other"
            )  # fmt: skip
            changed[key] += 1
        records.append(
            {**record, "choice": after, "rule": parsed.rule,
             "correct": after == question.answer_index}
        )  # fmt: skip
    failed = failures(run_dir, old.predictions)
    config = {**old.config, "parser": name, "parser_version": PARSER_VERSIONS[name]}
    summary = {
        "from": str(run_dir.resolve()),
        "from_parser": old.config.get("parser"),
        "from_parser_version": old.config.get("parser_version"),
        "parser": name,
        "parser_version": PARSER_VERSIONS[name],
        "answers": len(records),
        "failed": len(failed),
        "changed": changed,
        "prompts_from_old_choices": old.config.get("prior_actions") == "model",
        "created_with": __version__,
    }
    new_predictions = {r["id"]: r for r in records}
    metrics = None
    if all(q.id in new_predictions or q.id in failed for q in old.questions):
        metrics = compute_metrics(
            old.questions, new_predictions, annotations=annotations, failed=failed
        )
        kept = _old_metrics(run_dir)
        for key in ("usage", "throughput"):  # token counts, prices and speed: not parsing's
            if key in kept:
                metrics[key] = kept[key]
    with atomic_folder(out, marker=MARKER) as staging:
        write_json(staging / "config.json", config)
        _write_jsonl(staging / "predictions.jsonl", records)
        if failed:
            _write_jsonl(staging / "failed.jsonl", list(failed.values()))
        for name_ in CARRIED:
            if (run_dir / name_).is_file():
                shutil.copyfile(run_dir / name_, staging / name_)
        if metrics is not None:
            write_json(staging / "metrics.json", metrics)
        write_json(staging / MARKER, summary)
    return summary


def _old_metrics(run_dir: Path) -> dict:
    path = run_dir / "metrics.json"
    return read_json(path, expect=dict) if path.is_file() else {}


def _write_jsonl(path: Path, records: list[dict]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def describe(summary: dict, old: Run, new: Run) -> str:
    """One line: what changed between the old run and its re-parsed copy."""
    changed = summary["changed"]
    before, after = old.metrics["overall"], new.metrics["overall"]
    return (
        f"{new.path}: re-parsed {summary['answers']} answers with {summary['parser']} "
        f"v{summary['parser_version']} (was {summary['from_parser']} "
        f"v{summary['from_parser_version']}): {changed['unparsed_to_chosen']} unparsed -> chosen, "
        f"{changed['chosen_to_unparsed']} chosen -> unparsed, {changed['chosen_to_other']} "
        f"chosen -> another option; accuracy {100 * before['accuracy']:.1f}% -> "
        f"{100 * after['accuracy']:.1f}%, unparsed {100 * before['unparsed_rate']:.1f}% -> "
        f"{100 * after['unparsed_rate']:.1f}%"
    )
