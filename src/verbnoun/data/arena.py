"""A behaviour video generator with known truth: one animal in an open-field arena, seen from above.

``arena_bouts(duration, seed)`` draws a sequence of bouts (behaviour, start, stop in seconds) that
covers the whole video: each bout's length is drawn from its behaviour's range, the next behaviour
from the other behaviours at random (no behaviour follows itself). ``render_arena(path, bouts)``
draws them into an H.264 MP4 (``size`` px square, ``fps``) with
:func:`verbnoun.data.synth.write_video`; ``write_arena(folder, videos, duration, seed)`` writes
``videos/arena_K.mp4`` and ``truth.csv`` (``video,behaviour,start,stop``, seconds), the format
``verbnoun annotate adapt --labels`` and ``annotate score --truth`` read.

The behaviours, each a distinct posture and motion (what a person scores in an open field):

* ``walk``: the body long and narrow, moving forward at a steady speed, turning away from walls,
  the body swaying with the gait;
* ``rest``: curled and still, only breathing (the body's width pulses slowly);
* ``groom``: curled and in place, the head moving quickly from side to side;
* ``rear``: up on the hind legs: seen from above the body is short, round and lighter (closer to
  the camera), swaying slightly.

Posture changes blend over a few frames at each bout's start. Rendering is deterministic given
the seed; the floor carries a fixed texture and a little per-frame noise.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BEHAVIOURS = ("walk", "rest", "groom", "rear")
# bout length range (seconds) of each behaviour
BOUT_SECONDS = {"walk": (2.0, 6.0), "rest": (3.0, 9.0), "groom": (2.5, 7.0), "rear": (1.0, 3.0)}
# posture: body length and width (px at 128 px), head distance ahead of the body's centre
POSTURE = {"walk": (30.0, 12.0, 17.0), "rest": (23.0, 16.0, 12.0), "groom": (22.0, 15.0, 9.0),
           "rear": (15.0, 13.0, 6.0)}  # fmt: skip
BODY = np.array((92, 80, 72), np.float32)
RAISED = np.array((138, 124, 112), np.float32)  # rearing: closer to the light and the camera
HEAD = np.array((70, 60, 54), np.float32)
BLEND = 6  # frames over which a posture changes


@dataclass(frozen=True)
class Bout:
    """One behaviour from ``start`` to ``stop`` seconds."""

    behaviour: str
    start: float
    stop: float


def arena_bouts(duration: float, seed: int = 0) -> list[Bout]:
    """Bouts covering ``[0, duration)`` seconds (times rounded to 0.01 s), deterministic in
    ``seed``."""
    rng = random.Random(f"verbnoun-arena:{seed}")
    bouts: list[Bout] = []
    t, previous = 0.0, None
    while t < duration - 1e-9:
        behaviour = rng.choice([b for b in BEHAVIOURS if b != previous])
        low, high = BOUT_SECONDS[behaviour]
        stop = round(min(t + rng.uniform(low, high), duration), 2)
        if duration - stop < 1.0:  # no sliver at the end
            stop = duration
        bouts.append(Bout(behaviour, t, stop))
        t, previous = stop, behaviour
    return bouts


def _floor(size: int, rng: np.random.Generator) -> np.ndarray:
    y = np.arange(size, dtype=np.float32)[:, None, None] / size
    x = np.arange(size, dtype=np.float32)[None, :, None] / size
    floor = np.array((206, 204, 194), np.float32) + 5 * np.sin(x * 23 + y * 7)
    image = np.broadcast_to(floor, (size, size, 3)).copy()
    wall = max(2, size // 24)
    image[:wall], image[-wall:], image[:, :wall], image[:, -wall:] = 60, 60, 60, 60
    return image + rng.normal(0, 2.0, image.shape).astype(np.float32)


def _frames(bouts: Sequence[Bout], fps: float, size: int, seed: int) -> Iterator[np.ndarray]:
    from verbnoun.data.synth import _Canvas, _ellipse, _rect

    rng = np.random.default_rng([seed, 11])
    scale = size / 128.0
    floor = _floor(size, rng)
    canvas = _Canvas(size)
    margin = 24 * scale
    x, y = rng.uniform(0.3, 0.7) * size, rng.uniform(0.3, 0.7) * size
    heading = rng.uniform(-math.pi, math.pi)
    shape = np.array(POSTURE[bouts[0].behaviour]) * scale
    colour = BODY.copy()
    for bout in bouts:
        first, end = round(bout.start * fps), round(bout.stop * fps)
        target = np.array(POSTURE[bout.behaviour]) * scale
        start_shape, start_colour = shape.copy(), colour.copy()
        goal_colour = RAISED if bout.behaviour == "rear" else BODY
        for f in range(first, end):
            t = f / fps
            k = min(1.0, (f - first + 1) / BLEND)
            shape = start_shape + (target - start_shape) * k
            colour = start_colour + (goal_colour - start_colour) * k
            length, width, ahead = shape
            sway, head_side = 0.0, 0.0
            if bout.behaviour == "walk":
                heading += rng.normal(0.0, 0.05)
                cx, cy = size / 2 - x, size / 2 - y
                near = min(x, y, size - x, size - y) < margin
                if near:  # turn towards the centre
                    wanted = math.atan2(cy, cx)
                    heading += 0.2 * math.sin(wanted - heading)
                x += math.cos(heading) * 40 * scale / fps
                y += math.sin(heading) * 40 * scale / fps
                sway = 1.2 * scale * math.sin(2 * math.pi * 4.0 * t)
            elif bout.behaviour == "rest":
                width += 0.8 * scale * math.sin(2 * math.pi * 1.5 * t)
            elif bout.behaviour == "groom":
                head_side = 4.0 * scale * math.sin(2 * math.pi * 5.0 * t)
            else:  # rear
                sway = 1.5 * scale * math.sin(2 * math.pi * 1.2 * t)
            x = min(max(x, margin / 2), size - margin / 2)
            y = min(max(y, margin / 2), size - margin / 2)
            c, s = math.cos(heading), math.sin(heading)
            bx, by = x - s * sway, y + c * sway
            canvas.image[:] = floor
            tail = 9 * scale + length / 2
            canvas.paint(bx - c * tail, by - s * tail, 14 * scale, _rect(9 * scale, 0.9 * scale),
                         BODY * 0.9, heading)  # fmt: skip
            canvas.paint(bx, by, length, _ellipse(length / 2, width / 2), colour, heading)
            hx = bx + c * ahead - s * head_side
            hy = by + s * ahead + c * head_side
            canvas.paint(hx, hy, 8 * scale, _ellipse(5.5 * scale, 4.2 * scale), HEAD, heading)
            noise = rng.normal(0, 1.5, (size, size, 1)).astype(np.float32)
            yield np.clip(canvas.image + noise, 0, 255).astype(np.uint8)


def render_arena(
    path: str | Path, bouts: Sequence[Bout], *, fps: float = 30, size: int = 128, seed: int = 0
) -> Path:
    """Write the bouts as an MP4 (frames ``[round(start * fps), round(stop * fps))`` of each)."""
    from verbnoun.data.synth import write_video

    return write_video(path, _frames(bouts, fps, size, seed), fps, gop=int(fps))


def truth_rows(video: str, bouts: Sequence[Bout]) -> list[list]:
    """``video,behaviour,start,stop`` rows of a video's bouts."""
    return [[video, b.behaviour, f"{b.start:.2f}", f"{b.stop:.2f}"] for b in bouts]


def write_arena(
    folder: str | Path, videos: int = 2, duration: float = 300.0, seed: int = 0, *,
    fps: float = 30, size: int = 128,
) -> dict[str, list[Bout]]:  # fmt: skip
    """``folder/videos/arena_K.mp4`` (K = 1..videos) and ``folder/truth.csv``; returns the bouts
    by video id."""
    from verbnoun.fileio import atomic_write_bytes, csv_bytes

    folder = Path(folder)
    result, rows = {}, []
    for k in range(1, videos + 1):
        video = f"arena_{k}"
        bouts = arena_bouts(duration, seed * 1000 + k)
        render_arena(folder / "videos" / f"{video}.mp4", bouts, fps=fps, size=size,
                     seed=seed * 1000 + k)  # fmt: skip
        result[video] = bouts
        rows += truth_rows(video, bouts)
    atomic_write_bytes(folder / "truth.csv",
                       csv_bytes(["video", "behaviour", "start", "stop"], rows))  # fmt: skip
    return result
