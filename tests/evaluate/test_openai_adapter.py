"""The openai adapter against a local server that answers like the OpenAI API, with faults."""

from __future__ import annotations

import base64
import io
import json
import time

import numpy as np
import pytest
from kitchen_questions import kitchen_questions
from PIL import Image
from pydantic import BaseModel

from fake_openai import FakeOpenAI, completion
from verbnoun.bench.questions import read_questions
from verbnoun.errors import VerbnounError
from verbnoun.evaluate.adapters import Request
from verbnoun.evaluate.endpoint import RetryPolicy
from verbnoun.evaluate.openai_adapter import APIAnswerError, OpenAIAdapter
from verbnoun.evaluate.records import answered
from verbnoun.evaluate.runner import EvalSettings, run_evaluation

KEY = "sk-test-SECRET-0123456789"
COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]


class Behaviours:
    """Answers like the API; ``plan`` holds the faults to inject, one per request, in order."""

    def __init__(self):
        self.plan: list[str] = []

    def __call__(self, body, headers):
        behaviour = self.plan.pop(0) if self.plan else "ok"
        if behaviour in ("429", "500"):
            return int(behaviour), {"error": {"message": "try later"}}, {"retry-after-ms": "5"}
        if behaviour == "slow":
            time.sleep(1.5)
        if behaviour == "malformed":
            return 200, b"this is not json", {}
        if behaviour == "nochoices":
            return 200, {"id": "x", "object": "chat.completion", "choices": []}, {}
        answer = "C" if "Here are the options" in body["messages"][0]["content"] else "?"
        return 200, completion(json.dumps({"answer": answer}), body["model"]), {}


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("LLAVACTION_TEST_KEY", KEY)
    behaviours = Behaviours()
    with FakeOpenAI(behaviours) as fake:
        fake.plan = behaviours.plan
        yield fake


@pytest.fixture(scope="module")
def questions(tmp_path_factory):
    return kitchen_questions(tmp_path_factory.mktemp("kitchen"), 8)[1]


def frames_of(question):
    return np.stack([np.full((32, 48, 3), c, dtype=np.uint8) for c in COLOURS])


def adapter(server, **kwargs):
    retry = RetryPolicy(tries=kwargs.pop("tries", 3), first_wait=0.01, request_timeout=1.0)
    options = {"concurrency": 2, "retry": retry, **kwargs}
    return OpenAIAdapter(
        "gpt-test", base_url=server.url, api_key_env="LLAVACTION_TEST_KEY", **options
    )


@pytest.mark.slow
def test_frames_arrive_as_rgb_jpeg_in_order_and_key_is_never_written(server, questions, tmp_path):
    run = tmp_path / "run"
    metrics = run_evaluation(questions, adapter(server), run, EvalSettings(frames=4),
                             frame_source=frames_of, progress=False)  # fmt: skip
    n = len(read_questions(questions))
    assert metrics["overall"]["n"] == n and len(server.requests) == n
    first = server.requests[0]
    assert first["headers"]["authorization"] == f"Bearer {KEY}"
    body = first["body"]
    assert body["temperature"] == 0 and body["response_format"]["type"] == "json_schema"
    system, user = body["messages"]
    assert system["role"] == "system" and "Here are the options of actions" in system["content"]
    images = [part for part in user["content"] if part["type"] == "image_url"]
    assert len(images) == 4
    for part, colour in zip(images, COLOURS, strict=True):
        url = part["image_url"]["url"]
        assert url.startswith("data:image/jpeg;base64,")
        image = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
        assert image.format == "JPEG" and image.mode == "RGB"
        pixel = np.asarray(image)[16, 24].astype(int)
        assert np.abs(pixel - colour).max() < 12  # RGB order kept (the original swapped R and B)
    assert all(r["raw"] == '{"answer": "C"}' and r["choice"] == 2 for r in answered(run).values())
    for path in run.rglob("*"):
        assert KEY not in path.read_text(), path
    assert "LLAVACTION_TEST_KEY" in (run / "config.json").read_text()


# The authors' structured-output model, written out: a pydantic model named MultiChoice_Response
# with one string field and this docstring, as their chatgpt_utils.py declares it.
class MultiChoice_Response(BaseModel):
    """
    The GT was known. The response is to add more information to the GT
    """

    answer: str


def test_gpt4o_request_is_the_authors(server, questions):
    """System = time instruction (trailing space) + task; user = empty text, then JPEGs of
    quality 95; temperature 0; no max_tokens; the pydantic model's schema byte for byte."""
    from openai.lib._parsing._completions import type_to_response_format_param

    question = read_questions(questions)[0]
    frames = frames_of(question)
    reply = adapter(server).answer([_request(questions)])[0]
    assert json.loads(reply.raw) == {"answer": "C"}
    body = server.requests[-1]["body"]
    system, user = body["messages"]
    duration = question.duration
    assert system == {
        "role": "system",
        "content": f"The provided video lasts for {duration:.3f} seconds, and 4 frames are "
        "uniformly sampled from it. " + question.task(),
    }
    assert user["role"] == "user" and user["content"][0] == {"type": "text", "text": ""}
    images = user["content"][1:]
    assert len(images) == 4 and all(set(part) == {"type", "image_url"} for part in images)
    for part, frame in zip(images, frames, strict=True):
        data = base64.b64decode(part["image_url"]["url"].removeprefix("data:image/jpeg;base64,"))
        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, format="JPEG", quality=95)
        assert data == buffer.getvalue()  # RGB, quality 95, decoded size
    assert body["temperature"] == 0 and "max_tokens" not in body
    assert set(body) == {"model", "messages", "temperature", "response_format"}
    expected = type_to_response_format_param(MultiChoice_Response)
    assert body["response_format"] == expected
    assert json.dumps(body["response_format"]) == json.dumps(expected)  # key order too
    settings = adapter(server).settings()
    assert settings["max_tokens"] is None and settings["jpeg_quality"] == 95
    assert settings["schema"] == "MultiChoice_Response" and settings["colour_order"] == "rgb"


