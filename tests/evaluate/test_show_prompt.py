"""A run says exactly what it asked: ``prompts.jsonl`` and ``verbnoun show-prompt RUN ID`` equal
what each adapter sent (captured at an OpenAI-protocol server, and at a local model's input)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from kitchen_questions import kitchen_questions

from fake_openai import FakeOpenAI, completion
from verbnoun.bench.questions import read_questions, write_questions
from verbnoun.cli import main
from verbnoun.evaluate.adapters import Reply
from verbnoun.evaluate.endpoint import RetryPolicy
from verbnoun.evaluate.openai_adapter import OpenAIAdapter, frame_placeholder
from verbnoun.evaluate.prompt_log import show_prompt
from verbnoun.evaluate.prompt_record import recorded
from verbnoun.evaluate.runner import EvalSettings, run_evaluation

KEY = "sk-test-SECRET-show-prompt"
FRAMES = 3


@pytest.fixture(scope="module")
def questions(tmp_path_factory):
    return kitchen_questions(tmp_path_factory.mktemp("kitchen"), 10)[1]


@pytest.fixture(scope="module")
def with_priors(tmp_path_factory):
    """A larger kitchen: some questions have the two previous actions SPEC 5(b) asks for."""
    return kitchen_questions(tmp_path_factory.mktemp("kitchen24"), 24)[1]


@pytest.fixture(scope="module")
def few(questions, tmp_path_factory):
    """Six questions, for the models that run a network."""
    path = tmp_path_factory.mktemp("few") / "q.jsonl"
    write_questions(path, read_questions(questions)[:6])
    return path


def frames_of(question):
    rng = np.random.default_rng(len(question.id))
    return rng.integers(0, 256, (FRAMES, 32, 32, 3), dtype=np.uint8)


def _shown(run, question_id, capsys, *extra):
    assert main(["show-prompt", str(run), question_id, *extra]) == 0
    captured = capsys.readouterr()
    return captured.out, captured.err


def _with_placeholders(body: dict) -> dict:
    """A captured request body with each frame's base64 JPEG replaced as show-prompt shows it."""
    body = json.loads(json.dumps(body))
    for message in body["messages"]:
        if not isinstance(message["content"], list):
            continue
        images = [p for p in message["content"] if p["type"] == "image_url"]
        for i, part in enumerate(images):
            assert re.fullmatch(r"data:image/jpeg;base64,[A-Za-z0-9+/=]+", part["image_url"]["url"])
            part["image_url"]["url"] = "data:image/jpeg;base64," + frame_placeholder(i, len(images))
        for part in message["content"]:
            if part["type"] == "video_url":
                prefix, payload = part["video_url"]["url"].split(",", 1)
                count = len(payload.split(","))
                part["video_url"]["url"] = (
                    prefix + "," + ",".join(frame_placeholder(i, count) for i in range(count))
                )
    return body


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["gpt4o", "video"])
def test_show_prompt_is_the_request_an_endpoint_received(
    questions, tmp_path, capsys, monkeypatch, protocol
):
    monkeypatch.setenv("SHOW_PROMPT_KEY", KEY)
    with FakeOpenAI(lambda body, headers: (200, completion("B"), {})) as server:
        adapter = OpenAIAdapter(
            "gpt-test", base_url=server.url, api_key_env="SHOW_PROMPT_KEY", concurrency=1,
            retry=RetryPolicy(tries=2, first_wait=0.01, request_timeout=2.0), protocol=protocol,
        )  # fmt: skip
        run = tmp_path / "run"
        run_evaluation(questions, adapter, run, EvalSettings(frames=FRAMES),
                       frame_source=frames_of, progress=False)  # fmt: skip
        sent = [r["body"] for r in server.requests]
    asked = read_questions(questions)
    assert len(sent) == len(asked)  # one at a time, in the question file's order
    for question, body in list(zip(asked, sent, strict=True))[::7]:
        out, err = _shown(run, question.id, capsys, "--json")
        assert json.loads(out)["sent"]["body"] == _with_placeholders(body)
        out, err = _shown(run, question.id, capsys)  # as a person reads it: the body as JSON
        assert json.loads(out) == _with_placeholders(body)
        assert err.startswith(f"# question {question.id}, template mqa, model openai")
    (record,) = recorded(run)  # one template, recorded with the first question asked
    assert record["id"] == asked[0].id and record["template"] == "mqa"
    assert record["sent"]["body"] == _with_placeholders(sent[0])
    assert KEY not in (run / "prompts.jsonl").read_text()


class Recorder:
    """Answers 'A' and keeps each request's chat prompt."""

    name = "recorder"
    needs_frames = False

    def __init__(self):
        self.prompts = {}

    def settings(self):
        return {}

    def answer(self, requests):
        for request in requests:
            self.prompts[request.question.id] = request.prompt
        return [Reply("A") for _ in requests]


