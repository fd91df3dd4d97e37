"""``--api-protocol video``: the input of a served ``verbnoun export hf`` model (vLLM).

Against the local fake server: one user message holding the sampled frames as one
``data:video/jpeg;base64,`` JPEG sequence and our SPEC 3.1 user turn, plain-text answers parsed
as usual, the protocol recorded in the run config (the ``gpt4o`` request, the authors', is tested
in ``test_openai_adapter.py``). The
exported chat template, applied by transformers to the message as vLLM hands it over, gives our
prompt with ``<video>`` and the action token for ``<image>``.
"""

from __future__ import annotations

import base64
import io
import json
import re

import numpy as np
import pytest
from PIL import Image

from fake_openai import FakeOpenAI, completion
from verbnoun.bench import prompts
from verbnoun.bench.build import BuildSettings, build_benchmark
from verbnoun.bench.questions import read_questions, write_questions
from verbnoun.cli import main
from verbnoun.errors import VerbnounError
from verbnoun.evaluate.adapters import Request
from verbnoun.evaluate.endpoint import RetryPolicy
from verbnoun.evaluate.openai_adapter import (
    APIAnswerError,
    OpenAIAdapter,
)
from verbnoun.evaluate.records import answered
from verbnoun.evaluate.runner import EvalSettings, run_evaluation

KEY = "sk-test-VIDEO-0123456789"
KEY_ENV = "LLAVACTION_VIDEO_KEY"
FRAMES = 4


def answer_option_c(body, headers):
    """Answers ``C. <text of option C>`` in plain text (what a served LLaVAction says), reading
    the options wherever the protocol put them (system prompt or user turn)."""
    texts = [m["content"] for m in body["messages"] if isinstance(m["content"], str)]
    texts += [p["text"] for m in body["messages"] if isinstance(m["content"], list)
              for p in m["content"] if p["type"] == "text"]  # fmt: skip
    text = next(t for t in texts if "Here are the options" in t)
    option = re.search(r"C\. (.*?)(?:, D\. |$)", text).group(1)
    return 200, completion(f"C. {option}", body["model"]), {}


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    with FakeOpenAI(answer_option_c) as fake:
        yield fake


@pytest.fixture(scope="module")
def kitchen(tmp_path_factory):
    """Five questions about the synthetic kitchen's real (encoded) videos."""
    from verbnoun.data.synth import render_kitchen

    root = tmp_path_factory.mktemp("video-protocol")
    render_kitchen(root / "kitchen", videos=2, seed=0, workers=1)
    everything = root / "all.jsonl"
    build_benchmark(root / "kitchen" / "annotations", everything, BuildSettings(split="train"))
    questions = root / "q.jsonl"
    write_questions(questions, read_questions(everything)[:5])
    return root / "kitchen" / "videos", questions


def decode_video_url(url: str) -> np.ndarray:
    """The frames of a ``data:video/jpeg;base64,`` URL, split as vLLM's VideoMediaIO does."""
    assert url.startswith("data:video/jpeg;base64,")
    frames = []
    for part in url.partition(",")[2].split(","):
        image = Image.open(io.BytesIO(base64.b64decode(part, validate=True)))
        assert image.format == "JPEG" and image.mode == "RGB"
        frames.append(np.asarray(image))
    return np.stack(frames)


@pytest.mark.slow
def test_video_protocol_sends_our_turn_and_the_sampled_frames(kitchen, server, tmp_path, capsys):
    from verbnoun.evaluate.frames import make_frame_source

    videos, questions = kitchen
    run = tmp_path / "run"
    args = ["eval", "--questions", str(questions), "--model", "openai", "--api-model", "served",
            "--base-url", server.url, "--api-key-env", KEY_ENV, "--api-protocol", "video",
            "--videos", str(videos), "--frames", str(FRAMES), "--out", str(run), "--no-progress",
            "--concurrency", "1"]  # fmt: skip
    assert main(args) == 0, capsys.readouterr().err
    by_id = {q.id: q for q in read_questions(questions)}
    assert len(server.requests) == len(by_id)
    sampled = make_frame_source(videos, "chunks", FRAMES, None)
    for request in server.requests:
        assert request["headers"]["authorization"] == f"Bearer {KEY}"
        body = request["body"]
        assert body["temperature"] == 0 and "response_format" not in body
        system, user = body["messages"]
        assert system == {"role": "system", "content": "You are a helpful assistant."}
        assert user["role"] == "user" and [p["type"] for p in user["content"]] == [
            "video_url",
            "text",
        ]
        text = user["content"][1]["text"]
        question = next(q for q in by_id.values() if q.task() in text)
        # our SPEC 3.1 user turn (time instruction + task) without the leading "<image>\n"
        assert "<image>" + "\n" + text == question.user_turn(FRAMES)
        assert text.startswith(f"The provided video lasts for {question.duration:.3f} seconds")
        frames = decode_video_url(user["content"][0]["video_url"]["url"])
        expected = sampled(question)
        assert frames.shape == expected.shape and len(frames) == FRAMES
        # each frame is its own sampled frame (JPEG tolerance), in order, RGB
        error = np.abs(frames[:, None].astype(int) - expected[None].astype(int)).mean((2, 3, 4))
        assert (np.diag(error) < 2.5).all(), error
        assert (error.argmin(axis=1) == np.arange(FRAMES)).all(), error
    records = answered(run)
    assert len(records) == len(by_id)
    for qid, record in records.items():
        option = by_id[qid].options[2].text
        assert record["raw"] == f"C. {option}" and record["choice"] == 2
        assert record["correct"] == (by_id[qid].answer_index == 2)
    settings = json.loads((run / "config.json").read_text())["model_settings"]
    assert settings["api_protocol"] == "video" and settings["structured"] is False
    for path in run.rglob("*"):
        assert KEY not in path.read_text(), path


