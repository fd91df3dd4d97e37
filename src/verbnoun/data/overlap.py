"""The overlapping kitchen: the synthetic kitchen with two things happening at once.

Contract. :func:`overlap_script` takes the kitchen's own script (:func:`~verbnoun.data.kitchen.
kitchen_script`, untouched: the default kitchen's bytes do not change) as the LEFT track and adds a
RIGHT track: for a share of the segments (``share``, default one half) a second action, another
verb-noun pair of the kitchen, performed during exactly the same time window. Such a segment has
two labels, both true; the others have one. The truth is known by construction and is what
:func:`write_overlap_annotations` writes:

* ``out_dir/annotations/overlap_train.csv`` and ``overlap_validation.csv``: ONE ROW PER LABEL
  (``segment_id, video_id, participant_id, start, stop, narration, verb_class, noun_class``; a
  two-label segment has two rows with the same id, start and stop),
* ``out_dir/annotations/verb_classes.csv`` and ``noun_classes.csv`` (the kitchen's classes),
* ``out_dir/dataset.yaml``: a description with ``labels: verb_noun`` and ``segments.multi_label:
  {rows: per_label}`` (see ``docs/guides/your-own-dataset.md``), so ``verbnoun mqa build
  --dataset out_dir/dataset.yaml`` makes multi-select questions.

:func:`render_overlap_kitchen` also writes ``out_dir/videos/`` (the kitchen's chunk layout,
30 fps, 128x128): each frame is the left track's frame and the right track's frame, each squeezed
to half width, side by side; where a segment has one label the right half shows the hand at rest.
Everything is deterministic in ``videos``, ``seed`` and ``share``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from verbnoun.data.kitchen import (
    FPS,
    NOUNS,
    VERBS,
    KitchenVideo,
    _narration,
    kitchen_script,
)
from verbnoun.fileio import atomic_write_bytes, csv_bytes

HEADER = ["segment_id", "video_id", "participant_id", "start", "stop", "narration",
          "verb_class", "noun_class"]  # fmt: skip


@dataclass(frozen=True)
class OverlapVideo:
    """One video: the left track (the kitchen's video) and the right track (the second actions,
    each in the time window of the left segment with the same ``narration_id``)."""

    left: KitchenVideo
    right: KitchenVideo

    def labels(self) -> dict[str, tuple[tuple[int, int], ...]]:
        """Each segment id's (verb, noun) labels: the left one first, then the right one."""
        second = {s.narration_id: (s.verb_class, s.noun_class) for s in self.right.segments}
        return {
            s.narration_id: ((s.verb_class, s.noun_class),)
            + ((second[s.narration_id],) if s.narration_id in second else ())
            for s in self.left.segments
        }


def overlap_script(videos: int = 12, seed: int = 0, share: float = 0.5) -> list[OverlapVideo]:
    """The kitchen's script with a second, simultaneous action in ``share`` of its segments.

    The second action differs from the first in its verb and in its noun, so both halves of the
    frame show something different.
    """
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"share must be in [0, 1], got {share}")
    rng = random.Random(f"llavaction-overlap:{seed}:{share}")
    result = []
    for video in kitchen_script(videos, seed):
        right = []
        for segment in video.segments:
            if rng.random() >= share:
                continue
            verb = rng.choice([v for v in range(len(VERBS)) if v != segment.verb_class])
            noun = rng.choice([n for n in range(len(NOUNS)) if n != segment.noun_class])
            right.append(
                replace(
                    segment,
                    narration=_narration(VERBS[verb], NOUNS[noun], rng),
                    verb_class=verb,
                    noun_class=noun,
                )
            )
        result.append(OverlapVideo(video, replace(video, segments=tuple(right))))
    return result