@pytest.mark.slow
def test_show_prompt_rebuilds_prompts_with_the_models_own_earlier_answers(
    with_priors, tmp_path, capsys
):
    recorder = Recorder()
    run = tmp_path / "seq"
    run_evaluation(with_priors, recorder, run, EvalSettings(prior_actions="model"), batch_size=16,
                   progress=False)  # fmt: skip
    with_prior = [q for q in read_questions(with_priors) if q.prior_actions]
    assert with_prior
    for question in with_prior[:8] + read_questions(with_priors)[::15]:
        shown = json.loads(_shown(run, question.id, capsys, "--json")[0])
        assert shown["sent"]["prompt"] == recorder.prompts[question.id]
        template = "mqa_prior_actions" if question.prior_actions else "mqa"
        assert shown["template"] == template
    out, err = _shown(run, with_prior[0].id, capsys)
    assert out == recorder.prompts[with_prior[0].id] + "\n" and "sends no prompt" in err
    templates = {r["template"]: r for r in recorded(run)}
    assert set(templates) == {"mqa", "mqa_prior_actions"}
    for record in templates.values():
        assert record["sent"]["prompt"] == recorder.prompts[record["id"]]
    # a resumed run records no template twice
    run_evaluation(
        with_priors, Recorder(), run, EvalSettings(prior_actions="model"), progress=False
    )
    assert len(recorded(run)) == 2
    assert main(["show-prompt", str(run), "no-such-question"]) == 1
    err = capsys.readouterr().err
    assert "no question 'no-such-question'" in err and len(err.strip().splitlines()) == 1


def test_show_prompt_gives_a_local_checkpoints_input_ids(few, tmp_path, capsys, monkeypatch):
    import torch

    from verbnoun.bench import prompts
    from verbnoun.evaluate.local_adapter import LlavactionAdapter
    from verbnoun.model import inference
    from verbnoun.model.checkpoint import write_tiny_released_checkpoint
    from verbnoun.model.config import IMAGE_TOKEN_INDEX, tiny_config
    from verbnoun.model.tokenization import train_tiny_tokenizer

    torch.set_num_threads(1)
    tokenizer = train_tiny_tokenizer([prompts.MQA, prompts.TIME_INSTRUCTION, "A. B. C. D. E."] * 3,
                                     vocab_size=400)  # fmt: skip
    checkpoint = tmp_path / "checkpoint"
    write_tiny_released_checkpoint(checkpoint, tiny_config(vocab_size=len(tokenizer)),
                                   tokenizer=tokenizer)  # fmt: skip
    given = {}  # question id -> the ids the model was given
    score_options = inference.score_options

    def spy(model, processor, ids, pixels, options, mode):
        for row, text in zip(ids, options, strict=True):
            given[tuple(text)] = row.tolist()
        return score_options(model, processor, ids, pixels, options, mode=mode)

    monkeypatch.setattr(inference, "score_options", spy)
    run = tmp_path / "run"
    run_evaluation(few, LlavactionAdapter(checkpoint, device="cpu"), run,
                   EvalSettings(frames=FRAMES), frame_source=frames_of, batch_size=2,
                   progress=False)  # fmt: skip
    asked = read_questions(few)
    for question in asked:
        shown = json.loads(_shown(run, question.id, capsys, "--json")[0])
        assert shown["sent"]["input_ids"] == given[tuple(question.option_texts)]
        assert shown["sent"]["input_ids"].count(IMAGE_TOKEN_INDEX) == 1
        assert shown["sent"]["prompt"] == question.prompt(FRAMES)
    (record,) = recorded(run)
    assert record["sent"]["input_ids"] == given[tuple(asked[0].option_texts)]
    out, _ = _shown(run, asked[1].id, capsys, "--ids")
    text, ids = out.split("\n--- input_ids (")
    assert text == asked[1].prompt(FRAMES)
    assert json.loads(ids.split("---\n", 1)[1]) == given[tuple(asked[1].option_texts)]


def test_show_prompt_gives_an_hf_models_chat_text(few, tmp_path, capsys):
    import hf_families
    import torch

    from verbnoun.evaluate.hf_adapter import HfAdapter, HfSettings

    torch.set_num_threads(1)
    adapter = HfAdapter(HfSettings(str(hf_families.qwen2_vl(tmp_path / "hf")), device="cpu"))
    given = {}  # chat text -> the input ids the processor made of it and the frames
    inputs = adapter._inputs

    def spy(texts, frames):
        made = inputs(texts, frames)
        for text, row in zip(texts, made["input_ids"], strict=True):
            given[text] = row.tolist()
        return made

    adapter._inputs = spy
    run = tmp_path / "run"
    run_evaluation(few, adapter, run, EvalSettings(frames=FRAMES), frame_source=frames_of,
                   batch_size=1, progress=False)  # fmt: skip
    tokenizer = adapter.tokenizer
    for question in read_questions(few):
        # in-process: a library's logger made earlier in this process may print to stdout
        sent = show_prompt(run, question.id)["sent"]
        assert sent["text"] in given and sent["frames_as"] == "images"
        assert sent["input_ids"] == tokenizer(sent["text"], add_special_tokens=False)["input_ids"]
        assert sent["text"].count("<|image_pad|>") == FRAMES  # one image part per frame
    (record,) = recorded(run)
    assert record["sent"]["input_ids"] == given[record["sent"]["text"]]  # expanded, as given
    assert len(record["sent"]["input_ids"]) > len(tokenizer(record["sent"]["text"])["input_ids"])