def _fake_frames(question):
    return np.zeros((FRAMES, 16, 16, 3), dtype=np.uint8)


def _adapter(server, **options) -> OpenAIAdapter:
    return OpenAIAdapter(
        "served", base_url=server.url, api_key_env=KEY_ENV, retry=RetryPolicy(tries=1), **options
    )


@pytest.mark.parametrize(("first", "then"), [("gpt4o", "video"), ("video", "gpt4o")])
def test_a_changed_protocol_refuses_to_mix_into_an_old_run(kitchen, server, tmp_path, first, then):
    _, questions = kitchen
    run = tmp_path / "run"
    settings = EvalSettings(frames=FRAMES)
    answer = {"frame_source": _fake_frames, "progress": False}
    if first == "gpt4o":  # the gpt4o server answers JSON; plain text parses the same way
        run_evaluation(questions, _adapter(server, structured=False), run, settings, **answer)
    else:
        run_evaluation(questions, _adapter(server, protocol=first), run, settings, **answer)
    before = len(server.requests)
    with pytest.raises(VerbnounError, match=r"other settings .*api_protocol"):
        run_evaluation(
            questions, _adapter(server, protocol=then, structured=False), run, settings, **answer
        )
    assert len(server.requests) == before  # refused before asking anything


def test_structured_on_request_and_bad_input(kitchen, server):
    _, questions = kitchen
    question = read_questions(questions)[0]
    request = Request(question, question.prompt(FRAMES), question.task(), _fake_frames(question))
    adapter = _adapter(server, protocol="video", structured=True)
    reply = adapter.answer([request])[0]
    assert server.requests[-1]["body"]["response_format"]["type"] == "json_schema"
    assert reply.raw.startswith("C. ")
    with pytest.raises(VerbnounError, match="unknown API protocol 'images'"):
        _adapter(server, protocol="images")
    from verbnoun.evaluate.registry import build_adapter, settings_for  # the CLI's, lva.eval's

    options = {"api_model": "served", "api_key_env": KEY_ENV, "api_protocol": "video"}
    built = build_adapter("openai", settings_for("openai", options))
    assert built.protocol == "video" and built.settings()["structured"] is False
    not_ours = Request(question, "<image>\nwhat is this?", question.task(), request.frames)
    with pytest.raises(APIAnswerError, match=f"question {question.id}: the prompt is not our"):
        adapter.messages(not_ours)
    no_frames = Request(question, request.prompt, question.task(), None)
    with pytest.raises(APIAnswerError, match=f"question {question.id}: no frames"):
        adapter.messages(no_frames)


def vllm_conversation(messages: list[dict], content_format: str) -> list[dict]:
    """The messages as vLLM (0.33, ``renderers/chat_utils/chat_message.py``) hands them to the
    chat template: ``openai`` format (detected for the exported template, which loops over the
    content parts): string content becomes one text part, a ``video_url`` part becomes
    ``{"type": "video"}``; ``string`` format: the placeholder, a newline, the text."""
    conversation = []
    for message in messages:
        content = message["content"]
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if content_format == "openai":
            kinds = {"video_url": "video", "image_url": "image", "text": "text"}
            rendered = [
                {"type": "text", "text": p["text"]}
                if p["type"] == "text"
                else {"type": kinds[p["type"]]}
                for p in parts
            ]
        else:
            placeholders = ["<video>" for p in parts if p["type"] == "video_url"]
            texts = [p["text"] for p in parts if p["type"] == "text"]
            rendered = "\n".join(placeholders + texts)
        conversation.append({"role": message["role"], "content": rendered})
    return conversation


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny checkpoint with one action token, exported with ``verbnoun export hf``."""
    from verbnoun.model.checkpoint import write_tiny_released_checkpoint
    from verbnoun.model.config import tiny_config
    from verbnoun.model.export_hf import export_hf
    from verbnoun.model.tokenization import train_tiny_tokenizer

    root = tmp_path_factory.mktemp("exported")
    corpus = [prompts.MQA, prompts.TIME_INSTRUCTION, "A. B. C. D. E. take put red bowl"] * 3
    tokenizer = train_tiny_tokenizer(corpus, vocab_size=400)
    config = tiny_config(
        vocab_size=len(tokenizer) + 8, newline_position="one_token", action_tokens=1
    )
    write_tiny_released_checkpoint(root / "ckpt", config, tokenizer=tokenizer)
    export_hf(root / "ckpt", root / "hf")
    return root / "hf"


@pytest.mark.parametrize("content_format", ["openai", "string"])
@pytest.mark.parametrize("time_instruction", [True, False])
def test_exported_template_renders_the_sent_message_as_our_prompt(
    kitchen, server, exported, content_format, time_instruction
):
    from transformers import AutoTokenizer

    _, questions = kitchen
    question = read_questions(questions)[1]
    prompt = question.prompt(FRAMES, time_instruction=time_instruction)
    request = Request(question, prompt, question.task(), _fake_frames(question))
    messages = _adapter(server, protocol="video").messages(request)
    tokenizer = AutoTokenizer.from_pretrained(str(exported), local_files_only=True)
    text = tokenizer.apply_chat_template(
        vllm_conversation(messages, content_format), tokenize=False, add_generation_prompt=True
    )
    assert text == prompt.replace("<image>", "<video><|action|>")
    assert text.count("<video>") == 1 and (("The provided video lasts" in text) == time_instruction)
