"""The ``openai`` adapter: any OpenAI-compatible chat endpoint (GPT-4o, vLLM, sglang, ...).

Two protocols (``protocol``):

* ``gpt4o`` (SPEC 3, the default): the request the authors' code sent to GPT-4o for the paper's
  score (``GPTInferenceAnnotator.predict_images``), field for field: the system message is the
  time instruction ``The provided video lasts for {d:.3f} seconds, and {n} frames are uniformly
  sampled from it. `` (with its trailing space) followed by the task text with its options (only
  the task when the run's ``time_instruction`` is off); the user message is an empty text part
  followed by the N frames as separate base64 JPEG images (quality 95, OpenCV's default);
  temperature 0; no ``max_tokens``; structured output with the authors' pydantic model
  ``MultiChoice_Response`` as its JSON schema (:data:`MULTI_CHOICE_SCHEMA`, what
  ``client.beta.chat.completions.parse(response_format=MultiChoice_Response)`` sends;
  ``structured=False`` for servers without structured output). One deliberate difference: the
  frames are sent in RGB order (``colour_order="rgb"``); the authors handed RGB frames to
  ``cv2.imencode``, which reads BGR, so GPT-4o saw red and blue swapped (a bug;
  ``colour_order="bgr"`` reproduces it).
* ``video``: the input a LLaVAction model was trained on, for a model exported with
  ``verbnoun export hf`` and served by vLLM. The system prompt ``You are a helpful
  assistant.`` and one user message: a ``video_url`` part holding the N frames as one
  ``data:video/jpeg;base64,<jpeg1>,<jpeg2>,...`` URL (vLLM's JPEG-sequence video, frames in
  order, RGB), then a text part with our SPEC 3.1 user turn without its leading ``<image>\\n``
  (time instruction + task). The exported chat template writes ``<video>`` and the action token
  where our prompt has ``<image>``, so the served model reads our prompt. Plain-text answers
  unless ``structured=True`` is asked for; temperature 0.

Every transient failure (429, 5xx, timeouts, connections closed mid-body, HTTP 200 with an HTML
body, no choices, null content, a truncated body) is retried as ``retry`` (a
:class:`~verbnoun.evaluate.endpoint.RetryPolicy`) says, by :mod:`verbnoun.evaluate.endpoint`;
a question whose tries are used up comes back as a failed :class:`Reply` (``failure``), and a
refusal no retry can change (bad key, unknown model) stops the run. Requests run
``concurrency`` at a time.

The API key is read from the environment variable named by ``api_key_env`` and is never written
to settings, predictions or logs: :meth:`OpenAIAdapter.settings` records only the variable's name.
"""

from __future__ import annotations

import base64
import io
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from verbnoun.bench import prompts
from verbnoun.errors import VerbnounError
from verbnoun.evaluate.adapters import Abilities, AdapterSpec, DataSettings, Reply, Request
from verbnoun.evaluate.endpoint import (
    APIAnswerError,
    Cancelled,
    Completion,
    EndpointRefused,
    Failure,
    RequestFailed,
    RetryPolicy,
    TransportStats,
    send_once,
    with_retries,
)

# The authors' structured output: the JSON schema of their pydantic model MultiChoice_Response
# (one string field ``answer``; its docstring is the description) exactly as the openai client's
# ``beta.chat.completions.parse`` turns it into ``response_format.json_schema`` (strict).
MULTI_CHOICE_SCHEMA = {
    "schema": {
        "description": "The GT was known. The response is to add more information to the GT",
        "properties": {"answer": {"title": "Answer", "type": "string"}},
        "required": ["answer"],
        "title": "MultiChoice_Response",
        "type": "object",
        "additionalProperties": False,
    },
    "name": "MultiChoice_Response",
    "strict": True,
}
# Structured output of the ``video`` protocol (asked for with ``structured=True``).
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
USER_TEXT = ""  # the authors' user message: an empty text part, then the frames
PROTOCOLS = ("gpt4o", "video")
COLOUR_ORDERS = ("rgb", "bgr")
GPT4O_JPEG_QUALITY = 95  # cv2.imencode's default, what the authors' frames were encoded with
VIDEO_JPEG_QUALITY = 90
VIDEO_MAX_TOKENS = 64
VIDEO_URL_PREFIX = "data:video/jpeg;base64,"

