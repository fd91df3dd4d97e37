"""`eval --open-vocab`: the direct-narration question, free-text answers mapped to classes."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from kitchen_questions import kitchen_questions
from PIL import Image

from fake_openai import FakeOpenAI, completion
from verbnoun.bench import prompts
from verbnoun.bench.build import BuildSettings, build_benchmark
from verbnoun.bench.questions import read_questions, write_questions
from verbnoun.cli import main
from verbnoun.data.annotations import EK100Annotations
from verbnoun.errors import VerbnounError
from verbnoun.evaluate.endpoint import RetryPolicy
from verbnoun.evaluate.openai_adapter import OpenAIAdapter
from verbnoun.evaluate.records import answered
from verbnoun.evaluate.runner import EvalSettings, run_evaluation
from verbnoun.evaluate.score import compare, load_run
from verbnoun.interpret.open_vocab import OpenVocabMapper

KEY_ENV = "LLAVACTION_OPEN_VOCAB_KEY"


@pytest.fixture(scope="module")
def kitchen(tmp_path_factory):
    """Twelve questions of the synthetic kitchen and its class lists."""
    return kitchen_questions(tmp_path_factory.mktemp("open-vocab"), 8, first=12)


def _index_of(body) -> int:
    """The question index the test's frames carry in their red channel."""
    url = body["messages"][1]["content"][1]["image_url"]["url"]
    image = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    return round(image.getpixel((0, 0))[0] / 16)


class Narrator:
    """Answers like a model asked for a narration: question i's own narration in free text
    when i % 4 < 2, "I am opening the blue jar" when i % 4 == 2, and no action when i % 4 == 3."""

    def __init__(self, questions):
        self.questions = questions

    def text(self, i: int) -> str:
        if i % 4 < 2:
            return f"I {self.questions[i].narration}."
        return "I am opening the blue jar" if i % 4 == 2 else "I cannot tell."

    def __call__(self, body, headers):
        # the task is the direct-narration question (after the time instruction, if any)
        assert body["messages"][0]["content"].endswith(prompts.DIRECT_NARRATION)
        content = json.dumps({"answer": self.text(_index_of(body))})
        return 200, completion(content, body["model"]), {}


