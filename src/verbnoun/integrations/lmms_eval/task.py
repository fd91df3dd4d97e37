"""The functions an exported lmms-eval MQA task calls (named by its YAML through ``utils.py``).

A document of the task is one line of its ``docs.jsonl``:
``{"id", "llavaction_question", "parser"}`` where ``llavaction_question`` is the question's own
JSONL record (as ``mqa build`` wrote it) kept as a string, so that lmms-eval's table loader never
reinterprets its nested fields. The video settings (video
root, layout, frames, size, time instruction) come from the task's
``lmms_eval_specific_kwargs``, which lmms-eval passes to ``doc_to_visual`` and ``doc_to_text``.

* ``doc_to_visual``: the N frames SPEC 2 samples from the segment, decoded by our own decoder
  (:class:`verbnoun.data.video.VideoReader`), as RGB PIL images;
* ``doc_to_text``: the question's exact user turn (time instruction + task text), without the
  leading ``<image>\\n`` that each model's own chat template places;
* ``process_results``: the answer parsed by our parser (:mod:`verbnoun.interpret.parsing`);
* ``aggregate_accuracy`` / ``aggregate_unparsed_rate``: our metrics
  (:func:`verbnoun.evaluate.metrics.accuracy_summary`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from functools import lru_cache

from verbnoun.bench import prompts
from verbnoun.bench.questions import Question
from verbnoun.errors import VerbnounError

ACCURACY = "mqa_accuracy"
UNPARSED_RATE = "mqa_unparsed_rate"
SETTINGS = ("videos", "layout", "frames", "size", "time_instruction")

_readers = threading.local()


@lru_cache(maxsize=4096)
def _question(record: str) -> Question:
    return Question.from_dict(json.loads(record))


def question_of(doc: Mapping) -> Question:
    """The :class:`Question` a task document holds; a malformed document names its id."""
    try:
        return _question(doc["llavaction_question"])
    except (KeyError, TypeError, ValueError) as error:
        raise VerbnounError(
            f"lmms-eval document {doc.get('id', '?')!r}: not a llavaction question ({error})"
        ) from None


def _settings(kwargs: Mapping | None) -> Mapping:
    if kwargs is None:
        raise VerbnounError(
            "the task has no lmms_eval_specific_kwargs; export it again with "
            "`verbnoun export lmms-eval`"
        )
    missing = [key for key in SETTINGS if key not in kwargs]
    if missing:
        raise VerbnounError(f"lmms_eval_specific_kwargs lacks {', '.join(missing)}")
    return kwargs


def _reader(videos: str, layout: str, size: int | None):
    """One :class:`VideoReader` per thread and video setting (stream probes stay cached)."""
    from verbnoun.data.layouts import make_layout
    from verbnoun.data.video import VideoReader

    cache = getattr(_readers, "cache", None)
    if cache is None:
        cache = _readers.cache = {}
    key = (videos, layout, size)
    if key not in cache:
        cache[key] = VideoReader(make_layout(layout, videos), size=size)
    return cache[key]


def sampled_frames(doc: Mapping, lmms_eval_specific_kwargs: Mapping | None = None):
    """uint8 RGB frames ``(N, H, W, 3)`` of the document's segment, sampled per SPEC 2."""
    settings = _settings(lmms_eval_specific_kwargs)
    question = question_of(doc)
    reader = _reader(str(settings["videos"]), str(settings["layout"]), settings["size"])
    clip = reader.read(question.video_id, question.start, question.stop, int(settings["frames"]))
    return clip.frames


def doc_to_visual(doc: Mapping, lmms_eval_specific_kwargs: Mapping | None = None) -> list:
    """The segment's SPEC 2 frames as RGB PIL images (what lmms-eval models take as frames)."""
    from PIL import Image

    return [Image.fromarray(frame) for frame in sampled_frames(doc, lmms_eval_specific_kwargs)]


def doc_to_text(doc: Mapping, lmms_eval_specific_kwargs: Mapping | None = None) -> str:
    """The question's exact user turn without its ``<image>\\n`` prefix (SPEC 3.1)."""
    settings = _settings(lmms_eval_specific_kwargs)
    turn = question_of(doc).user_turn(
        int(settings["frames"]), time_instruction=bool(settings["time_instruction"])
    )
    return turn.removeprefix(prompts.IMAGE_TOKEN + "\n")


def doc_to_target(doc: Mapping) -> str:
    """The correct letter (empty when the truth is not among the options)."""
    return question_of(doc).answer_letter


def process_results(doc: Mapping, results: Sequence[str]) -> dict:
    """Parse the model's answer with our parser; one record per metric of the task."""
    from verbnoun.interpret.parsing import get_parser

    question = question_of(doc)
    raw = results[0] if results else ""
    parsed = get_parser(doc.get("parser", "strict"))(raw, question.option_texts)
    record = {
        "id": question.id,
        "raw": raw,
        "choice": parsed.index,
        "rule": parsed.rule,
        "correct": parsed.index is not None and parsed.index == question.answer_index,
    }
    return {ACCURACY: record, UNPARSED_RATE: record}


def _summary(items: Sequence[Mapping]) -> dict:
    from verbnoun.evaluate.metrics import accuracy_summary

    correct = [bool(item["correct"]) for item in items]
    unparsed = sum(item["choice"] is None for item in items)
    return accuracy_summary(correct, unparsed, resamples=1)


def aggregate_accuracy(items: Sequence[Mapping]) -> float:
    """Accuracy over the answered documents (an unparsed answer counts as wrong)."""
    return _summary(items)["accuracy"]


def aggregate_unparsed_rate(items: Sequence[Mapping]) -> float:
    """The fraction of answers our parser could not map to an option."""
    return _summary(items)["unparsed_rate"]
