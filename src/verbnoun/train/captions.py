"""GPT-4o captions (SPEC 5(e)) and caption QA (SPEC 5(f)) through any OpenAI-compatible server.

For each labelled segment: 4 frames and the caption prompt of SPEC (``prompts.CAPTION``) plus the
true action; the model answers JSON ``{"caption", "agrees_with_label"}``. A caption whose model
does not agree with the label is dropped (the disagreement filter) and counted. Each kept caption
then gets 3 free-form question/answer pairs from a text-only call.

Records (SPEC 5 format): ``captions.jsonl`` (``<image>\\n`` + ``prompts.CAPTION`` -> the caption,
``question_type`` ``caption``) and ``caption_qa.jsonl`` (``<image>\\n`` + question -> answer,
``caption_qa``), both added to ``mixture.yaml`` in the output folder.

Every request is cached on disk under ``cache/`` by the sha256 of its JSON body (model, messages
with the images, temperature, token limit, response format; never the key, never the server's
address), so a rerun makes no request for what was answered, and an interrupted run resumes where
it stopped. ``requests_per_minute`` spaces the requests that do go out. Transient endpoint
failures are retried as the adapter's retry policy says (:mod:`verbnoun.evaluate.endpoint`); a
segment whose tries are used up is counted ``failed`` and asked again by the next run;
``max_consecutive_failures`` failed requests in a row stop the run (the cache keeps every answer),
and so does a refusal (bad key, unknown model). The instructions given to the captioning model
below are this project's own wording (SPEC fixes only the caption prompt).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from verbnoun.bench import prompts
from verbnoun.data.annotations import EK100Annotations
from verbnoun.data.ek100 import Segment
from verbnoun.evaluate.endpoint import (
    MAX_CONSECUTIVE_FAILURES,
    EndpointDown,
    RequestFailed,
    add_usage,
)
from verbnoun.evaluate.openai_adapter import APIAnswerError, OpenAIAdapter, encode_jpeg
from verbnoun.fileio import atomic_write_bytes, write_json
from verbnoun.train.sft import add_to_mixture, record, write_records

CAPTION_FRAMES = 4
QA_PAIRS = 3
CAPTION_SCHEMA = {
    "name": "caption",
    "strict": True,
    "schema": {
        "type": "object",
        "properties": {"caption": {"type": "string"}, "agrees_with_label": {"type": "boolean"}},
        "required": ["caption", "agrees_with_label"],
        "additionalProperties": False,
    },
}
_PAIR = {
    "type": "object",
    "properties": {"question": {"type": "string"}, "answer": {"type": "string"}},
    "required": ["question", "answer"],
    "additionalProperties": False,
}
QA_SCHEMA = {
    "name": "qa_pairs",
    "strict": True,
    "schema": {
        "type": "object",
        "properties": {"pairs": {"type": "array", "items": _PAIR}},
        "required": ["pairs"],
        "additionalProperties": False,
    },
}


@dataclass(frozen=True)
class CaptionSettings:
    split: str = "train"
    frames: int = CAPTION_FRAMES
    qa_pairs: int = QA_PAIRS
    limit: int | None = None  # the first N labelled segments only
    requests_per_minute: float | None = None
    caption_max_tokens: int = 400
    qa_max_tokens: int = 800
    max_consecutive_failures: int = MAX_CONSECUTIVE_FAILURES  # 0: never stop early


class RateLimiter:
    """At most ``per_minute`` calls per minute, evenly spaced, shared by threads."""

    def __init__(self, per_minute: float | None, clock=time.monotonic, sleep=time.sleep) -> None:
        self.interval = 60.0 / per_minute if per_minute else 0.0
        self.clock, self.sleep = clock, sleep
        self.next = 0.0
        self.lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = self.clock()
            slot = max(now, self.next)
            self.next = slot + self.interval
        if slot > now:
            self.sleep(slot - now)


class RequestCache:
    """Chat replies on disk, one JSON file per request hash."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @staticmethod
    def key(body: dict) -> str:
        text = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> str | None:
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))["content"]
        except (json.JSONDecodeError, KeyError, TypeError):
            return None  # a damaged entry is asked again

    def put(self, key: str, model: str, content: str) -> None:
        data = {"key": key, "model": model, "content": content}
        atomic_write_bytes(self.path(key), json.dumps(data, ensure_ascii=False).encode("utf-8"))


