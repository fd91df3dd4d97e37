"""The synthetic kitchen's pixels: procedural egocentric clips rendered from the kitchen's script.

``render_kitchen(out_dir)`` writes ``out_dir/annotations/`` (EK100-schema CSVs from
:mod:`verbnoun.data.kitchen`), ``out_dir/videos/`` in LLaVAction's chunk layout
(``{participant}/{video_id}.MP4/{0,15,...}.MP4``, H.264, 30 fps, 128x128, yuv420p), and
``out_dir/dataset.yaml``, the kitchen as a generic dataset description
(:mod:`verbnoun.data.dataset`; ``verbnoun mqa build --dataset out_dir/dataset.yaml``).

Each frame is a counter seen from above-front (a tiled wall, a counter surface with mild noise),
a skin-coloured hand with its forearm coming from the bottom right, and during a segment the
segment's object: each noun a shape (bowl, box, bottle, plate, jar) in a colour (red, orange,
blue; red and orange deliberately close). Each verb is a distinct motion of hand and object that
follows its ``motion`` text; take/put, open/close and push/pull mirror each other, shake and wipe
look alike. Between segments the hand rests and no object is shown.

With ``frame_numbers=True`` the top rows carry the frame index as a bar code (one big black or
white block per bit, robust to H.264), read back by :func:`read_frame_number`.

Drawing is vectorised numpy on small windows; rendering is deterministic given the seed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from fractions import Fraction
from pathlib import Path

import numpy as np

from verbnoun.data.kitchen import (
    FPS,
    FRAME_SIZE,
    NOUNS,
    VERBS,
    KitchenVideo,
    kitchen_script,
    write_kitchen_annotations,
)
from verbnoun.data.layouts import chunk_name

BAR_ROWS = 8  # height of the frame-number bar code

_COLOURS = {
    "red": (200, 38, 34),
    "orange": (222, 92, 30),  # close to red on purpose
    "blue": (40, 84, 200),
}
_SKIN = np.array((228, 178, 142), np.float32)
_DROP = np.array((150, 200, 255), np.float32)
# half width, top (above the centre), bottom (below the centre) of each shape, in pixels at 128 px
_EXTENT = {
    "bowl": (16, 2, 12),
    "box": (12, 12, 12),
    "bottle": (7, 17, 16),
    "plate": (19, 5, 5),
    "jar": (10, 14, 14),
}


# ----------------------------------------------------------------------------- frame numbers


def draw_frame_number(image: np.ndarray, index: int, bits: int = 16) -> np.ndarray:
    """Draw ``index`` as a bar code into the top ``BAR_ROWS`` rows of an RGB image (in place)."""
    if not 0 <= index < 1 << bits:
        raise ValueError(f"frame number {index} does not fit in {bits} bits")
    width = image.shape[1] // bits
    if width < 3:
        raise ValueError(f"{bits} bits need an image at least {3 * bits} px wide")
    for bit in range(bits):
        value = 255 if (index >> bit) & 1 else 0
        image[:BAR_ROWS, bit * width : (bit + 1) * width] = value
    return image


def read_frame_number(image: np.ndarray, bits: int = 16) -> int:
    """Read back the index drawn by :func:`draw_frame_number` (works on decoded, compressed
    frames of the same size: each block's centre is averaged and thresholded)."""
    width = image.shape[1] // bits
    rows = image[2 : BAR_ROWS - 2].astype(np.float32).mean(axis=(0, 2))
    value = 0
    for bit in range(bits):
        if rows[bit * width + 1 : (bit + 1) * width - 1].mean() > 127.5:
            value |= 1 << bit
    return value


# ----------------------------------------------------------------------------- encoding


def write_video(
    path: str | Path,
    frames: Iterable[np.ndarray],
    fps: float | Fraction = FPS,
    *,
    crf: int = 20,
    preset: str = "veryfast",
    bframes: int = 0,
    gop: int | None = None,
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
    threads: int = 1,
    faststart: bool = False,
) -> Path:
    """Encode RGB uint8 frames to an H.264 yuv420p MP4 with PyAV, atomically (temp + rename).

    ``pts`` and ``time_base`` give explicit presentation timestamps (variable frame rate);
    otherwise frame ``i`` has pts ``i`` at ``1 / fps``. ``faststart`` puts the index (moov) first.
    """
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    rate = Fraction(fps).limit_denominator(100000)
    options = {"crf": str(crf), "preset": preset, "bf": str(bframes)}
    if gop is not None:
        options["g"] = str(gop)
    movflags = {"movflags": "+faststart"} if faststart else {}
    container = av.open(str(tmp), "w", format="mp4", options=movflags)
    try:
        stream = container.add_stream("libx264", rate=rate, options=options)
        stream.pix_fmt = "yuv420p"
        stream.codec_context.thread_count = threads
        if time_base is not None:
            stream.codec_context.time_base = time_base
        opened = False
        for i, array in enumerate(frames):
            if not opened:
                stream.height, stream.width = array.shape[:2]
                opened = True
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")
            if pts is not None:
                frame.pts = pts[i]
                frame.time_base = time_base
            else:
                frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    finally:
        container.close()
    os.replace(tmp, path)
    return path


# ----------------------------------------------------------------------------- drawing


class _Canvas:
    """Paints masks defined on local coordinates into an RGB float32 image, on small windows."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.image = np.zeros((size, size, 3), np.float32)

    def paint(self, cx: float, cy: float, radius: float, mask_fn, colour, angle: float = 0.0):
        x0, x1 = max(int(cx - radius), 0), min(int(cx + radius) + 2, self.size)
        y0, y1 = max(int(cy - radius), 0), min(int(cy + radius) + 2, self.size)
        if x0 >= x1 or y0 >= y1:
            return
        dx = np.arange(x0, x1, dtype=np.float32)[None, :] - cx
        dy = np.arange(y0, y1, dtype=np.float32)[:, None] - cy
        if angle:
            c, s = math.cos(angle), math.sin(angle)
            dx, dy = c * dx + s * dy, -s * dx + c * dy
        mask = mask_fn(dx, dy)
        window = self.image[y0:y1, x0:x1]
        window[mask] = colour


def _shape_mask(shape: str, scale: float):
    half, top, bottom = (e * scale for e in _EXTENT[shape])

    def bowl(u, v):
        return (v >= -top) & ((u / half) ** 2 + (v / bottom) ** 2 <= 1.0)

    def box(u, v):
        return (np.abs(u) <= half) & (np.abs(v) <= top)

    def bottle(u, v):
        body = (np.abs(u) <= half) & (v >= -top * 0.35) & (v <= bottom)
        neck = (np.abs(u) <= half * 0.45) & (v >= -top) & (v < -top * 0.35)
        return body | neck

    def plate(u, v):
        return (u / half) ** 2 + (v / top) ** 2 <= 1.0

    def jar(u, v):
        return (u / half) ** 4 + (v / top) ** 4 <= 1.0

    return {"bowl": bowl, "box": box, "bottle": bottle, "plate": plate, "jar": jar}[shape]


def _ellipse(a: float, b: float):
    return lambda u, v: (u / a) ** 2 + (v / b) ** 2 <= 1.0


def _rect(a: float, b: float):
    return lambda u, v: (np.abs(u) <= a) & (np.abs(v) <= b)


def _ease(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)


def _background(size: int, rng: np.random.Generator, copies: int = 4) -> list[np.ndarray]:
    y = np.arange(size, dtype=np.float32)[:, None, None] / size
    x = np.arange(size, dtype=np.float32)[None, :, None] / size
    wall = np.array((214, 214, 204), np.float32) + rng.uniform(-12, 12, 3).astype(np.float32)
    counter = np.array((150, 118, 86), np.float32) + rng.uniform(-15, 15, 3).astype(np.float32)
    horizon = 0.42
    tiles = (((x * 8) % 1.0 < 0.05) | ((y * 10) % 1.0 < 0.05)).astype(np.float32)
    image = np.where(y < horizon, wall - 35 * tiles, counter * (0.85 + 0.3 * (y - horizon)))
    image = np.broadcast_to(image, (size, size, 3)).copy()
    grain = 6 * np.sin(x * 37 + y * 5)  # a wood-like grain on the counter
    image += np.where(y >= horizon, grain, 0)
    return [
        np.clip(image + rng.normal(0, 3.0, image.shape).astype(np.float32), 0, 255)
        for _ in range(copies)
    ]


def _pose(verb: str, p: float, t: float, ox: float, oy: float, extent, rest, scale: float):
    """Positions for one frame: object (x, y, angle), lid offset (or None), hand (x, y), drops."""
    half, top = extent
    angle, lid, drops = 0.0, None, []
    grip = (ox + 6 * scale, oy - top - 6 * scale)

    def approach(target, until: float, phase: float):
        k = _ease(phase / until)
        return (rest[0] + (target[0] - rest[0]) * k, rest[1] + (target[1] - rest[1]) * k)

    if verb in ("take", "put"):
        q = p if verb == "take" else 1.0 - p  # put is take played backwards
        rise = 34 * scale * _ease((q - 0.3) / 0.7)
        oy -= rise
        grip = (grip[0], grip[1] - rise)
        hand = approach(grip, 0.3, q) if q < 0.3 else grip
    elif verb in ("open", "close"):
        q = p if verb == "open" else 1.0 - p
        lid = 30 * scale * _ease((q - 0.25) / 0.75)
        target = (ox + lid + 4 * scale, oy - top - 7 * scale)
        hand = approach(target, 0.25, q) if q < 0.25 else target
    elif verb in ("push", "pull"):
        sign = 1.0 if verb == "push" else -1.0
        ox += sign * 30 * scale * _ease((p - 0.25) / 0.75)
        target = (ox - half - 8 * scale, oy)
        hand = approach(target, 0.25, p) if p < 0.25 else target
    elif verb == "shake":
        lift = 10 * scale * _ease(p / 0.15)
        ox += 9 * scale * math.sin(2 * math.pi * 4.0 * t) * _ease(p / 0.15)
        oy -= lift
        hand = (ox + 6 * scale, oy - top - 6 * scale)
    elif verb == "wipe":
        hand = (ox + 22 * scale * math.sin(2 * math.pi * 1.5 * t), oy - top - 8 * scale)
    elif verb == "turn":
        angle = math.pi * _ease(p)
        hand = (ox + 9 * scale * math.cos(angle), oy - top - 6 * scale)
    elif verb == "pour":
        oy -= 18 * scale * _ease(p / 0.3)
        angle = -math.radians(100) * _ease((p - 0.2) / 0.5)
        hand = (ox - 12 * scale, oy - 4 * scale)
        if angle < -math.radians(45):
            lip = (ox + (top + 2) * scale * math.sin(-angle), oy - top * math.cos(-angle))
            for k in range(3):
                fall = (t * 70 + k * 11) % 33
                drops.append((lip[0] + 2 * scale, lip[1] + fall * scale))
    elif verb == "tap":
        hand = (ox + 2 * scale, oy - top - (4 + 10 * abs(math.sin(2 * math.pi * 2.5 * t))) * scale)
    elif verb == "lift":
        rise = 46 * scale * math.sin(math.pi * p)
        oy -= rise
        hand = (grip[0], grip[1] - rise)
    else:
        raise ValueError(f"no motion for verb {verb!r}")
    return (ox, oy, angle), lid, hand, drops


def _render_frames(video: KitchenVideo, video_index: int, seed: int, numbers: bool):
    """Yield the frames (uint8 RGB) of one video."""
    size = FRAME_SIZE
    scale = size / 128.0
    rng = np.random.default_rng([seed, video_index, 7])
    backgrounds = _background(size, rng)
    rest = (size * 0.80 + rng.uniform(-4, 4), size * 0.86 + rng.uniform(-3, 3))
    placements = [
        (rng.uniform(0.36, 0.64) * size, rng.uniform(0.64, 0.70) * size) for _ in video.segments
    ]
    hand_mask = _ellipse(9 * scale, 11 * scale)
    arm_mask = _rect(7 * scale, 40 * scale)
    drop_mask = _ellipse(2 * scale, 2.5 * scale)
    total = round(video.duration * FPS)
    canvas = _Canvas(size)
    segment_frames = [(round(s.start * FPS), round(s.stop * FPS)) for s in video.segments]
    k = 0
    for f in range(total):
        canvas.image[:] = backgrounds[f % len(backgrounds)]
        while k < len(segment_frames) and f >= segment_frames[k][1]:
            k += 1
        t_idle = f / FPS
        hand = (rest[0] + 2 * math.sin(t_idle * 1.3), rest[1] + 1.5 * math.sin(t_idle * 0.7))
        if k < len(segment_frames) and f >= segment_frames[k][0]:
            first, last = segment_frames[k]
            segment = video.segments[k]
            noun = NOUNS[segment.noun_class]
            verb = VERBS[segment.verb_class].key
            p = (f - first) / max(last - first - 1, 1)
            ox, oy = placements[k]
            half, top = (e * scale for e in _EXTENT[noun.shape][:2])
            (ox, oy, angle), lid, hand, drops = _pose(
                verb, p, (f - first) / FPS, ox, oy, (half, top), rest, scale
            )
            colour = np.array(_COLOURS[noun.colour], np.float32)
            radius = 26 * scale
            canvas.paint(ox, oy, radius, _shape_mask(noun.shape, scale), colour, angle)
            if lid is not None:
                lid_half = half + 3 * scale
                canvas.paint(
                    ox + lid,
                    oy - top - 2 * scale,
                    lid_half + 2,
                    _rect(lid_half, 2.5 * scale),
                    colour * 0.55,
                )
            for x, y in drops:
                canvas.paint(x, y, 4 * scale, drop_mask, _DROP)
        hx, hy = hand
        arm_angle = math.atan2(size - hx, size * 1.2 - hy) if hy < size * 1.2 else 0.0
        arm_x, arm_y = hx + 30 * scale * math.sin(arm_angle), hy + 30 * scale * math.cos(arm_angle)
        canvas.paint(arm_x, arm_y, 44 * scale, arm_mask, _SKIN * 0.92, -arm_angle)
        canvas.paint(hx, hy, 12 * scale, hand_mask, _SKIN)
        frame = canvas.image.astype(np.uint8)
        if numbers:
            draw_frame_number(frame, f)
        yield frame


def _render_video(args: tuple[KitchenVideo, int, int, bool, float, str]) -> list[str]:
    video, index, seed, numbers, chunk_seconds, folder = args
    frames = _render_frames(video, index, seed, numbers)
    return write_chunks(folder, frames, video.duration, chunk_seconds)


def write_chunks(folder: str | Path, frames, duration: float, chunk_seconds: float) -> list[str]:
    """``duration`` seconds of ``frames`` (an iterator at 30 fps) written as the kitchen's chunk
    files in ``folder`` (``{start}.MP4``, ``chunk_seconds`` each); the paths written."""
    chunk_frames = round(chunk_seconds * FPS)
    written: list[str] = []
    total = round(duration * FPS)
    for chunk in range(0, total, chunk_frames):
        count = min(chunk_frames, total - chunk)
        path = Path(folder) / f"{chunk_name(chunk / FPS)}.MP4"
        write_video(path, (next(frames) for _ in range(count)), FPS, gop=FPS)
        written.append(str(path))
    return written


_KITCHEN_DESCRIPTION = """\
# The synthetic kitchen as a generic data set (verbnoun synth). Paths are relative to this
# file's folder. Build from it: verbnoun mqa build --dataset {name} --out q.jsonl
format_version: 1
name: synthetic-kitchen
labels: verb_noun
segments:
  columns:
    id: narration_id
    video: video_id
    participant: participant_id
    start: start_timestamp
    stop: stop_timestamp
    narration: narration
    verb: verb_class
    noun: noun_class
  time: timestamp
  fps: {fps}
  class_values: id
classes:
  verb: annotations/EPIC_100_verb_classes.csv
  noun: annotations/EPIC_100_noun_classes.csv
splits:
  train: annotations/EPIC_100_train.csv
  validation: annotations/EPIC_100_validation.csv
evaluation:
  unseen_participants:
    validation: annotations/EPIC_100_unseen_participant_ids_validation.csv
  tail:
    verb: annotations/EPIC_100_tail_verbs.csv
    noun: annotations/EPIC_100_tail_nouns.csv
videos:
  layout: chunks
  root: videos
  chunk_seconds: {chunk_seconds:g}
"""


def render_in_processes(render, jobs: list, workers: int | None = None) -> list:
    """``[render(job) for job in jobs]``, in a pool of ``workers`` processes (default: CPU count;
    one worker, or one job, runs here). ``render`` must be a module-level function; the results
    keep the jobs' order, so what is written does not depend on the number of workers."""
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(jobs) == 1:
        return [render(job) for job in jobs]
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        return list(pool.map(render, jobs))


def write_kitchen_description(out_dir: str | Path, chunk_seconds: float = 15) -> Path:
    """Write ``out_dir/dataset.yaml``: the kitchen (``annotations/`` and ``videos/`` under
    ``out_dir``) as a generic dataset description; returns its path."""
    from verbnoun.fileio import atomic_write_bytes

    path = Path(out_dir) / "dataset.yaml"
    text = _KITCHEN_DESCRIPTION.format(name=path.name, fps=FPS, chunk_seconds=chunk_seconds)
    atomic_write_bytes(path, text.encode("utf-8"))
    return path


def render_kitchen(
    out_dir: str | Path,
    videos: int = 40,
    seed: int = 0,
    frame_numbers: bool = False,
    chunk_seconds: float = 15,
    workers: int | None = None,
    validation_videos: int = 0,
) -> dict:
    """Write the synthetic kitchen: ``annotations/`` and ``videos/`` (chunk layout) under
    ``out_dir``. Returns a summary (paths, counts). ``workers``: processes (default: CPU count);
    ``validation_videos``: more videos, all in validation (:func:`kitchen_script`)."""
    if (chunk_seconds * FPS) % 1:
        raise ValueError(f"chunk length {chunk_seconds} s is not a whole number of frames")
    out_dir = Path(out_dir)
    script = kitchen_script(videos, seed, validation_videos)
    annotations = write_kitchen_annotations(out_dir / "annotations", script)
    description = write_kitchen_description(out_dir, chunk_seconds)
    root = out_dir / "videos"
    jobs = [
        (
            video,
            index,
            seed,
            frame_numbers,
            chunk_seconds,
            str(root / video.participant_id / f"{video.video_id}.MP4"),
        )
        for index, video in enumerate(script)
    ]
    files = render_in_processes(_render_video, jobs, workers)
    return {
        "annotations": str(annotations),
        "dataset": str(description),
        "videos": str(root),
        "layout": "chunks",
        "chunk_seconds": chunk_seconds,
        "num_videos": len(script),
        "num_files": sum(len(f) for f in files),
        "num_frames": sum(round(v.duration * FPS) for v in script),
        "num_segments": sum(len(v.segments) for v in script),
    }
