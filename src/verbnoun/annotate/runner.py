"""The annotation runner: videos in, ``OUT/windows.jsonl`` and the outputs a person uses out.

* ``config.json`` holds everything that changes what a window's answer is (the model and its
  settings, the behaviours, window and stride or the given segments). Running again with the same
  settings resumes; with others it refuses to mix into the old run. Smoothing is not in it:
  changing ``--smoothing``, ``--switch`` or ``--min-duration`` re-derives the outputs from the
  recorded answers without asking the model again.
* Every answered window is one JSON line appended (and flushed) to ``windows.jsonl`` (or
  ``windows.shard-K-of-N.jsonl``), with its scores over the labels the model scored, after its
  thumbnail was written. A line cut short by a kill is dropped on the next start; windows already
  answered, in any file of the folder, are never asked again.
* ``--shard K/N`` takes the K-th of N contiguous stretches of every video's windows, so each
  process decodes only its stretch. When every window of every video is answered (by any
  process), the run writes its outputs (:mod:`verbnoun.annotate.outputs`); otherwise it says how
  many remain, and running it again (any shard) finishes.
* Frames are decoded once per video by :class:`~verbnoun.annotate.windows.StreamingReader` in a
  worker thread ahead of the model; memory holds only the windows in flight.

The run folder's shared guarantees (config check, appending, torn lines, shards) are
:mod:`verbnoun.runs`'; this module says how windows are laid, asked and recorded.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from verbnoun import runs
from verbnoun.annotate.models import Answer, WindowModel
from verbnoun.annotate.smoothing import SmoothingSettings
from verbnoun.annotate.vocabulary import Behaviours
from verbnoun.annotate.windows import (
    StreamingReader,
    Window,
    prefetch,
    segment_windows,
    sliding_windows,
)
from verbnoun.data.layouts import VideoLayout
from verbnoun.data.video import VideoInfo, VideoReader
from verbnoun.errors import VerbnounError
from verbnoun.progress import Progress
from verbnoun.runs import Shard

THUMB = "thumb"


@dataclass(frozen=True)
class AnnotateSettings:
    """How windows are laid and asked (all of it in ``config.json``)."""

    window: float = 2.0  # seconds
    stride: float = 1.0  # seconds
    thumbnails: bool = True  # a small JPEG of each window's centre frame, for timeline.html
    thumb_height: int = 64
    batch_size: int = 8
    prefetch: int = 4  # batches decoded ahead of the model

    def check(self) -> None:
        if not self.window > 0 or not self.stride > 0:
            raise VerbnounError("--window and --stride must be positive")
        if self.stride > self.window:
            raise VerbnounError(
                f"--stride {self.stride:g} s is longer than --window {self.window:g} s: "
                "frames between windows would never be seen"
            )
        if self.batch_size < 1:
            raise VerbnounError("--batch-size must be at least 1")


@dataclass(frozen=True)
class VideoSource:
    """A video to annotate: its id, its layout, and optionally the segments to label."""

    video_id: str
    layout: VideoLayout
    spans: tuple[tuple[float, float], ...] | None = None


@dataclass
class PlannedVideo:
    source: VideoSource
    info: VideoInfo
    windows: list[Window]
    size: tuple[int, int]  # native (width, height)


def plan(videos: Sequence[VideoSource], settings: AnnotateSettings) -> list[PlannedVideo]:
    """Probe every video and lay its windows (errors name the video)."""
    if not videos:
        raise VerbnounError("no videos to annotate")
    planned = []
    seen: set[str] = set()
    for source in videos:
        if source.video_id in seen:
            raise VerbnounError(f"video id {source.video_id!r} given twice")
        seen.add(source.video_id)
        reader = VideoReader(source.layout)
        info = reader.info(source.video_id)
        first = reader.probe(info.pieces[0].path)
        if source.spans is not None:
            windows = segment_windows(source.video_id, source.spans, info.num_frames, info.fps)
        else:
            windows = sliding_windows(
                source.video_id, info.num_frames, info.fps, settings.window, settings.stride
            )
        planned.append(PlannedVideo(source, info, windows, (first.width, first.height)))
    return planned


def run_config(
    model: WindowModel,
    behaviours: Behaviours,
    settings: AnnotateSettings,
    videos: Sequence[PlannedVideo],
) -> dict:
    segments = any(v.source.spans is not None for v in videos)
    return {
        "kind": "verbnoun.annotate",
        "model": model.name,
        "model_settings": model.settings(),
        "behaviours": behaviours.settings(),
        "window": None if segments else settings.window,
        "stride": None if segments else settings.stride,
        "segments": {v.source.video_id: v.source.spans for v in videos} if segments else None,
        "thumbnails": settings.thumbnails,
        "thumb_height": settings.thumb_height,
    }


def window_files(out: Path) -> list[Path]:
    return runs.shard_files(out, "windows")


def iter_records(out: Path) -> Iterator[dict]:
    """Every complete window record of a run folder, file by file, line by line (a last line
    cut short by a kill is skipped); any other bad line is an error naming it."""
    return runs.merged(out, "windows", "malformed window record")


def answered_ids(out: Path) -> set[str]:
    """The ids of every answered window of a run folder, over all shard files."""
    return {record["id"] for record in iter_records(out)}


def _record(window: Window, answer: Answer) -> dict:
    record = {
        "id": window.id,
        "video_id": window.video_id,
        "index": window.index,
        "first": window.first,
        "end": window.end,
        "label": answer.label,
        "scores": answer.scores,
    }
    if answer.raw is not None:
        record["raw"] = answer.raw
    if answer.extra:
        record["extra"] = answer.extra
    return record


def thumb_path(out: Path, window: Window) -> Path:
    return out / "thumbs" / window.video_id / f"{window.index:06d}.jpg"


def _write_thumbnail(out: Path, window: Window, frames) -> None:
    from verbnoun.data.images import jpeg_bytes
    from verbnoun.fileio import atomic_write_bytes

    atomic_write_bytes(thumb_path(out, window), jpeg_bytes(frames[THUMB][0]))


def _Progress(enabled: bool, total: int, done: int) -> Progress:
    """The shared progress display over windows (a bar on a terminal, plain lines with
    windows/s and ETA otherwise), used as ``with ... as advance``."""
    return Progress("annotating windows", total, done, enabled=enabled)


def answer_windows(
    out: Path,
    videos: Sequence[PlannedVideo],
    model: WindowModel,
    settings: AnnotateSettings,
    shard: Shard,
    *,
    progress: bool = False,
    on_batch=None,
) -> dict:
    """Ask the model about every unanswered window of this shard; returns counts and decoding
    statistics. ``on_batch(n)`` is called after each batch is recorded (tests use it to stop)."""
    own = out / shard.file_name("windows")
    runs.repair_tail(own)
    done = answered_ids(out)
    todo = {v.source.video_id: [w for w in shard.stretch(v.windows) if w.id not in done]
            for v in videos}  # fmt: skip
    total = sum(len(shard.stretch(v.windows)) for v in videos)
    remaining = sum(len(t) for t in todo.values())
    stats = {"asked": 0, "decoded_packets": 0, "video_frames": 0, "seconds": 0.0}
    start = time.perf_counter()
    with (
        _Progress(progress, total, total - remaining) as advance,
        runs.Appender(own, sync=False) as log,
    ):
        for video in videos:
            windows = todo[video.source.video_id]
            if not windows:
                continue
            views = dict(model.views)
            if settings.thumbnails:
                width, height = video.size
                h = settings.thumb_height
                views[THUMB] = (1, (max(2, round(h * width / height / 2) * 2), h))
            reader = StreamingReader(VideoReader(video.source.layout), views)
            stream = prefetch(
                reader.windows(video.info, windows), settings.prefetch * settings.batch_size
            )
            batch: list = []
            for item in _then_end(stream):
                if item is not None:
                    batch.append(item)
                if batch and (len(batch) == settings.batch_size or item is None):
                    answers = model.answer([w for w, _ in batch], [f for _, f in batch])
                    if len(answers) != len(batch):
                        raise VerbnounError(f"model {model.name!r}: wrong number of answers")
                    records = []
                    for (window, frames), answer in zip(batch, answers, strict=True):
                        if settings.thumbnails:
                            _write_thumbnail(out, window, frames)
                        records.append(_record(window, answer))
                    log.append(records)
                    stats["asked"] += len(batch)
                    advance(len(batch))
                    if on_batch is not None:
                        on_batch(len(batch))
                    batch = []
            stats["decoded_packets"] += reader.decoded
            stats["video_frames"] += video.info.num_frames
    stats["seconds"] = round(time.perf_counter() - start, 3)
    return stats


def _then_end(items):
    yield from items
    yield None


def run_annotation(
    out: str | Path,
    videos: Sequence[VideoSource],
    model: WindowModel,
    behaviours: Behaviours,
    settings: AnnotateSettings,
    smoothing: SmoothingSettings,
    *,
    shard: Shard | None = None,
    truth: Path | None = None,
    truth_split: str | None = None,
    scored: Path | None = None,
    bin_seconds: float | None = None,
    progress: bool = False,
    on_batch=None,
) -> dict:
    """Annotate ``videos`` into ``out``; returns what was done and, when complete, the outputs
    written (and the scores when ``truth`` is given: only over the ``scored`` stretches when
    given). ``bin_seconds``: time bins in the summary. ``on_batch(n)`` runs after each recorded
    batch."""
    settings.check()
    smoothing.check()
    shard = shard or Shard(1, 1)
    out = Path(out)
    planned = plan(videos, settings)
    out.mkdir(parents=True, exist_ok=True)
    runs.check_or_write_config(out, run_config(model, behaviours, settings, planned))
    stats = answer_windows(
        out, planned, model, settings, shard, progress=progress, on_batch=on_batch
    )
    done = answered_ids(out)
    missing = sum(1 for v in planned for w in v.windows if w.id not in done)
    del done
    result: dict = {"out": str(out), "windows": sum(len(v.windows) for v in planned),
                    "missing": missing, **stats}  # fmt: skip
    if missing:
        return result
    from verbnoun.annotate.outputs import write_outputs

    result["outputs"] = write_outputs(
        out, planned, behaviours, smoothing, settings, truth=truth, truth_split=truth_split,
        scored=scored, bin_seconds=bin_seconds,
    )  # fmt: skip
    return result


def settings_dict(settings: AnnotateSettings, smoothing: SmoothingSettings) -> dict:
    return {"windows": asdict(settings), "smoothing": asdict(smoothing)}
