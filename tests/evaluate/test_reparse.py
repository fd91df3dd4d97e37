"""`verbnoun score --reparse`: a stored run rescored with the current parser, no model asked."""

from __future__ import annotations

import hashlib
import json

import pytest
from kitchen_questions import kitchen_questions

from verbnoun.bench.questions import read_questions
from verbnoun.cli import main
from verbnoun.errors import VerbnounError
from verbnoun.evaluate.adapters import Reply
from verbnoun.evaluate.records import answered
from verbnoun.evaluate.reparse import reparse_run
from verbnoun.evaluate.runner import EvalSettings, Shard, run_evaluation
from verbnoun.evaluate.score import load_run
from verbnoun.interpret.parsing import PARSER_VERSION, parse_answer

LETTERS = "ABCDEFGHIJ"


@pytest.fixture(scope="module")
def questions(tmp_path_factory):
    return kitchen_questions(tmp_path_factory.mktemp("kitchen"), 10)[1]


class Styled:
    """Replies in the styles of real models, the letter right or not by a hash of the id: some
    the release's rule reads (``B. text``), some only the strict parser (``**B**``), some no
    parser (``B or C``)."""

    name = "styled"
    needs_frames = False
    STYLES = (
        lambda L, T, X: f"**{L}**",
        lambda L, T, X: f"I think the answer is {L}. {T}.",
        lambda L, T, X: f"{L}. {T}",
        lambda L, T, X: f"{L} or {X}",
        lambda L, T, X: json.dumps({"answer": f"{L}. {T}"}),
        lambda L, T, X: f"Looking at the frames, the hands move.\n\nFinal answer: {L}",
        lambda L, T, X: f"It is not {L}.",
    )

    def settings(self):
        return {}

    def answer(self, requests):
        replies = []
        for request in requests:
            q = request.question
            digest = hashlib.sha256(q.id.encode()).digest()
            index = q.answer_index if digest[0] % 3 else (q.answer_index + 1) % len(q.options)
            other = LETTERS[(index + 2) % len(q.options)]
            style = self.STYLES[digest[1] % len(self.STYLES)]
            replies.append(Reply(style(LETTERS[index], q.options[index].text, other)))
        return replies


def _files(run):
    return {p.name: p.read_bytes() for p in sorted(run.iterdir())}


def test_reparse_rescores_the_stored_answers_into_a_new_run(questions, tmp_path, capsys):
    old = tmp_path / "original"
    run_evaluation(questions, Styled(), old, EvalSettings(parser="original"), progress=False)
    before = _files(old)
    new = tmp_path / "strict"
    code = main(["score", "--reparse", str(old), "--out", str(new), "--parser", "strict"])
    out = capsys.readouterr().out
    assert code == 0 and _files(old) == before  # the old run is left as it was

    by_id = {q.id: q for q in read_questions(questions)}
    old_records, new_records = answered(old), answered(new)
    assert set(new_records) == set(old_records) == set(by_id)
    changed = {"unparsed_to_chosen": 0, "chosen_to_unparsed": 0, "chosen_to_other": 0}
    for qid, record in new_records.items():
        parsed = parse_answer(record["raw"], by_id[qid].option_texts)
        assert (record["choice"], record["rule"]) == (parsed.index, parsed.rule)
        assert record["correct"] == (parsed.index == by_id[qid].answer_index)
        was = old_records[qid]
        assert {k: v for k, v in record.items() if k not in ("choice", "rule", "correct")} == {
            k: v for k, v in was.items() if k not in ("choice", "rule", "correct")
        }
        if was["choice"] != record["choice"]:
            key = ("unparsed_to_chosen" if was["choice"] is None else "chosen_to_unparsed"
                   if record["choice"] is None else "chosen_to_other")  # fmt: skip
            changed[key] += 1
    assert changed["unparsed_to_chosen"] > 0  # "**B**" and "Final answer: B" are read now
    summary = json.loads((new / "reparse.json").read_text())
    assert summary["changed"] == changed and summary["answers"] == len(by_id)
    assert (summary["from_parser"], summary["parser"]) == ("original", "strict")
    config, old_config = (json.loads((r / "config.json").read_text()) for r in (new, old))
    assert config["parser"] == "strict" and config["parser_version"] == PARSER_VERSION
    assert {k: v for k, v in config.items() if not k.startswith("parser")} == {
        k: v for k, v in old_config.items() if not k.startswith("parser")
    }
    assert (new / "prompts.jsonl").read_bytes() == (old / "prompts.jsonl").read_bytes()
    # metrics.json of the new run is what score computes from its files
    metrics = json.loads((new / "metrics.json").read_text())
    assert metrics["overall"] == load_run(new).metrics["overall"]
    assert metrics["overall"]["unparsed"] == sum(r["choice"] is None for r in new_records.values())
    assert f"{changed['unparsed_to_chosen']} unparsed -> chosen" in out

    # old and new compare like any two runs on the same questions
    assert main(["score", str(old), str(new), "--json"]) == 0
    comparison = json.loads(capsys.readouterr().out)
    (pair,) = comparison["paired"]
    assert pair["questions"] == len(by_id)
    assert pair["b_only"] >= sum(
        1 for i, r in new_records.items() if r["correct"] and not old_records[i]["correct"]
    )

    # the same run parsed again with its own parser changes nothing; the earlier output is replaced
    assert (
        main(["score", "--reparse", str(new), "--out", str(new.with_name("again")), "--json"]) == 0
    )
    again = json.loads(capsys.readouterr().out)
    assert again["reparse"]["changed"] == dict.fromkeys(changed, 0)
    assert main(["score", "--reparse", str(old), "--out", str(new)]) == 0  # replaced
    assert json.loads((new / "reparse.json").read_text())["parser"] == "original"


