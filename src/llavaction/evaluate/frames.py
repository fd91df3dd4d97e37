"""Frames for evaluation: a question -> its sampled frames, decoded per SPEC 2 (no jitter)."""

from __future__ import annotations

import threading
from pathlib import Path

from llavaction.bench.questions import Question


def make_frame_source(videos: str | Path, layout: str, frames: int, size: int | None):
    """A thread-safe callable ``question -> uint8 (N, H, W, 3)`` reading from a video layout.

    Each worker thread keeps its own reader (PyAV containers and probe caches are not shared).
    """
    from llavaction.data.layouts import make_layout
    from llavaction.data.video import VideoReader

    video_layout = make_layout(layout, videos)
    local = threading.local()

    def frames_of(question: Question):
        reader = getattr(local, "reader", None)
        if reader is None:
            reader = local.reader = VideoReader(video_layout, size=size)
        return reader.read(question.video_id, question.start, question.stop, frames).frames

    return frames_of