__all__ = ["APIAnswerError", "ChatFormat", "OpenAIAdapter", "encode_jpeg", "video_url"]


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
    of the ``video`` protocol, and the ``gpt4o`` protocol's system text (see
    :func:`gpt4o_system_text`). Read back from the request's chat prompt, which must be our
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
            "<image> turn, so no API request can be made from it"
        )
    return text


def gpt4o_system_text(request: Request) -> str:
    """The authors' system text: the time instruction, a space, the task text (options
    included); only the task when the request's prompt has no time instruction. Read from the
    request's prompt, so that it states the same duration and frame count as our prompt."""
    text = served_user_text(request)
    head = text[: len(text) - len(request.task)]
    if not text.endswith(request.task) or (head and not head.startswith("The provided video")):
        raise APIAnswerError(
            f"question {request.question.id}: the prompt's user turn is not "
            "[time instruction +] the task text"
        )
    return f"{head} {request.task}" if head else request.task


FramePicture = Callable[[int, int, object], str]  # (index, count, frame) -> the frame's URL


def frame_placeholder(index: int, count: int) -> str:
    """What stands for frame ``index`` (0-based) of ``count`` in a shown request."""
    return f"<JPEG frame {index + 1} of {count}>"


@dataclass(frozen=True)
class ChatFormat:
    """How a question becomes a chat-completion request, with no client and no key: what
    :class:`OpenAIAdapter` sends, and what ``verbnoun show-prompt`` prints of a run (built from
    its recorded ``model_settings`` by :meth:`from_settings`)."""

    model: str
    protocol: str = "gpt4o"
    structured: bool = True
    max_tokens: int | None = None
    jpeg_quality: int = GPT4O_JPEG_QUALITY
    colour_order: str = "rgb"

    @classmethod
    def from_settings(cls, settings: dict) -> ChatFormat:
        """The format of a run from its config's ``model_settings`` (:meth:`OpenAIAdapter.settings`)."""
        protocol = settings.get("api_protocol", "gpt4o")
        return cls(
            model=settings["model"], protocol=protocol, structured=bool(settings["structured"]),
            max_tokens=settings.get("max_tokens"), jpeg_quality=settings["jpeg_quality"],
            colour_order=settings.get("colour_order", "rgb"),
        )  # fmt: skip

    def schema(self) -> dict | None:
        if not self.structured:
            return None
        return MULTI_CHOICE_SCHEMA if self.protocol == "gpt4o" else ANSWER_SCHEMA

    def body(
        self, messages: list[dict], *, schema: dict | None = None, max_tokens: int | None = None
    ) -> dict:
        """The chat-completion request of ``messages`` (never holds the key); no ``max_tokens``
        key when neither the call nor the format sets one."""
        body = {"model": self.model, "messages": messages, "temperature": 0}
        limit = self.max_tokens if max_tokens is None else max_tokens
        if limit is not None:
            body["max_tokens"] = limit
        if schema is not None:
            body["response_format"] = {"type": "json_schema", "json_schema": schema}
        return body

    def messages(self, request: Request, picture: FramePicture | None = None) -> list[dict]:
        """The chat messages of one question in this format's protocol; ``picture`` makes each
        frame's URL (default: the frame as base64 JPEG)."""
        if request.frames is None:
            raise APIAnswerError(f"question {request.question.id}: no frames to send")
        if self.protocol == "video":
            return self.video_messages(request, picture)
        return self.gpt4o_messages(request, picture)

    def video_messages(self, request: Request, picture: FramePicture | None = None) -> list[dict]:
        """System prompt ``You are a helpful assistant.``; one user message: the frames as one
        JPEG-sequence video, then our user turn without ``<image>\\n``."""
        text = served_user_text(request)
        if picture is None:
            url = video_url(request.frames, self.jpeg_quality)
        else:
            count = len(request.frames)
            url = VIDEO_URL_PREFIX + ",".join(
                picture(i, count, f) for i, f in enumerate(request.frames)
            )
        video = {"type": "video_url", "video_url": {"url": url}}
        return [
            {"role": "system", "content": prompts.SYSTEM},
            {"role": "user", "content": [video, {"type": "text", "text": text}]},
        ]

    def gpt4o_messages(self, request: Request, picture: FramePicture | None = None) -> list[dict]:
        """The authors' messages: system = :func:`gpt4o_system_text`; user = an empty text part,
        then the frames as JPEG images (RGB unless ``colour_order`` is ``bgr``)."""
        frames = request.frames
        if picture is None:
            if self.colour_order == "bgr":
                import numpy as np

                frames = np.ascontiguousarray(np.asarray(frames)[..., ::-1])
            urls = ["data:image/jpeg;base64," + encode_jpeg(f, self.jpeg_quality) for f in frames]
        else:
            urls = [
                "data:image/jpeg;base64," + picture(i, len(frames), f) for i, f in enumerate(frames)
            ]
        images = [{"type": "image_url", "image_url": {"url": url}} for url in urls]
        return [
            {"role": "system", "content": gpt4o_system_text(request)},
            {"role": "user", "content": [{"type": "text", "text": USER_TEXT}, *images]},
        ]

    def sent(self, request: Request) -> dict:
        """The request body of ``request`` with each frame's base64 JPEG replaced by
        :func:`frame_placeholder` (``request.frames`` may then be any sequence of the right
        length: nothing is encoded)."""
        messages = self.messages(request, lambda i, n, _: frame_placeholder(i, n))
        return {"body": self.body(messages, schema=self.schema())}


