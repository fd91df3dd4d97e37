"""The bout table: one row per bout (a segment of one behaviour), the form behaviour tools read.

``bouts.csv`` (written by ``annotate`` beside ``segments.csv``; :func:`read_run_bouts` reads the
same rows back from any run folder's ``segments.csv``, so hand corrections there reach the
exports) has the columns of :data:`COLUMNS`:

* ``bout``: ``VIDEO_N``, the segment's ``narration_id`` in ``segments.csv``;
* ``video_id``, ``behaviour`` (its name), ``label`` (its class id in the run);
* ``start_s``, ``stop_s``: seconds from the video's start; ``start_frame``, ``stop_frame``: the
  bout covers frames ``start_frame`` up to, not including, ``stop_frame`` (``start_s =
  start_frame / fps``);
* ``duration_s``, ``fps``, and ``mean_confidence``: the mean probability the model gave the
  behaviour over the bout's windows (empty when no window's centre lies in the bout).

Rows are in video order, then time order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from verbnoun.errors import AnnotationError, VerbnounError

COLUMNS = ["bout", "video_id", "behaviour", "label", "start_s", "stop_s", "start_frame",
           "stop_frame", "duration_s", "fps", "mean_confidence"]  # fmt: skip


@dataclass(frozen=True)
class Bout:
    """One bout of one behaviour in one video (frames ``[start_frame, stop_frame)``)."""

    bout: str
    video_id: str
    behaviour: str
    label: str
    start_frame: int
    stop_frame: int
    fps: float
    confidence: float | None

    @property
    def start(self) -> float:
        return self.start_frame / self.fps

    @property
    def stop(self) -> float:
        return self.stop_frame / self.fps

    @property
    def duration(self) -> float:
        return (self.stop_frame - self.start_frame) / self.fps


@dataclass(frozen=True)
class VideoFacts:
    """A video's frame rate and length (``videos.csv``)."""

    video_id: str
    fps: float
    num_frames: int

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps


def bouts_of(videos, behaviours) -> list[Bout]:
    """The bouts of derived videos (:class:`verbnoun.annotate.labels.VideoLabels`)."""
    bouts = []
    for video in videos:
        for k, seg in enumerate(video.segments):
            bouts.append(Bout(
                f"{video.video_id}_{k}", video.video_id, behaviours.name(seg["label"]),
                seg["label"], seg["first"], seg["end"], video.fps, seg["confidence"],
            ))  # fmt: skip
    return bouts


def _seconds(value: float) -> str:
    return repr(round(value, 6))


def bout_rows(bouts: Sequence[Bout]) -> list[list]:
    return [[b.bout, b.video_id, b.behaviour, b.label, _seconds(b.start), _seconds(b.stop),
             b.start_frame, b.stop_frame, _seconds(b.duration), f"{b.fps:g}",
             "" if b.confidence is None else b.confidence] for b in bouts]  # fmt: skip


def write_bout_table(path: Path, bouts: Sequence[Bout]) -> None:
    """``bouts.csv``, written atomically."""
    from verbnoun.fileio import atomic_write_bytes, csv_bytes

    atomic_write_bytes(path, csv_bytes(COLUMNS, bout_rows(bouts)))


def read_video_facts(path: Path) -> dict[str, VideoFacts]:
    """``videos.csv`` of a run folder: frame rate and length of each video."""
    from verbnoun.fileio import read_csv

    table = read_csv(path, required=("video_id", "fps", "num_frames"), error=AnnotationError)
    facts = {}
    for line, row in table.rows:
        try:
            fps, frames = float(row["fps"]), int(row["num_frames"])
        except ValueError:
            raise AnnotationError(path, "bad fps or num_frames", line=line) from None
        if not fps > 0 or frames < 0:
            raise AnnotationError(path, "fps must be positive, num_frames >= 0", line=line)
        facts[row["video_id"]] = VideoFacts(row["video_id"], fps, frames)
    return facts


def read_run_bouts(run: Path) -> tuple[list[Bout], dict[str, VideoFacts]]:
    """The bouts of a run folder's ``segments.csv`` and its videos (``videos.csv``)."""
    from verbnoun.fileio import read_csv

    run = Path(run)
    path = run / "segments.csv"
    if not path.is_file():
        raise VerbnounError(f"{run}: no segments.csv (not a finished annotate run folder)")
    facts = read_video_facts(run / "videos.csv")
    table = read_csv(path, required=("narration_id", "video_id", "start_frame", "stop_frame",
                                     "action", "fps"), error=AnnotationError)  # fmt: skip
    bouts = []
    for line, row in table.rows:
        video = row["video_id"]
        if video not in facts:
            raise AnnotationError(path, f"video {video!r} not in videos.csv", line=line)
        try:
            first, end = int(row["start_frame"]), int(row["stop_frame"])
            fps = float(row["fps"])
            text = row.get("confidence", "").strip()
            confidence = float(text) if text else None
        except ValueError:
            raise AnnotationError(
                path, "start_frame/stop_frame/fps/confidence not numbers", line=line
            ) from None
        if first < 0 or not fps > 0:
            raise AnnotationError(path, "negative start_frame or fps not positive", line=line)
        if end <= first:
            raise AnnotationError(path, "stop_frame is not after start_frame", line=line)
        label = row.get("action_class", "").strip()
        if not label and row.get("verb_class", "").strip():
            label = f"{row['verb_class'].strip()}:{row.get('noun_class', '').strip()}"
        behaviour = row["action"].strip()
        if not behaviour:
            raise AnnotationError(path, "empty behaviour", line=line, field="action")
        bouts.append(Bout(row["narration_id"], video, behaviour, label or behaviour, first, end,
                          fps, confidence))  # fmt: skip
    order = {video: i for i, video in enumerate(facts)}
    bouts.sort(key=lambda b: (order[b.video_id], b.start_frame, b.stop_frame))
    return bouts, facts