_DESCRIPTION = """\
# The overlapping kitchen (verbnoun.data.overlap): segments with one or two simultaneous
# labels, one row per label. Paths are relative to this file's folder.
format_version: 1
name: overlapping-kitchen
labels: verb_noun
segments:
  columns:
    id: segment_id
    video: video_id
    participant: participant_id
    start: start
    stop: stop
    verb: verb_class
    noun: noun_class
  time: seconds
  fps: {fps}
  class_values: id
  multi_label:
    rows: per_label
classes:
  verb: annotations/verb_classes.csv
  noun: annotations/noun_classes.csv
splits:
  train: annotations/overlap_train.csv
  validation: annotations/overlap_validation.csv
videos:
  layout: chunks
  root: videos
  chunk_seconds: {chunk_seconds:g}
"""


def write_overlap_annotations(
    out_dir: str | Path,
    videos: int = 12,
    seed: int = 0,
    share: float = 0.5,
    chunk_seconds: float = 15,
    script: list[OverlapVideo] | None = None,
) -> Path:
    """Write the annotations and ``dataset.yaml`` of the overlapping kitchen (no pixels);
    returns the description's path."""
    out = Path(out_dir)
    script = script if script is not None else overlap_script(videos, seed, share)
    class_header = ["id", "key", "instances", "category"]
    atomic_write_bytes(
        out / "annotations" / "verb_classes.csv",
        csv_bytes(
            class_header,
            [[i, v.key, str(list(v.instances)), v.category] for i, v in enumerate(VERBS)],
        ),
    )
    atomic_write_bytes(
        out / "annotations" / "noun_classes.csv",
        csv_bytes(
            class_header, [[i, n.key, str([n.key]), n.category] for i, n in enumerate(NOUNS)]
        ),
    )
    for split in ("train", "validation"):
        rows = []
        for video in script:
            if video.left.split != split:
                continue
            second = {s.narration_id: s for s in video.right.segments}
            for s in video.left.segments:
                for label in (s, second.get(s.narration_id)):
                    if label is not None:
                        rows.append([s.narration_id, s.video_id, s.participant_id, s.start,
                                     s.stop, label.narration, label.verb_class,
                                     label.noun_class])  # fmt: skip
        atomic_write_bytes(out / "annotations" / f"overlap_{split}.csv", csv_bytes(HEADER, rows))
    path = out / "dataset.yaml"
    text = _DESCRIPTION.format(fps=FPS, chunk_seconds=chunk_seconds)
    atomic_write_bytes(path, text.encode("utf-8"))
    return path


def _render_overlap_video(args: tuple[OverlapVideo, int, int, float, str]) -> list[str]:
    from verbnoun.data.synth import _render_frames, write_chunks

    video, index, seed, chunk_seconds, folder = args
    left = _render_frames(video.left, index, seed, False)
    right = _render_frames(video.right, index + 10_000, seed, False)  # its own placements
    frames = (
        np.concatenate([a[:, ::2], b[:, ::2]], axis=1) for a, b in zip(left, right, strict=True)
    )
    return write_chunks(folder, frames, video.left.duration, chunk_seconds)


def render_overlap_kitchen(
    out_dir: str | Path,
    videos: int = 12,
    seed: int = 0,
    share: float = 0.5,
    chunk_seconds: float = 15,
    workers: int | None = None,
) -> dict:
    """Write the overlapping kitchen: annotations, ``dataset.yaml`` and ``videos/`` (chunk
    layout) under ``out_dir``. Returns a summary (paths and counts)."""
    from verbnoun.data.synth import render_in_processes

    if (chunk_seconds * FPS) % 1:
        raise ValueError(f"chunk length {chunk_seconds} s is not a whole number of frames")
    out = Path(out_dir)
    script = overlap_script(videos, seed, share)
    description = write_overlap_annotations(out, chunk_seconds=chunk_seconds, script=script)
    root = out / "videos"
    jobs = [
        (video, index, seed, chunk_seconds,
         str(root / video.left.participant_id / f"{video.left.video_id}.MP4"))
        for index, video in enumerate(script)
    ]  # fmt: skip
    files = render_in_processes(_render_overlap_video, jobs, workers)
    segments = [s for v in script for s in v.left.segments]
    return {
        "dataset": str(description),
        "videos": str(root),
        "num_videos": len(script),
        "num_files": sum(len(f) for f in files),
        "num_segments": len(segments),
        "num_two_label_segments": sum(len(v.right.segments) for v in script),
    }