def test_gpt4o_without_time_instruction_and_with_the_authors_bgr(server, questions):
    question = read_questions(questions)[0]
    request = Request(
        question, question.prompt(4, time_instruction=False), question.task(), frames_of(question)
    )
    messages = adapter(server, colour_order="bgr").messages(request)
    assert messages[0]["content"] == question.task()
    url = messages[1]["content"][1]["image_url"]["url"]
    image = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))
    assert np.abs(image[16, 24].astype(int) - COLOURS[0][::-1]).max() < 12  # red sent as blue
    assert adapter(server, colour_order="bgr").settings()["colour_order"] == "bgr"
    with pytest.raises(VerbnounError, match="colour order"):
        adapter(server, colour_order="bgr", protocol="video")
    bad = Request(question, "<|im_start|>user\nhello", question.task(), frames_of(question))
    with pytest.raises(APIAnswerError, match=question.id):
        adapter(server).messages(bad)


def test_original_parser_reads_the_structured_answer(monkeypatch, questions, tmp_path):
    """--parser original scores the answer field of GPT-4o's structured reply by the release's
    rule: the text after the last ``X. ``, cut at its period, equal to an option's text."""
    monkeypatch.setenv("LLAVACTION_TEST_KEY", KEY)
    items = read_questions(questions)
    replies = {}
    for number, question in enumerate(items):
        texts = question.option_texts
        pick = number % len(texts)
        replies[question.task()] = (f"{'ABCDE'[pick]}. {texts[pick]}.", pick)

    def respond(body, headers):
        answer, _ = replies[body["messages"][0]["content"].split("it. ", 1)[1]]
        return 200, completion(json.dumps({"answer": answer}), body["model"]), {}

    with FakeOpenAI(respond) as fake:
        model = OpenAIAdapter("gpt-test", base_url=fake.url, api_key_env="LLAVACTION_TEST_KEY")
        run = tmp_path / "run"
        run_evaluation(questions, model, run, EvalSettings(frames=4, parser="original"),
                       frame_source=frames_of, progress=False)  # fmt: skip
    records = answered(run)
    assert len(records) == len(items)
    for question in items:
        assert records[question.id]["choice"] == replies[question.task()][1]
    config = json.loads((run / "config.json").read_text())
    assert config["parser"] == "original" and config["parser_version"] == "2"


def _request(questions):
    question = read_questions(questions)[0]
    return Request(question, question.prompt(4), question.task(), frames_of(question))


@pytest.mark.slow
def test_retries_on_429_500_and_timeouts_then_succeed(server, questions):
    server.plan.extend(["429", "500", "slow"])
    start = time.perf_counter()
    reply = adapter(server, tries=4).answer([_request(questions)])[0]
    assert json.loads(reply.raw) == {"answer": "C"} and reply.failure is None
    assert reply.extra["attempts"] == 4
    assert len(server.requests) == 4 and time.perf_counter() - start < 20


def test_retries_are_bounded(server, questions):
    server.plan.extend(["500"] * 10)
    [(_, reply)] = adapter(server).answer_each([_request(questions)])
    assert reply.failure["kind"] == "server_error" and reply.failure["status"] == 500
    assert reply.failure["attempts"] == 3 and reply.raw == ""
    assert len(server.requests) == 3  # three tries in all
    # answer() (for callers that do not record failed questions) raises instead
    server.plan.extend(["500"] * 3)
    with pytest.raises(APIAnswerError, match=r"server_error \(HTTP 500\) after 3 tries"):
        adapter(server).answer([_request(questions)])


@pytest.mark.parametrize(
    ("behaviour", "kind"), [("malformed", "not_json"), ("nochoices", "no_choices")]
)
def test_broken_bodies_are_retried_then_failed_with_their_kind(server, questions, behaviour, kind):
    server.plan.extend([behaviour] * 3)
    request = _request(questions)
    [(_, reply)] = adapter(server).answer_each([request])
    assert reply.failure["kind"] == kind and reply.failure["attempts"] == 3
    server.plan.append(behaviour)
    with pytest.raises(APIAnswerError, match=kind) as info:
        adapter(server, tries=1).chat([{"role": "user", "content": "x"}], label="question Q")
    assert "question Q" in str(info.value)


def test_missing_key_is_an_error(monkeypatch):
    monkeypatch.delenv("LLAVACTION_TEST_KEY", raising=False)
    from verbnoun.errors import VerbnounError

    with pytest.raises(VerbnounError, match="LLAVACTION_TEST_KEY is not set"):
        OpenAIAdapter("gpt-test", api_key_env="LLAVACTION_TEST_KEY")
