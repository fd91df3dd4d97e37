"""Frames for evaluation: each question's sampled frames, decoded per SPEC 2 (no jitter).

:class:`VideoFrames` reads a video layout. Called on one question it decodes in the caller's
thread (the report uses this); :meth:`VideoFrames.batches` feeds the runner, decoding in
``workers`` DataLoader processes ahead of the model (frames come back through shared memory, and
Python-level decoding work is not serialised by one interpreter lock), or in the caller's thread
with ``workers=0``.

Frame controls (:func:`controlled`) test whether a model's answers come from seeing: with
``other-clip`` each question receives the frames of another question of the same file (a fixed
derangement that gives a question a clip of a different action wherever the file allows), with
``blank`` constant grey frames of the real frames' shape. The runner records the control in the
run's ``config.json``, so a control run never mixes with the plain one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from verbnoun.bench.questions import Question
from verbnoun.errors import VerbnounError, VideoError

FRAME_CONTROLS = ("none", "other-clip", "blank")
BLANK_LEVEL = 128  # the grey of blank frames (uint8)


class VideoFrames:
    """A thread-safe callable ``question -> uint8 (N, H, W, 3)`` over a video layout."""

    def __init__(self, videos: str | Path | None, layout, frames: int, size: int | None) -> None:
        """``layout``: a layout name (with ``videos``, its root) or a layout object."""
        from verbnoun.data.layouts import make_layout

        self.layout = make_layout(layout, videos) if isinstance(layout, str) else layout
        self.frames = frames
        self.size = size
        self._local = threading.local()

    def __call__(self, question: Question):
        from verbnoun.data.video import VideoReader

        reader = getattr(self._local, "reader", None)
        if reader is None:
            reader = self._local.reader = VideoReader(self.layout, size=self.size)
        return reader.read(question.video_id, question.start, question.stop, self.frames).frames

    def batches(
        self, questions: Sequence[Question], batch_size: int, workers: int
    ) -> Iterator[list]:
        """The frames of consecutive batches of ``questions`` (same order), decoded ahead."""
        if workers == 0:
            for start in range(0, len(questions), batch_size):
                yield [self(q) for q in questions[start : start + batch_size]]
            return
        from verbnoun.data.loader import ClipDataset, ClipItem, clip_loader

        items = [ClipItem(q.video_id, q.start, q.stop, q.id) for q in questions]
        dataset = ClipDataset(items, self.layout, self.frames, size=self.size, decoder_threads=1)
        loader = clip_loader(dataset, batch_size=batch_size, workers=workers, prefetch=2)
        for batch in loader:
            if batch["skipped"]:
                skip = batch["skipped"][0]
                raise VideoError(skip.video_id, f"question {skip.id}: {skip.reason}")
            yield [f.numpy() for f in batch["frames"]]


def make_frame_source(
    videos: str | Path | None, layout, frames: int, size: int | None
) -> VideoFrames:
    """The frame source of a video layout (see :class:`VideoFrames`)."""
    return VideoFrames(videos, layout, frames, size)


def frames_for(
    model: str,
    videos: Path | None,
    layout: str,
    frames: int,
    size: int | None,
    dataset: Path | None = None,
    annotations: Path | None = None,
) -> VideoFrames:
    """The frame source of a run: ``--videos`` with ``--layout``, or else the ``videos:`` section
    of the dataset description (``--dataset``, or ``--annotations FILE.yaml``)."""
    from verbnoun.data.dataset import GenericDataset, open_dataset

    if videos is not None:
        return make_frame_source(videos, layout, frames, size)
    described = None
    if dataset is not None or (annotations is not None and annotations.suffix in (".yaml", ".yml")):
        described = open_dataset(dataset, annotations)
    if isinstance(described, GenericDataset) and described.description.videos is not None:
        return make_frame_source(None, described.video_layout(), frames, size)
    raise VerbnounError(
        f"model {model!r} needs frames: give --videos DIR (or a --dataset whose description "
        "has a videos: section)"
    )


class CachedFrames:
    """A frame source that decodes each clip once (kept in memory, by video, start and stop):
    for several runs over the same segments, as the demo's."""

    def __init__(self, source) -> None:
        self.source = source
        self._frames: dict[tuple, object] = {}

    def __call__(self, question: Question):
        key = (question.video_id, question.start, question.stop)
        frames = self._frames.get(key)
        if frames is None:
            frames = self._frames[key] = self.source(question)
        return frames


def other_clip_donors(questions: Sequence[Question]) -> dict[str, Question]:
    """Question id -> the question whose clip it is shown instead of its own: a derangement
    that depends only on the question file. Questions are sorted by action (then by a hash of
    their id) and each takes the clip ``m`` places further on, ``m`` the largest number of
    questions of one action: a question then never gets its own clip, and gets a clip of a
    different action whenever no action holds more than half of the file."""
    import hashlib

    if len(questions) < 2:
        raise VerbnounError("frames from another clip need at least 2 questions in the file")
    order = sorted(
        questions,
        key=lambda q: (q.action_id, hashlib.sha256(q.id.encode("utf-8")).hexdigest(), q.id),
    )
    counts: dict[str, int] = {}
    for q in order:
        counts[q.action_id] = counts.get(q.action_id, 0) + 1
    shift = max(counts.values())
    if shift >= len(order):  # one action only: still never the question's own clip
        shift = 1
    return {q.id: order[(i + shift) % len(order)] for i, q in enumerate(order)}


class OtherClipFrames:
    """A frame source that shows each question the frames of its donor (see
    :func:`other_clip_donors`), read through ``source``."""

    control = "other-clip"

    def __init__(self, source, questions: Sequence[Question]) -> None:
        self.source = source
        self.donors = other_clip_donors(questions)

    def _donor(self, question: Question) -> Question:
        try:
            return self.donors[question.id]
        except KeyError:
            raise VerbnounError(f"question {question.id} is not in the question file") from None

    def __call__(self, question: Question):
        return self.source(self._donor(question))

    def batches(self, questions: Sequence[Question], batch_size: int, workers: int):
        donors = [self._donor(q) for q in questions]
        if hasattr(self.source, "batches"):
            yield from self.source.batches(donors, batch_size, workers)
            return
        for start in range(0, len(donors), batch_size):
            yield [self.source(q) for q in donors[start : start + batch_size]]


class BlankFrames:
    """A frame source of constant grey frames, of the shape ``source`` gives each question."""

    control = "blank"

    def __init__(self, source) -> None:
        self.source = source

    def __call__(self, question: Question):
        import numpy as np

        return np.full_like(self.source(question), BLANK_LEVEL)

    def batches(self, questions: Sequence[Question], batch_size: int, workers: int):
        import numpy as np

        if hasattr(self.source, "batches"):
            for frames in self.source.batches(questions, batch_size, workers):
                yield [np.full_like(f, BLANK_LEVEL) for f in frames]
            return
        for start in range(0, len(questions), batch_size):
            yield [self(q) for q in questions[start : start + batch_size]]


def controlled(source, questions: Sequence[Question], control: str):
    """``source`` under a frame control: ``none`` (itself), ``other-clip`` or ``blank``."""
    if control not in FRAME_CONTROLS:
        raise VerbnounError(
            f"unknown frames control {control!r}; choose one of {', '.join(FRAME_CONTROLS)}"
        )
    if control == "none" or source is None:
        return source
    if control == "other-clip":
        return OtherClipFrames(source, questions)
    return BlankFrames(source)
