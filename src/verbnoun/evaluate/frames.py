"""Frames for evaluation: each question's sampled frames, decoded per SPEC 2 (no jitter).

:class:`VideoFrames` reads a video layout. Called on one question it decodes in the caller's
thread (the report uses this); :meth:`VideoFrames.batches` feeds the runner, decoding in
``workers`` DataLoader processes ahead of the model (frames come back through shared memory, and
Python-level decoding work is not serialised by one interpreter lock), or in the caller's thread
with ``workers=0``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from verbnoun.bench.questions import Question
from verbnoun.errors import VideoError


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
