"""Which frames of a segment to show the model (SPEC 2): pure arithmetic, no decoding.

For a segment ``[start, stop]`` in seconds, a video of ``num_frames`` frames at ``fps`` and ``n``
frames wanted:

1. ``stop`` is clamped to the last frame's time, ``(num_frames - 1) / fps``;
2. ``s = round(start * fps)``, ``e = round(stop * fps)``;
3. ``n + 1`` evenly spaced points from ``s`` to ``e`` (``numpy.linspace``), and the midpoint of each
   consecutive pair;
4. optionally (training) each midpoint moves by ``(u - 0.5) * (e - s - 1) / n`` with ``u`` uniform in
   ``[0, 1)`` from a seeded generator;
5. truncation to an integer, clamped to ``[0, num_frames - 1]``.

Example: start 1.0 s, stop 2.0 s, 30 fps, n = 4 gives s = 30, e = 60 and frames 33, 41, 48, 56.

Rounding is Python's (and numpy's) round-half-to-even, as in the original code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Name of the rule below, part of every frame-cache key: change it when the rule changes.
SAMPLING_RULE = "midpoint-v1"


@dataclass(frozen=True)
class Jitter:
    """Training-time jitter: a seed for ``numpy.random.default_rng``, or a generator to draw from."""

    seed: int | None = None
    rng: np.random.Generator | None = None

    def generator(self) -> np.random.Generator:
        return self.rng if self.rng is not None else np.random.default_rng(self.seed)


class SegmentError(ValueError):
    """A segment that cannot be sampled (zero length, or starting after the last frame)."""


def last_frame_time(num_frames: int, fps: float) -> float:
    """Time in seconds of the last frame of a constant-rate video."""
    return (num_frames - 1) / fps


def segment_bounds(start: float, stop: float, fps: float, num_frames: int) -> tuple[int, int]:
    """The frame bounds ``(s, e)`` of a segment after clamping ``stop`` to the last frame's time.

    Raises :class:`SegmentError` for a segment with ``stop <= start``, a negative start, or a start
    after the last frame.
    """
    if not fps > 0:
        raise SegmentError(f"fps must be positive, got {fps}")
    if num_frames < 1:
        raise SegmentError("the video has no frames")
    if not (np.isfinite(start) and np.isfinite(stop)):
        raise SegmentError(f"segment bounds must be finite, got {start}, {stop}")
    if stop <= start:
        raise SegmentError(f"zero-length or reversed segment (start {start:g} s, stop {stop:g} s)")
    if start < 0:
        raise SegmentError(f"negative start {start:g} s")
    end_time = last_frame_time(num_frames, fps)
    if round(start * fps) > num_frames - 1:
        raise SegmentError(
            f"segment starts at {start:g} s, after the last frame ({end_time:.3f} s, "
            f"{num_frames} frames at {fps:.4g} fps)"
        )
    stop = min(stop, end_time)
    return round(start * fps), round(stop * fps)


def frame_indices(
    start: float,
    stop: float,
    fps: float,
    num_frames: int,
    n: int,
    *,
    jitter: Jitter | None = None,
) -> np.ndarray:
    """The ``n`` frame indices (int64, non-decreasing unless jittered) to sample from a segment."""
    if n < 1:
        raise SegmentError(f"need at least one frame, got n={n}")
    s, e = segment_bounds(start, stop, fps, num_frames)
    points = np.linspace(s, e, n + 1)
    mids = (points[:-1] + points[1:]) / 2.0
    if jitter is not None:
        u = jitter.generator().random(n)
        mids = mids + (u - 0.5) * (e - s - 1) / n
    indices = mids.astype(np.int64)  # truncation toward zero, as int() does
    return np.clip(indices, 0, num_frames - 1)