class CachedChat:
    """The adapter's :meth:`~OpenAIAdapter.complete` behind the cache and the rate limiter;
    sums token usage, and stops everything (:class:`EndpointDown`) after
    ``max_consecutive_failures`` requests in a row failed."""

    def __init__(
        self,
        adapter: OpenAIAdapter,
        cache: RequestCache,
        limiter: RateLimiter,
        max_consecutive_failures: int = 0,
    ) -> None:
        self.adapter, self.cache, self.limiter = adapter, cache, limiter
        self.requests = self.hits = 0
        self.usage: dict | None = None
        self.max_consecutive_failures = max_consecutive_failures
        self.in_a_row = 0
        self.down: str | None = None
        self.lock = threading.Lock()

    def __call__(self, messages: list[dict], schema: dict, max_tokens: int, label: str) -> str:
        body = self.adapter.request_body(messages, schema=schema, max_tokens=max_tokens)
        key = self.cache.key(body)
        content = self.cache.get(key)
        if content is not None:
            with self.lock:
                self.hits += 1
            return content
        if self.down is not None:
            raise EndpointDown(self.down)
        self.limiter.wait()
        with self.lock:
            self.requests += 1
        try:
            done = self.adapter.complete(
                messages, schema=schema, max_tokens=max_tokens, label=label
            )
        except RequestFailed as error:
            with self.lock:
                self.usage = add_usage(self.usage, getattr(error, "usage", None))
                self.in_a_row += 1
                if 0 < self.max_consecutive_failures <= self.in_a_row and self.down is None:
                    self.down = (
                        f"stopped after {self.in_a_row} requests in a row failed (last: "
                        f"{error}): the endpoint looks down; every answer so far is cached: "
                        "run the same command again to go on"
                    )
            raise
        with self.lock:
            self.usage = add_usage(self.usage, done.usage)
            self.in_a_row = 0
        self.cache.put(key, self.adapter.model, done.content)
        return done.content


def caption_messages(segment: Segment, frames: np.ndarray, quality: int = 90) -> list[dict]:
    """System instruction; user turn = SPEC's caption prompt + the true action, and the frames."""
    text = prompts.CAPTION + prompts.CAPTION_LABEL_HINT.format(
        narration=segment.narration, verb=segment.verb, noun=segment.noun
    )
    images = [
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64," + encode_jpeg(f, quality)}}
        for f in frames
    ]  # fmt: skip
    return [
        {"role": "system", "content": prompts.CAPTION_SYSTEM},
        {"role": "user", "content": [{"type": "text", "text": text}, *images]},
    ]


def qa_messages(segment: Segment, caption: str, n: int = QA_PAIRS) -> list[dict]:
    """The text-only request for ``n`` question/answer pairs about a caption."""
    text = prompts.CAPTION_QA_INSTRUCTION.format(narration=segment.narration, caption=caption, n=n)
    return [
        {"role": "system", "content": prompts.CAPTION_QA_SYSTEM},
        {"role": "user", "content": text},
    ]


def parse_caption(content: str) -> tuple[str, bool]:
    """``(caption, agrees_with_label)``; ``ValueError`` when the reply is not that JSON."""
    data = json.loads(content)
    caption, agrees = data.get("caption"), data.get("agrees_with_label")
    if not isinstance(caption, str) or not caption.strip() or not isinstance(agrees, bool):
        raise ValueError("expected {caption: str, agrees_with_label: bool}")
    return caption.strip(), agrees


def parse_qa(content: str, n: int = QA_PAIRS) -> list[tuple[str, str]]:
    """The first ``n`` (question, answer) pairs; ``ValueError`` when fewer are usable."""
    pairs = json.loads(content).get("pairs")
    if not isinstance(pairs, list):
        raise ValueError("expected {pairs: [...]}")
    usable = [
        (p["question"].strip(), p["answer"].strip())
        for p in pairs
        if isinstance(p, dict)
        and isinstance(p.get("question"), str)
        and isinstance(p.get("answer"), str)
        and p["question"].strip()
        and p["answer"].strip()
    ]
    if len(usable) < n:
        raise ValueError(f"{len(usable)} usable question/answer pairs, expected {n}")
    return usable[:n]


@dataclass
class Outcome:
    """What happened to one segment: ``kept``, ``disagreed``, ``invalid``, ``failed``, ``skipped``."""

    status: str
    caption: str = ""
    pairs: tuple[tuple[str, str], ...] = ()
    reason: str = ""


def caption_one(
    segment: Segment, frames: np.ndarray, chat: CachedChat, settings: CaptionSettings
) -> Outcome:
    """Caption one segment, apply the disagreement filter, then ask for its QA pairs."""
    nid = segment.narration_id
    try:
        content = chat(caption_messages(segment, frames, chat.adapter.jpeg_quality),
                       CAPTION_SCHEMA, settings.caption_max_tokens, f"caption {nid}")  # fmt: skip
        try:
            caption, agrees = parse_caption(content)
        except (ValueError, AttributeError) as error:
            return Outcome("invalid", reason=f"caption reply: {error}")
        if not agrees:
            return Outcome("disagreed", caption)
        content = chat(qa_messages(segment, caption, settings.qa_pairs), QA_SCHEMA,
                       settings.qa_max_tokens, f"caption QA {nid}")  # fmt: skip
        try:
            pairs = parse_qa(content, settings.qa_pairs)
        except (ValueError, AttributeError) as error:
            return Outcome("invalid", caption, reason=f"QA reply: {error}")
    except APIAnswerError as error:
        return Outcome("failed", reason=str(error))
    return Outcome("kept", caption, tuple(pairs))


