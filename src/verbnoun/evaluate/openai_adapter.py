"""The ``openai`` adapter: any OpenAI-compatible chat endpoint (GPT-4o, vLLM, sglang, ...).

Two protocols (``protocol``):

* ``gpt4o`` (SPEC 3, the default): the task text (with its options) as the system prompt, the N
  frames as separate base64 JPEG images in RGB order (the original sent BGR: not here),
  temperature 0, and structured output ``{"answer": "..."}`` when the server supports it
  (``structured=False`` otherwise).
* ``video``: the input a LLaVAction model was trained on, for a model exported with
  ``verbnoun export hf`` and served by vLLM. The system prompt ``You are a helpful
  assistant.`` and one user message: a ``video_url`` part holding the N frames as one
  ``data:video/jpeg;base64,<jpeg1>,<jpeg2>,...`` URL (vLLM's JPEG-sequence video, frames in
  order, RGB), then a text part with our SPEC 3.1 user turn without its leading ``<image>\\n``
  (time instruction + task). The exported chat template writes ``<video>`` and the action token
  where our prompt has ``<image>``, so the served model reads our prompt. Plain-text answers
  unless ``structured=True`` is asked for; temperature 0.

Retries with exponential backoff on 429, 5xx, timeouts and connection errors are the
``openai`` client's own (bounded by ``max_retries``); requests run ``concurrency`` at a time.

The API key is read from the environment variable named by ``api_key_env`` and is never written
to settings, predictions or logs: :meth:`OpenAIAdapter.settings` records only the variable's name.
"""

from __future__ import annotations

import base64
import io
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from verbnoun.bench import prompts
from verbnoun.errors import VerbnounError
from verbnoun.evaluate.adapters import Reply, Request

ANSWER_SCHEMA = {
    "name": "answer",
    "strict": True,
    "schema": {
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
        "additionalProperties": False,
    },
}
USER_TEXT = "These are the frames of the video, in order."
PROTOCOLS = ("gpt4o", "video")
VIDEO_URL_PREFIX = "data:video/jpeg;base64,"


class APIAnswerError(VerbnounError):
    """The endpoint failed or answered something that is not a chat completion."""


