"""``verbnoun annotate`` as a library call: options in, an annotate run folder out.

:func:`annotate_job` turns the command's flat options into an :class:`AnnotateJob` (which
videos, :class:`WindowModelSettings`, the runner's
:class:`~verbnoun.annotate.runner.AnnotateSettings` and
:class:`~verbnoun.annotate.smoothing.SmoothingSettings`, the ground truth) and refuses what does
not fit before anything is read; :func:`run_annotate` finds the videos, checks every window
(before a model loads), builds the window model (annotate's own ``specialist``, ``oracle`` and
``adapted``, or an adapter of :mod:`verbnoun.evaluate.registry` asked as ``mode`` says) and runs
:func:`~verbnoun.annotate.runner.run_annotation`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from verbnoun.errors import VerbnounError

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm")
WINDOW_MODELS = ("specialist", "oracle", "adapted")  # annotate's own (annotate.models, adapt)


def window_adapters() -> tuple[str, ...]:
    """The registry's adapters that can answer a window: those that need frames at most."""
    from verbnoun.evaluate.registry import ADAPTERS

    return tuple(n for n, spec in ADAPTERS.items() if spec.needs <= {"frames"})


def model_names() -> tuple[str, ...]:
    """Every ``--model``: annotate's own models around the registry's window adapters."""
    return (WINDOW_MODELS[0], *window_adapters(), *WINDOW_MODELS[1:])


@dataclass(frozen=True)
class VideoSelection:
    """Which videos: ``video`` (a file, a folder of files, a layout's root) or the ``split`` of
    a described ``dataset``; only ``video_ids`` (comma-separated) when given; only the
    ``segments`` (CSV video_id,start,stop) when given."""

    video: Path | None = None
    layout: str = "file"
    video_ids: str | None = None
    dataset: Path | None = None
    split: str | None = None
    segments: Path | None = None


@dataclass(frozen=True)
class WindowModelSettings:
    """Who answers a window, and how. ``adapter``: the options of a registry adapter (``seed``,
    ``checkpoint``, ``scoring``, ``api_model``, ...)."""

    model: str = "specialist"
    mode: str = "choice"
    adapted: Path | None = None
    specialist: Path | None = None
    top_k: int = 5
    frames: int = 8
    size: int | None = None
    actions: str | None = None
    option_text: str = "narration"
    oracle_shift: int = 0
    adapter: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TruthSettings:
    """The human's labels: scores, agreement and the ethogram's second row."""

    truth: Path | None = None
    truth_split: str | None = None
    scored: Path | None = None  # CSV of the stretches the truth covers
    bin_seconds: float | None = None


@dataclass(frozen=True)
class AnnotateJob:
    out: Path
    videos: VideoSelection
    who: WindowModelSettings
    settings: Any  # annotate.runner.AnnotateSettings
    smooth: Any  # annotate.smoothing.SmoothingSettings
    truth: TruthSettings
    shard: str | None = None
    adapted_config: dict | None = None


def _take(cls, options: dict, **fixed):
    return cls(**{f.name: options.pop(f.name) for f in fields(cls) if f.name in options}, **fixed)


def annotate_job(out: Path | None, **options: Any) -> AnnotateJob:
    """The :class:`AnnotateJob` of ``verbnoun annotate``'s options (names as on the command
    line, with underscores; ``bin`` as ``bin_``)."""
    from verbnoun.annotate.bins import parse_duration
    from verbnoun.annotate.runner import AnnotateSettings
    from verbnoun.annotate.smoothing import SmoothingSettings

    if out is None:
        raise VerbnounError("give --out DIR")
    if options.get("scored") is not None and options.get("truth") is None:
        raise VerbnounError("--scored says which stretches --truth covers: give --truth too")
    bin_ = options.pop("bin_", None)
    bin_seconds = None if bin_ is None else parse_duration(bin_)
    if options.get("video") is None and options.get("dataset") is None:
        raise VerbnounError("give --video FILE|DIR, or --dataset FILE.yaml with --split")
    model, adapted = options.get("model", "specialist"), options.get("adapted")
    adapted_config = None
    if adapted is not None or model == "adapted":
        from verbnoun.annotate.adapt import read_config

        if model not in ("specialist", "adapted"):
            raise VerbnounError(f"--adapted goes with --model adapted, not --model {model}")
        if adapted is None:
            raise VerbnounError("--model adapted needs --adapted DIR (a folder of annotate adapt)")
        if options.get("actions") is not None:
            raise VerbnounError("--adapted brings its own behaviours: drop --actions")
        options["model"], adapted_config = "adapted", read_config(adapted)
    for name, default in (("window", 2.0), ("stride", 1.0)):
        if options.get(name) is None:
            options[name] = (adapted_config or {}).get(name, default)
    settings = _take(AnnotateSettings, options)
    settings.check()
    smoothing = {k: options.pop(k) for k in ("switch", "min_duration", "min_confidence")
                 if k in options}  # fmt: skip
    per_window = options.pop("behaviours_per_window", "one")
    threshold = options.pop("threshold", 0.3)
    if per_window not in ("one", "several"):
        raise VerbnounError(f"--behaviours-per-window is one or several, not {per_window!r}")
    if per_window == "several":
        if options.get("model") == "oracle" or (
            options.get("mode") == "open" and options.get("model") not in ("specialist", "adapted")
        ):
            what = "--model oracle" if options.get("model") == "oracle" else "--mode open"
            raise VerbnounError(f"--behaviours-per-window several needs probabilities over the "
                                f"behaviours; {what} names one behaviour per window")  # fmt: skip
        smoothing["several"] = threshold
    smooth = SmoothingSettings(method=options.pop("smoothing", "viterbi"), **smoothing)
    smooth.check()
    truth = _take(TruthSettings, options, bin_seconds=bin_seconds)
    videos = _take(VideoSelection, options)
    shard = options.pop("shard", None)
    who = _take(WindowModelSettings, options)
    from verbnoun.evaluate.registry import option_names

    unknown = sorted(set(options) - option_names())  # the rest are the adapter's options
    if unknown:
        raise VerbnounError(f"unknown annotate option {unknown[0]!r}")
    who = replace(who, adapter=options)
    return AnnotateJob(Path(out), videos, who, settings, smooth, truth, shard, adapted_config)