def test_a_partial_run_reparsed_goes_on_in_the_new_folder(questions, tmp_path):
    old = tmp_path / "old"
    run_evaluation(questions, Styled(), old, EvalSettings(), shard=Shard(1, 2), progress=False)
    # as if made by an older strict parser: the run cannot go on under this version
    config = json.loads((old / "config.json").read_text())
    (old / "config.json").write_text(json.dumps({**config, "parser_version": "1"}))
    with pytest.raises(VerbnounError, match="score --reparse"):
        run_evaluation(questions, Styled(), old, EvalSettings(), shard=Shard(2, 2), progress=False)
    new = tmp_path / "new"
    summary = reparse_run(old, new)
    assert summary["from_parser_version"] == "1" and not (new / "metrics.json").exists()
    metrics = run_evaluation(
        questions, Styled(), new, EvalSettings(), shard=Shard(2, 2), progress=False
    )
    assert metrics is not None and metrics["overall"]["n"] == len(read_questions(questions))
    assert set(answered(old)) < set(answered(new))


def test_reparse_refusals(questions, tmp_path, capsys):
    run = tmp_path / "run"
    run_evaluation(questions, Styled(), run, EvalSettings(), progress=False)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    for args, message in [
        (["--reparse", str(run), "--out", str(run)], "must be a new folder"),
        (["--reparse", str(run), "--out", str(other)], "not empty"),
        (["--reparse", str(run), str(run), "--out", str(tmp_path / "x")], "one run folder"),
        (["--reparse", str(run)], "one run folder"),
        ([str(run), "--out", str(tmp_path / "x")], "go with --reparse"),
        (["--reparse", str(tmp_path / "nothing"), "--out", str(tmp_path / "x")], "not a run"),
    ]:
        assert main(["score", *args]) == 1
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, (args, err)
    assert (other / "notes.txt").read_text() == "mine" and not (tmp_path / "x").exists()
    records = (run / "predictions.jsonl").read_text().splitlines()
    broken = json.loads(records[0])
    del broken["raw"]
    (run / "predictions.jsonl").write_text("\n".join([json.dumps(broken), *records[1:]]) + "\n")
    assert main(["score", "--reparse", str(run), "--out", str(tmp_path / "y")]) == 1
    assert "no raw answer" in capsys.readouterr().err


def test_the_notebook_api_reparses_and_shows_prompts(questions, tmp_path):
    import verbnoun as lva

    old = tmp_path / "old"
    run_evaluation(questions, Styled(), old, EvalSettings(parser="original"), progress=False)
    new = lva.reparse(old, tmp_path / "new", parser="strict")
    assert new.path == tmp_path / "new" and new.config["parser"] == "strict"
    assert new.metrics["overall"]["unparsed"] < load_run(old).metrics["overall"]["unparsed"]
    question = read_questions(questions)[0]
    shown = lva.show_prompt(new, question.id)
    assert shown["sent"]["prompt"] == question.prompt(8) and shown["template"] == "mqa"