def encode_jpeg(frame, quality: int = 90) -> str:
    """One uint8 RGB ``(H, W, 3)`` frame -> base64 JPEG (RGB order kept)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(frame, mode="RGB").save(buffer, format="JPEG", quality=quality)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def video_url(frames, quality: int = 90) -> str:
    """uint8 RGB ``(N, H, W, 3)`` frames -> one ``data:video/jpeg;base64,`` URL holding the N
    base64 JPEGs in order, joined by commas (what vLLM's ``VideoMediaIO.load_base64`` reads as
    a sequence of frames for the ``video/jpeg`` media type)."""
    return VIDEO_URL_PREFIX + ",".join(encode_jpeg(frame, quality) for frame in frames)


def served_user_text(request: Request) -> str:
    """Our SPEC 3.1 user turn of ``request`` without the leading ``<image>\\n``: the text part
    of the ``video`` protocol. Read back from the request's chat prompt, which must be our
    qwen_1_5 prompt of exactly one ``<image>`` turn (else :class:`APIAnswerError`)."""
    head, tail = prompts.CHAT_QWEN_1_5.split("{user_turn}")
    head += prompts.IMAGE_TOKEN + "\n"
    prompt = request.prompt
    text = prompt[len(head) : len(prompt) - len(tail)]
    if (
        len(prompt) < len(head) + len(tail)
        or prompts.chat_prompt(f"{prompts.IMAGE_TOKEN}\n{text}") != prompt
        or prompts.IMAGE_TOKEN in text
    ):
        raise APIAnswerError(
            f"question {request.question.id}: the prompt is not our qwen_1_5 prompt with one "
            "<image> turn, so the video protocol cannot send it"
        )
    return text


class OpenAIAdapter:
    """Chat-completions client; one request per question, frames sent as ``protocol`` says
    (``gpt4o``: separate images; ``video``: one JPEG-sequence video)."""

    name = "openai"
    needs_frames = True

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 4,
        max_retries: int = 4,
        timeout: float = 120.0,
        structured: bool | None = None,
        max_tokens: int = 64,
        jpeg_quality: int = 90,
        protocol: str = "gpt4o",
    ) -> None:
        """``structured``: ask for JSON ``{"answer"}`` output (default: on for ``gpt4o``, off
        for ``video``). The key is read from the environment variable ``api_key_env``."""
        from openai import OpenAI

        if protocol not in PROTOCOLS:
            raise VerbnounError(
                f"unknown API protocol {protocol!r} (one of {', '.join(PROTOCOLS)})"
            )
        key = os.environ.get(api_key_env)
        if not key:
            raise VerbnounError(f"environment variable {api_key_env} is not set (the API key)")
        self.model = model
        self.base_url = base_url
        self.api_key_env = api_key_env
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.protocol = protocol
        self.structured = (protocol == "gpt4o") if structured is None else structured
        self.max_tokens = max_tokens
        self.jpeg_quality = jpeg_quality
        self.client = OpenAI(
            api_key=key, base_url=base_url, max_retries=max_retries, timeout=timeout
        )

    def settings(self) -> dict:
        """What can change a result (config.json). The protocol is named only when it is not
        ``gpt4o``, so runs made before the option existed still resume."""
        settings = {
            "model": self.model,
            "base_url": self.base_url,
            "api_key_env": self.api_key_env,
            "structured": self.structured,
            "max_tokens": self.max_tokens,
            "jpeg_quality": self.jpeg_quality,
            "temperature": 0,
        }
        if self.protocol != "gpt4o":
            settings["api_protocol"] = self.protocol
        return settings

    def messages(self, request: Request) -> list[dict]:
        """The chat messages of one question in this adapter's protocol."""
        if request.frames is None:
            raise APIAnswerError(f"question {request.question.id}: no frames to send")
        if self.protocol == "video":
            return self.video_messages(request)
        return self.gpt4o_messages(request)

    def video_messages(self, request: Request) -> list[dict]:
        """System prompt ``You are a helpful assistant.``; one user message: the frames as one
        JPEG-sequence video, then our user turn without ``<image>\\n``."""
        text = served_user_text(request)
        video = {
            "type": "video_url",
            "video_url": {"url": video_url(request.frames, self.jpeg_quality)},
        }
        return [
            {"role": "system", "content": prompts.SYSTEM},
            {"role": "user", "content": [video, {"type": "text", "text": text}]},
        ]

    def gpt4o_messages(self, request: Request) -> list[dict]:
        """System prompt = the task text; user turn = the frames as JPEG images (SPEC 3)."""
        images = [
            {
                "type": "image_url",
                "image_url": {"url": "data:image/jpeg;base64," + encode_jpeg(f, self.jpeg_quality)},
            }
            for f in request.frames
        ]
        return [
            {"role": "system", "content": request.task},
            {"role": "user", "content": [{"type": "text", "text": USER_TEXT}, *images]},
        ]

    def _one(self, request: Request) -> Reply:
        start = time.perf_counter()
        schema = ANSWER_SCHEMA if self.structured else None
        content = self.chat(
            self.messages(request), schema=schema, label=f"question {request.question.id}"
        )
        return Reply(content, extra={"api_latency": time.perf_counter() - start})

    def request_body(
        self, messages: list[dict], *, schema: dict | None = None, max_tokens: int | None = None
    ) -> dict:
        """The chat-completion request (never holds the key): what :meth:`chat` sends."""
        body = {
            "model": self.model,
            "messages": messages,
            "temperature": 0,
            "max_tokens": self.max_tokens if max_tokens is None else max_tokens,
        }
        if schema is not None:
            body["response_format"] = {"type": "json_schema", "json_schema": schema}
        return body

    def chat(
        self,
        messages: list[dict],
        *,
        schema: dict | None = None,
        max_tokens: int | None = None,
        label: str = "request",
    ) -> str:
        """One chat completion for any message list; the reply's text. ``schema``: structured
        output (a ``json_schema`` object); errors name ``label``."""
        import openai

        body = self.request_body(messages, schema=schema, max_tokens=max_tokens)
        try:
            response = self.client.chat.completions.create(**body)
        except openai.APIStatusError as error:
            raise APIAnswerError(
                f"{label}: HTTP {error.status_code} from the endpoint "
                f"after {self.max_retries} retries"
            ) from None
        except (openai.APITimeoutError, openai.APIConnectionError) as error:
            raise APIAnswerError(
                f"{label}: {type(error).__name__} after {self.max_retries} retries"
            ) from None
        except (openai.APIResponseValidationError, ValueError):
            raise APIAnswerError(f"{label}: malformed response body") from None
        try:
            content = response.choices[0].message.content
        except (AttributeError, IndexError, TypeError):
            raise APIAnswerError(f"{label}: response has no choices/message") from None
        if not isinstance(content, str):
            raise APIAnswerError(f"{label}: response has no text content")
        return content

    def answer(self, requests: Sequence[Request]) -> list[Reply]:
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(self._one, requests))