class OpenAIAdapter:
    """Chat-completions client; one request per question, frames sent as ``protocol`` says
    (``gpt4o``: separate images; ``video``: one JPEG-sequence video)."""

    name = "openai"
    needs_frames = True
    abilities = Abilities(streams=True, transport=True, stats=True, shows_prompt=True)

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 4,
        retry: RetryPolicy | None = None,
        structured: bool | None = None,
        max_tokens: int | None = None,
        jpeg_quality: int | None = None,
        protocol: str = "gpt4o",
        colour_order: str = "rgb",
    ) -> None:
        """``structured``: ask for JSON output (default: on for ``gpt4o``, off for ``video``).
        ``max_tokens`` and ``jpeg_quality``: ``None`` is the protocol's own (``gpt4o``: no token
        limit and quality 95, as the authors; ``video``: 64 and 90). ``colour_order``: ``rgb``,
        or ``bgr`` for the authors' swapped channels (``gpt4o`` only). The key is read from the
        environment variable ``api_key_env``."""
        from openai import OpenAI

        if protocol not in PROTOCOLS:
            raise VerbnounError(
                f"unknown API protocol {protocol!r} (one of {', '.join(PROTOCOLS)})"
            )
        if colour_order not in COLOUR_ORDERS or (colour_order == "bgr" and protocol != "gpt4o"):
            raise VerbnounError(
                f"colour order {colour_order!r}: rgb, or bgr with the gpt4o protocol only"
            )
        key = os.environ.get(api_key_env)
        if not key:
            raise VerbnounError(f"environment variable {api_key_env} is not set (the API key)")
        self.model = model
        self.base_url = base_url
        self.api_key_env = api_key_env
        self.concurrency = concurrency
        self.retry = (retry or RetryPolicy()).check()
        self.stats = TransportStats()
        self.protocol = protocol
        self.structured = (protocol == "gpt4o") if structured is None else structured
        gpt4o = protocol == "gpt4o"
        if max_tokens is None and not gpt4o:
            max_tokens = VIDEO_MAX_TOKENS
        self.max_tokens = max_tokens
        if jpeg_quality is None:
            jpeg_quality = GPT4O_JPEG_QUALITY if gpt4o else VIDEO_JPEG_QUALITY
        self.jpeg_quality = jpeg_quality
        self.colour_order = colour_order
        self.format = ChatFormat(
            model=model, protocol=protocol, structured=self.structured, max_tokens=max_tokens,
            jpeg_quality=jpeg_quality, colour_order=colour_order,
        )  # fmt: skip
        self._key = key
        self._refused: str | None = None
        self._cancel = threading.Event()
        self.client = OpenAI(  # its own retries off: endpoint.with_retries decides
            api_key=key, base_url=base_url, max_retries=0, timeout=self.retry.request_timeout
        )

    def settings(self) -> dict:
        """What can change a result (config.json). The protocol is named only when it is not
        ``gpt4o``; the ``gpt4o`` request's make-up is recorded field by field (``max_tokens``
        ``null``: none sent)."""
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
        else:
            settings.update(
                request="authors",  # GPTInferenceAnnotator.predict_images' request
                system_text="time instruction + ' ' + task",
                user_text=USER_TEXT,
                schema=MULTI_CHOICE_SCHEMA["name"] if self.structured else None,
                colour_order=self.colour_order,
            )
        return settings

    def messages(self, request: Request) -> list[dict]:
        """The chat messages of one question in this adapter's protocol."""
        return self.format.messages(request)

    def video_messages(self, request: Request) -> list[dict]:
        """See :meth:`ChatFormat.video_messages`."""
        return self.format.video_messages(request)

    def gpt4o_messages(self, request: Request) -> list[dict]:
        """See :meth:`ChatFormat.gpt4o_messages`."""
        return self.format.gpt4o_messages(request)

    def sent(self, request: Request) -> dict:
        """What :meth:`answer` sends for ``request``, each frame a placeholder (a run's
        ``prompts.jsonl``; ``verbnoun show-prompt`` prints the same from the run's settings)."""
        return self.format.sent(request)

    def _one(self, request: Request) -> Reply:
        """One question: its reply, or a failed reply (tries used up, or refused)."""
        start = time.perf_counter()
        schema = self.format.schema()
        label = f"question {request.question.id}"
        if self._refused is not None:  # one refusal stops the run: send nothing more
            return Reply("", failure=Failure("refused", None, 0, 0.0, self._refused).to_record())
        try:
            done = self.complete(self.messages(request), schema=schema, label=label)
        except RequestFailed as error:
            return Reply("", usage=getattr(error, "usage", None),
                         failure=error.failure.to_record())  # fmt: skip
        except EndpointRefused as error:
            self._refused = str(error)
            failure = Failure("refused", None, 1, 0.0, str(error))
            return Reply("", failure=failure.to_record())
        extra = {"api_latency": time.perf_counter() - start, "attempts": done.attempts}
        return Reply(done.content, usage=done.usage, extra=extra)

    def request_body(
        self, messages: list[dict], *, schema: dict | None = None, max_tokens: int | None = None
    ) -> dict:
        """The chat-completion request (never holds the key): what :meth:`chat` sends. No
        ``max_tokens`` key when neither the call nor the adapter sets one."""
        return self.format.body(messages, schema=schema, max_tokens=max_tokens)

    def _sleep(self, seconds: float) -> None:
        """Wait before a retry, unless the requests were given up (then :class:`Cancelled`)."""
        if self._cancel.wait(seconds):
            raise Cancelled("given up")

    def transport_settings(self) -> dict:
        """How requests are sent and retried (config.json; these never change a result)."""
        return {"concurrency": self.concurrency, **self.retry.settings()}

    def complete(
        self,
        messages: list[dict],
        *,
        schema: dict | None = None,
        max_tokens: int | None = None,
        label: str = "request",
    ) -> Completion:
        """One chat completion for any message list, retried as :attr:`retry` says: the text,
        token usage and tries. :class:`~verbnoun.evaluate.endpoint.RequestFailed` when the
        tries are used up, :class:`~verbnoun.evaluate.endpoint.EndpointRefused` when the
        endpoint refuses (both name ``label``). ``schema``: structured output."""
        body = self.request_body(messages, schema=schema, max_tokens=max_tokens)
        try:
            return with_retries(
                lambda: send_once(self.client, body, self._key), self.retry, label=label,
                stats=self.stats, sleep=self._sleep,
            )  # fmt: skip
        except EndpointRefused as error:
            raise EndpointRefused(f"{label}: {error}") from None

    def chat(
        self,
        messages: list[dict],
        *,
        schema: dict | None = None,
        max_tokens: int | None = None,
        label: str = "request",
    ) -> str:
        """:meth:`complete`'s text."""
        return self.complete(messages, schema=schema, max_tokens=max_tokens, label=label).content

    def answer_each(self, requests: Iterable[Request]) -> Iterator[tuple[Request, Reply]]:
        """Each request with its reply as soon as that is in, ``concurrency`` at a time; failed
        ones carry ``failure``. ``requests`` may be a lazy stream: at most twice
        ``concurrency`` are taken ahead (their frames stay bounded), and no request waits for
        a slower one. Closing it early gives up the requests still out."""
        self._cancel.clear()
        source = iter(requests)
        pending: dict[Future, Request] = {}
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:

            def fill() -> None:
                while len(pending) < 2 * self.concurrency:
                    request = next(source, None)
                    if request is None:
                        return
                    pending[pool.submit(self._one, request)] = request

            try:
                fill()
                while pending:
                    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in finished:
                        yield pending.pop(future), future.result()
                        fill()
            finally:
                self._cancel.set()  # requests waiting to be retried give up at once
                for future in pending:
                    future.cancel()

    def answer(self, requests: Sequence[Request]) -> list[Reply]:
        """One reply per request, in the requests' order. A request the endpoint could not
        answer raises (:class:`~verbnoun.evaluate.endpoint.RequestFailed`, or
        :class:`~verbnoun.evaluate.endpoint.EndpointRefused`): callers that record failed
        questions and go on (the eval runner) use :meth:`answer_each`."""
        position = {id(request): i for i, request in enumerate(requests)}
        ordered: list = [None] * len(requests)
        for request, reply in self.answer_each(requests):
            ordered[position[id(request)]] = reply
        for request, reply in zip(requests, ordered, strict=True):
            failure = reply.failure
            if failure is None:
                continue
            if failure["kind"] == "refused":
                raise EndpointRefused(failure["message"])
            raise RequestFailed(f"question {request.question.id}", Failure(**failure))
        return ordered


@dataclass(frozen=True)
class ApiSettings:
    """An OpenAI-compatible endpoint (``--model openai``): what ``verbnoun eval``, the notebook
    API and annotate fill from their ``--api-*`` options."""

    api_model: str | None = None  # the model's name on the server
    base_url: str | None = None  # None: OpenAI's
    api_key_env: str = "OPENAI_API_KEY"  # the variable holding the key (never the key)
    concurrency: int = 4
    structured: bool | None = None  # None: on for gpt4o, off for video
    api_protocol: str = "gpt4o"
    retry: RetryPolicy | None = None


def _build(settings: ApiSettings, data: DataSettings) -> OpenAIAdapter:
    if not settings.api_model:
        raise VerbnounError("--model openai needs --api-model NAME (e.g. gpt-4o)")
    return OpenAIAdapter(
        settings.api_model, base_url=settings.base_url, api_key_env=settings.api_key_env,
        concurrency=settings.concurrency, structured=settings.structured,
        protocol=settings.api_protocol, retry=settings.retry,
    )  # fmt: skip


SPEC = AdapterSpec(
    "openai", ApiSettings, _build, needs=frozenset({"frames"}), text_answers="always"
)