def run_annotate(job: AnnotateJob, progress: bool = True) -> tuple[dict, list]:
    """Run ``job``: the runner's result and the videos annotated."""
    from verbnoun.annotate.runner import plan, run_annotation
    from verbnoun.progress import Heartbeat
    from verbnoun.runs import Shard

    sources = select_videos(job.videos)
    plan(sources, job.settings)  # bad videos and windows fail before a model is loaded
    who = job.who
    if job.adapted_config is not None:
        from verbnoun.annotate.adapt import CONFIG, behaviours_of

        behaviours = behaviours_of(job.adapted_config, str(Path(who.adapted) / CONFIG))
    else:
        behaviours = behaviours_for(who.actions, job.videos.dataset, who.option_text,
                                    who.specialist)  # fmt: skip
    truth = job.truth
    with Heartbeat("annotate"):  # off a terminal, a slow model load talks too
        window_model = make_window_model(
            who.model, who.mode, behaviours, specialist=who.specialist, top_k=who.top_k,
            frames=who.frames, size=who.size, truth=truth.truth, truth_split=truth.truth_split,
            sources=sources, settings=job.settings, shift=who.oracle_shift, adapted=who.adapted,
            **who.adapter,
        )  # fmt: skip
        result = run_annotation(
            job.out, sources, window_model, behaviours, job.settings, job.smooth,
            shard=Shard.from_environment(job.shard), truth=truth.truth,
            truth_split=truth.truth_split, scored=truth.scored, bin_seconds=truth.bin_seconds,
            progress=progress,
        )  # fmt: skip
    return result, sources


def select_videos(selection: VideoSelection) -> list:
    """The :class:`~verbnoun.annotate.runner.VideoSource` list of a selection."""
    from verbnoun.annotate.runner import VideoSource

    if selection.video is not None:
        sources = find_videos(selection.video, selection.layout, selection.video_ids)
    else:
        from verbnoun.data.dataset import GenericDataset, open_dataset

        dataset = selection.dataset
        described = open_dataset(annotations=dataset)
        if not isinstance(described, GenericDataset) or described.description.videos is None:
            raise VerbnounError(f"{dataset}: no videos: section; give --video")
        if selection.split is None:
            raise VerbnounError("--dataset without --video needs --split (whose videos)")
        ids = sorted({s.video_id for s in described.segments(selection.split)})
        if selection.video_ids:
            keep = {v.strip() for v in selection.video_ids.split(",")}
            ids = [v for v in ids if v in keep]
        sources = [VideoSource(v, described.video_layout()) for v in ids]
    if selection.segments is not None:
        spans = read_segment_spans(selection.segments)
        unknown = sorted(set(spans) - {s.video_id for s in sources})
        if unknown:
            raise VerbnounError(
                f"{selection.segments}: video {unknown[0]!r} is not among the videos"
            )
        sources = [VideoSource(s.video_id, s.layout, tuple(spans[s.video_id]))
                   for s in sources if s.video_id in spans]  # fmt: skip
    return sources