@pytest.fixture
def served(kitchen, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-test")
    questions = read_questions(kitchen[1])
    with FakeOpenAI(Narrator(questions)) as server:
        yield server, questions


def _frames_by_index(questions):
    index = {q.id: i for i, q in enumerate(questions)}

    def frames_of(question):
        return np.full((2, 16, 16, 3), 16 * index[question.id], dtype=np.uint8)

    return frames_of


def _mapper(annotations):
    folder = EK100Annotations(annotations)
    return OpenVocabMapper(folder.verbs(), folder.nouns())


def _evaluate(kitchen, server, questions, run, **options):
    annotations, path = kitchen
    adapter = OpenAIAdapter(
        "narrator", base_url=server.url, api_key_env=KEY_ENV, retry=RetryPolicy(tries=1)
    )
    return run_evaluation(path, adapter, run, EvalSettings(frames=2),
                          frame_source=_frames_by_index(questions), progress=False,
                          open_vocab=_mapper(annotations), **options)  # fmt: skip


def test_free_text_answers_are_mapped_and_scored(kitchen, served, tmp_path):
    server, questions = served
    annotations, _ = kitchen
    folder = EK100Annotations(annotations)
    open_id, blue_jar = folder.verbs().keys.index("open"), folder.nouns().keys.index("jar:blue")
    run = tmp_path / "run"
    metrics = _evaluate(kitchen, server, questions, run)
    assert len(server.requests) == len(questions) == 12
    # what the answers must score, from the truth alone
    verb = noun = action = 0
    for i, q in enumerate(questions):
        if i % 4 < 2:
            verb, noun, action = verb + 1, noun + 1, action + 1
        elif i % 4 == 2:
            verb += q.verb_class == open_id
            noun += q.noun_class == blue_jar
            action += q.verb_class == open_id and q.noun_class == blue_jar
    mapped = metrics["open_vocab"]
    assert mapped["n"] == 12 and mapped["unmapped"] == pytest.approx(3 / 12)
    assert mapped["verb"] == pytest.approx(verb / 12) and mapped["noun"] == pytest.approx(noun / 12)
    assert mapped["action"] == pytest.approx(action / 12)
    assert metrics["overall"]["accuracy"] == pytest.approx(action / 12)
    assert metrics["overall"]["unparsed"] == 3 and "recognition" not in metrics
    assert json.loads((run / "metrics.json").read_text()) == metrics
    records = answered(run)
    for i, q in enumerate(questions):
        record = records[q.id]
        assert record["answer"] == Narrator(questions).text(i).rstrip(".")
        if i % 4 < 2:
            assert (record["verb_class"], record["noun_class"]) == (q.verb_class, q.noun_class)
            assert record["correct"] and record["method"] in ("exact", "lemma")
            assert record["mapping"]["noun"]["method"] == "exact"
        assert record["actions"] == (0 if i % 4 == 3 else 1)  # how many actions it names
        if i % 4 == 3:
            assert record["action_id"] is None and record["method"] == "unmapped"
            assert record["confidence"] == 0.0 and not record["correct"]
    config = json.loads((run / "config.json").read_text())
    assert config["open_vocab"]["prompt"] == "direct_narration"
    assert config["open_vocab"]["mapper_version"] == "2"
    # read back from the files alone, as `verbnoun score` does
    loaded = load_run(run)
    assert loaded.metrics["open_vocab"] == mapped
    assert compare([loaded])["runs"][0]["open_vocab"]["unmapped"] == pytest.approx(0.25)
    # the report shows each mapped action (and how it was found), or says it was unmapped
    from verbnoun.evaluate.report import render_report

    page = render_report([loaded])
    first = records[questions[0].id]
    assert f"{first['action_id']} ({first['method']})" in page
    assert '"unmapped"' in page  # the unmapped answers' shown text (the page's string table)


def _untimed(metrics: dict) -> dict:
    """Metrics without the requests per second (which differ from run to run)."""
    return {k: v for k, v in metrics.items() if k != "throughput"}


def test_resume_after_a_kill_answers_nothing_twice(kitchen, served, tmp_path):
    server, questions = served
    run = tmp_path / "run"
    first = _untimed(_evaluate(kitchen, server, questions, run))
    lines = (run / "predictions.jsonl").read_text().splitlines()
    assert _untimed(_evaluate(kitchen, server, questions, run)) == first
    assert len(server.requests) == 12  # resuming asked nothing
    data = (run / "predictions.jsonl").read_bytes()  # a kill in the middle of the last line
    cut = data.rstrip(b"\n").rsplit(b"\n", 1)[0] + b"\n" + b'{"id": "P0'
    (run / "predictions.jsonl").write_bytes(cut)
    assert _untimed(_evaluate(kitchen, server, questions, run)) == first
    assert len(server.requests) == 13

    def without_latency(text_lines):
        return [{k: v for k, v in json.loads(x).items() if k != "latency"} for x in text_lines]

    after = (run / "predictions.jsonl").read_text().splitlines()
    assert without_latency(after) == without_latency(lines)
    # a multiple-choice run may not mix into it
    annotations, path = kitchen
    adapter = OpenAIAdapter("narrator", base_url=server.url, api_key_env=KEY_ENV)
    with pytest.raises(VerbnounError, match="open_vocab"):
        run_evaluation(path, adapter, run, EvalSettings(frames=2),
                       frame_source=_frames_by_index(questions), progress=False)  # fmt: skip
    with pytest.raises(VerbnounError, match="prior-actions"):
        run_evaluation(path, adapter, tmp_path / "prior",
                       EvalSettings(frames=2, prior_actions="ground_truth"),
                       frame_source=_frames_by_index(questions), progress=False,
                       open_vocab=_mapper(annotations))  # fmt: skip


@pytest.mark.slow
def test_cli_eval_open_vocab_and_score(tmp_path, monkeypatch, capsys):
    """End to end on rendered kitchen videos: every answer is "I grab the red bowl"."""
    from verbnoun.data.synth import render_kitchen

    render_kitchen(tmp_path / "kitchen", videos=2, seed=0, workers=1)
    annotations = tmp_path / "kitchen" / "annotations"
    full = tmp_path / "all.jsonl"
    build_benchmark(annotations, full, BuildSettings(split="train"))
    questions_path = tmp_path / "q.jsonl"
    questions = read_questions(full)[:6]
    write_questions(questions_path, questions)
    folder = EK100Annotations(annotations)
    take, red_bowl = folder.verbs().keys.index("take"), folder.nouns().keys.index("bowl:red")
    monkeypatch.setenv(KEY_ENV, "sk-test")

    def respond(body, headers):
        return 200, completion("I grab the red bowl", body["model"]), {}

    with FakeOpenAI(respond) as server:
        run = tmp_path / "run"
        args = ["eval", "--open-vocab", "--questions", str(questions_path), "--model", "openai",
                "--api-model", "narrator", "--base-url", server.url, "--api-key-env", KEY_ENV,
                "--no-structured", "--annotations", str(annotations),
                "--videos", str(tmp_path / "kitchen" / "videos"), "--frames", "2",
                "--out", str(run), "--no-progress"]  # fmt: skip
        assert main(args) == 0, capsys.readouterr().err
        printed = capsys.readouterr().out
        assert "top-1 verb" in printed and "unmapped 0.0%" in printed
        assert len(server.requests) == 6
        assert main(args) == 0 and len(server.requests) == 6  # resumed: nothing to ask
    metrics = json.loads((run / "metrics.json").read_text())["open_vocab"]
    assert metrics["verb"] == pytest.approx(sum(q.verb_class == take for q in questions) / 6)
    assert metrics["noun"] == pytest.approx(sum(q.noun_class == red_bowl for q in questions) / 6)
    capsys.readouterr()
    assert main(["score", str(run)]) == 0
    table = capsys.readouterr().out
    assert "open vocabulary" in table and "unmapped" in table


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--model", "random"], "needs a model that writes text"),
        (["--model", "llavaction", "--checkpoint", "x"], "needs --scoring generate"),
        (["--model", "openai", "--api-model", "m", "--two-stage"], "--two-stage"),
        (["--model", "openai", "--api-model", "m", "--annotations", "/nonexistent"], "not found"),
    ],
)
def test_cli_refuses_what_cannot_write_text(kitchen, tmp_path, monkeypatch, capsys, extra, message):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    _, questions = kitchen
    args = ["eval", "--open-vocab", "--questions", str(questions), "--out", str(tmp_path / "r"),
            *extra]  # fmt: skip
    if "--annotations" not in extra:
        args += ["--annotations", str(kitchen[0])]
    assert main(args) == 1
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_local_model_in_generation_mode(kitchen, tmp_path):
    """An untrained tiny LLaVAction writes text; every answer is mapped (mostly unmapped)."""
    import torch

    from verbnoun.evaluate.local_adapter import LlavactionAdapter
    from verbnoun.model.checkpoint import write_tiny_released_checkpoint
    from verbnoun.model.config import tiny_config
    from verbnoun.model.tokenization import train_tiny_tokenizer

    torch.set_num_threads(1)
    annotations, path = kitchen
    corpus = [prompts.DIRECT_NARRATION, prompts.TIME_INSTRUCTION, "take put red bowl jar"] * 3
    tokenizer = train_tiny_tokenizer(corpus, vocab_size=300)
    checkpoint = tmp_path / "checkpoint"
    write_tiny_released_checkpoint(
        checkpoint, tiny_config(vocab_size=len(tokenizer)), tokenizer=tokenizer
    )
    seen = []

    class Recording(LlavactionAdapter):
        def answer(self, requests):
            seen.extend(r.prompt for r in requests)
            return super().answer(requests)

    adapter = Recording(checkpoint, mode="generate", max_new_tokens=4)
    questions = read_questions(path)
    run = tmp_path / "run"
    metrics = run_evaluation(path, adapter, run, EvalSettings(frames=2), batch_size=4,
                             frame_source=_frames_by_index(questions), progress=False,
                             open_vocab=_mapper(annotations))  # fmt: skip
    assert len(seen) == 12 and all(prompts.DIRECT_NARRATION in p for p in seen)
    assert all("Here are the options" not in p for p in seen)
    records = answered(run)
    remapped = _mapper(annotations).map_many([records[q.id]["raw"] for q in questions])
    unmapped = sum(not m.mapped for m in remapped)
    assert (
        metrics["overall"]["unparsed"] == unmapped == round(metrics["open_vocab"]["unmapped"] * 12)
    )
    assert [records[q.id]["action_id"] for q in questions] == [m.action_id for m in remapped]