FrameSource = Callable[[Sequence[Segment]], Iterable[np.ndarray | str]]


def video_frames(layout, frames: int, workers: int = 0) -> FrameSource:
    """Frames of segments from videos (ClipDataset): an array per segment, or the error text."""

    def source(segments: Sequence[Segment]) -> Iterator[np.ndarray | str]:
        from verbnoun.data.loader import ClipDataset, ClipItem, clip_loader

        items = [ClipItem(s.video_id, s.start, s.stop, s.narration_id) for s in segments]
        dataset = ClipDataset(items, layout, frames, decoder_threads=1)
        for sample in clip_loader(dataset, workers=workers, batch_size=1):
            if sample["skipped"]:
                yield sample["skipped"][0].reason
            else:
                yield sample["frames"][0].numpy()

    return source


def build_captions(
    annotations_dir: str | Path,
    out_dir: str | Path,
    adapter: OpenAIAdapter,
    frame_source: FrameSource,
    settings: CaptionSettings,
) -> dict:
    """Caption every labelled segment of a split; write records, mixture entries and manifest."""
    from verbnoun import __version__

    annotations = EK100Annotations(annotations_dir)
    segments = annotations.segments(settings.split, require_labels=True)
    segments = segments[: settings.limit] if settings.limit is not None else segments
    vocabulary = annotations.action_vocabulary()
    out_dir = Path(out_dir)
    chat = CachedChat(
        adapter, RequestCache(out_dir / "cache"), RateLimiter(settings.requests_per_minute),
        settings.max_consecutive_failures,
    )  # fmt: skip
    outcomes: list[Outcome] = []
    window = 4 * max(1, adapter.concurrency)  # frames held in memory at most
    with ThreadPoolExecutor(max_workers=max(1, adapter.concurrency)) as pool:
        pending: deque[Future] = deque()
        for segment, frames in zip(segments, frame_source(segments), strict=True):
            if isinstance(frames, str):
                pending.append(pool.submit(Outcome, "skipped", reason=frames))
            else:
                pending.append(pool.submit(caption_one, segment, frames, chat, settings))
            while len(pending) > window:
                outcomes.append(pending.popleft().result())
            if chat.down is not None:
                raise EndpointDown(chat.down)
        outcomes += [future.result() for future in pending]
    if chat.down is not None:
        raise EndpointDown(chat.down)
    captions, qa = [], []
    for segment, outcome in zip(segments, outcomes, strict=True):
        if outcome.status != "kept":
            continue
        captions.append(record("caption", "caption", segment, vocabulary, prompts.CAPTION,
                               outcome.caption))  # fmt: skip
        for i, (question, answer) in enumerate(outcome.pairs):
            item = record("caption_qa", "caption_qa", segment, vocabulary, question, answer)
            qa.append({**item, "id": f"caption_qa:{segment.narration_id}:{i}"})
    outputs = {
        "captions": {"path": "captions.jsonl", "records": len(captions),
                     "sha256": write_records(out_dir / "captions.jsonl", captions)},
        "caption_qa": {"path": "caption_qa.jsonl", "records": len(qa),
                       "sha256": write_records(out_dir / "caption_qa.jsonl", qa)},
    }  # fmt: skip
    add_to_mixture(out_dir / "mixture.yaml", ["captions.jsonl", "caption_qa.jsonl"])
    counts = {status: 0 for status in ("kept", "disagreed", "invalid", "failed", "skipped")}
    for outcome in outcomes:
        counts[outcome.status] += 1
    manifest = {
        "kind": "llavaction.sft.captions",
        "llavaction_version": __version__,
        "annotations": str(annotations_dir),
        "settings": asdict(settings),
        "api": adapter.settings(),  # names the key's environment variable, never the key
        "transport": adapter.transport_settings(),
        "inputs": annotations.inputs(),
        "counts": {
            "segments": len(segments),
            **counts,
            "qa_pairs": len(qa),
            "requests": chat.requests,
            "cache_hits": chat.hits,
            # tokens of the requests this run sent (cached answers cost nothing again)
            "prompt_tokens": (chat.usage or {}).get("prompt_tokens", 0),
            "completion_tokens": (chat.usage or {}).get("completion_tokens", 0),
        },
        "not_kept": {
            s.narration_id: {"status": o.status, "reason": o.reason}
            for s, o in zip(segments, outcomes, strict=True)
            if o.status != "kept"
        },
        "outputs": outputs,
    }
    write_json(out_dir / "captions.manifest.json", manifest)
    return manifest