def find_videos(video: Path, layout: str, video_ids: str | None = None) -> list:
    """The videos of ``--video``: a file, a folder of files, or a layout's root folder."""
    from verbnoun.annotate.runner import VideoSource
    from verbnoun.data.layouts import FileLayout, file_video_id, make_layout

    if not video.exists():
        raise VerbnounError(f"{video}: no such video file or folder")
    wanted = [v.strip() for v in video_ids.split(",") if v.strip()] if video_ids else None
    if video.is_file():
        return [VideoSource(file_video_id(video.stem), FileLayout(video))]
    if layout == "file":
        files = sorted(p for p in video.iterdir()
                       if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)  # fmt: skip
        sources, seen = [], {}
        for path in files:
            vid = file_video_id(path.stem)
            if vid in seen:
                raise VerbnounError(f"{path} and {seen[vid]} give the same video id {vid!r}")
            seen[vid] = path
            sources.append(VideoSource(vid, FileLayout(path)))
    else:
        root = make_layout(layout, video)
        pattern = "*/*.MP4" if layout == "chunks" else "*/videos/*.MP4"
        ids = sorted({p.name.removesuffix(".MP4") if layout == "chunks" else p.stem
                      for p in video.glob(pattern)})  # fmt: skip
        sources = [VideoSource(v, root) for v in ids]
    if wanted is not None:
        known = {s.video_id for s in sources}
        unknown = [v for v in wanted if v not in known]
        if unknown:
            raise VerbnounError(f"{video}: no video {unknown[0]!r} (layout {layout})")
        sources = [s for s in sources if s.video_id in wanted]
    if not sources:
        raise VerbnounError(f"{video}: no videos found (layout {layout})")
    return sources


def read_segment_spans(path: Path) -> dict[str, list[tuple[float, float]]]:
    """``--segments FILE``: a CSV with ``video_id``, ``start`` and ``stop`` (seconds or
    ``HH:MM:SS.ff``; EK100's ``start_timestamp``/``stop_timestamp`` work too)."""
    from verbnoun.data.ek100 import time_field
    from verbnoun.errors import AnnotationError
    from verbnoun.fileio import read_csv

    table = read_csv(path, error=AnnotationError)
    start = next((c for c in ("start", "start_timestamp") if c in table.header), None)
    stop = next((c for c in ("stop", "stop_timestamp") if c in table.header), None)
    if "video_id" not in table.header or start is None or stop is None:
        raise AnnotationError(path, "--segments needs video_id, start and stop columns", line=1)
    spans: dict[str, list[tuple[float, float]]] = {}
    for line, row in table.rows:
        a, b = time_field(row[start], path, line, start), time_field(row[stop], path, line, stop)
        if b <= a:
            raise AnnotationError(path, "stop is not after start", line=line)
        spans.setdefault(row["video_id"].strip(), []).append((a, b))
    if not spans:
        raise AnnotationError(path, "no segments")
    return spans


def behaviours_for(actions: str | None, dataset: Path | None, option_text: str, specialist):
    """The behaviours of ``--actions`` (a list or a class CSV), else of ``--dataset``, else of
    the specialist's data set."""
    from verbnoun.annotate import vocabulary

    if actions is not None:
        candidate = Path(actions)
        if actions.lower().endswith(".csv"):
            return vocabulary.from_class_file(candidate)
        return vocabulary.from_list(actions)
    if dataset is not None:
        from verbnoun.data.dataset import open_dataset

        return vocabulary.from_dataset(open_dataset(annotations=dataset), str(dataset), option_text)
    if specialist is not None:
        from verbnoun.data.dataset import open_dataset
        from verbnoun.fileio import read_json

        config = read_json(Path(specialist) / "specialist.json")
        source = Path(config.get("annotations", ""))
        return vocabulary.from_dataset(open_dataset(annotations=source), str(source), option_text)
    raise VerbnounError(
        "give the behaviours: --actions 'groom,rear,walk' (or a class CSV), or --dataset FILE.yaml"
    )


def make_window_model(model: str, mode: str, behaviours, **options):
    """The window model of the command line options (see :mod:`verbnoun.annotate.models`)."""
    from verbnoun.annotate import models

    if model == "adapted":
        from verbnoun.annotate.adapt import AdaptedModel

        return AdaptedModel(options["adapted"])
    if model == "specialist":
        if options["specialist"] is None:
            raise VerbnounError("--model specialist needs --specialist DIR")
        return models.SpecialistModel(options["specialist"], behaviours)
    if model == "oracle":
        return _oracle(behaviours, options)
    from verbnoun.annotate.modes import ModeInputs, window_model

    inputs = ModeInputs(_adapter(model, options), behaviours, frames=options["frames"],
                        size=options["size"], top_k=options["top_k"],
                        specialist=options["specialist"])  # fmt: skip
    return window_model(mode, inputs)


def _adapter(model: str, options: dict):
    """The registry's adapter ``model``, its settings taken from the command's options."""
    from verbnoun.evaluate.registry import build_adapter, settings_for

    return build_adapter(model, settings_for(model, options))


def _oracle(behaviours, options: dict):
    from verbnoun.annotate.models import OracleModel
    from verbnoun.annotate.runner import plan
    from verbnoun.annotate.scoring import rasterise, read_truth

    if options["truth"] is None:
        raise VerbnounError("--model oracle answers from the ground truth: give --truth")
    planned = plan(options["sources"], options["settings"])
    spans = read_truth(options["truth"], behaviours, {p.info.video_id for p in planned},
                       options["truth_split"])  # fmt: skip
    frames = {p.info.video_id: rasterise(spans[p.info.video_id], p.info.num_frames, p.info.fps)
              for p in planned}  # fmt: skip
    return OracleModel(frames, str(options["truth"]), options["shift"])
