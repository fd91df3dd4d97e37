"""``annotate adapt``: a classifier of the user's own behaviours, trained from their scored bouts.

**Labels in.** One or more CSV files, one row per scored interval: ``video`` (the video's id as
``annotate`` names it, the file name without its suffix, or the file name; ``video_id`` works
too),
``behaviour`` (any name; ``behavior``, ``action`` and ``label`` work too), ``start`` and
``stop`` (seconds, or ``HH:MM:SS.ff``). An interval covers frames ``round(start * fps)`` up to,
not including, ``round(stop * fps)``. Any subset of any videos; the behaviours are whatever the
file names. Per video and file, the time from the first start to the last stop is *scored*
(or the stretches of a ``--scored`` CSV, ``video_id,start,stop``, when given): unscored
stretches inside it of at least ``min_gap`` seconds are ``(no behaviour)``, a class of its own
that ``annotate`` writes as no segment (``gaps="background"``), or are left out
(``gaps="ignore"``: only the intervals teach; score ``other`` explicitly if you want it). A
``label_next.csv`` of an ``annotate`` run (it has a ``predicted`` column) is read as separate
windows, never as a scored range: its rows with an empty ``behaviour`` are skipped, and
``(no behaviour)`` may be written there. Bad input is a one-line error naming the file and row:
an unknown video, a stop not after its start or after the video's end, an interval covering no
frame, two intervals overlapping (in any of the files), a behaviour with a single labelled frame,
a file without rows.

**Training.** Windows of ``window`` seconds are laid densely over the scored frames (a step of an
eighth of a window, coarser when there would be more than ``max_windows``); a window takes the
label of its centre frame, the frame it speaks for in ``annotate``. Each window is seen as
``frames`` frames of ``size`` px, decoded and sampled exactly as ``annotate`` does (one
streaming pass per video), and turned into frame features (motion, its rhythm, appearance,
layout: :mod:`verbnoun.annotate.forest`) that a random forest (scikit-learn, class-balanced,
deterministic in ``seed``) learns from. Seconds on a CPU for minutes of labels.

**Agreement.** Bouts (maximal runs of one label in a video, ``(no behaviour)`` stretches
included) are held out by class, deterministically: of a class with ``n >= 2`` bouts,
``max(1, round(holdout * n))`` evenly spaced ones (ordered by video and start). A model trained
on the other windows (none of whose frames touch a held-out bout) labels the windows centred in
held-out bouts; accuracy, Cohen's kappa, per-class precision/recall/F1 and the confusion matrix
(scikit-learn) are written to ``agreement.json``, beside the majority-class baseline. The model
kept is then trained on every label (``refit``).

**Model out.** ``OUT/adapted.json`` (behaviours, window, frame view, settings, the labels' files
and scored ranges, counts, agreement), ``OUT/model.safetensors`` (the forest's arrays, no
pickle) and ``OUT/agreement.json``, written as one folder that replaces an earlier adapt folder
only when complete. :class:`AdaptedModel` is the window model of ``verbnoun annotate --adapted
OUT``: log-probabilities over the behaviours and ``(no behaviour)``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from verbnoun.annotate.forest import FEATURES_VERSION
from verbnoun.annotate.metrics import BACKGROUND
from verbnoun.annotate.windows import View, Window
from verbnoun.errors import AnnotationError, CheckpointError, CheckpointFileError, VerbnounError

CONFIG = "adapted.json"
WEIGHTS = "model.safetensors"
AGREEMENT = "agreement.json"
KIND = "verbnoun.adapted"
NO_BEHAVIOUR = "(no behaviour)"  # the name of BACKGROUND in label files and summaries
VIEW = "adapted"
MIN_FRAMES = 2  # a behaviour needs labels on at least this many frames
GAPS = ("background", "ignore")


@dataclass(frozen=True)
class AdaptSettings:
    """How windows are laid and the classifier is trained (all of it kept in ``adapted.json``)."""

    window: float = 1.0  # seconds (annotate uses it with this model)
    stride: float = 0.5  # seconds between annotate's windows with this model
    frames: int = 16  # frames per window the features see
    size: int = 32  # px (square)
    trees: int = 200
    min_leaf: int = 2  # windows per leaf at least
    holdout: float = 0.2  # share of each class's bouts held out to measure agreement
    gaps: str = "background"  # unscored stretches in a scored range: background or ignore
    min_gap: float = 0.5  # seconds: shorter unscored stretches are left out
    max_windows: int = 4000  # training windows at most (the step grows beyond)
    refit: bool = True  # the kept model is trained on every label
    seed: int = 0

    def check(self) -> None:
        if not self.window > 0 or not self.stride > 0:
            raise VerbnounError("--window and --stride must be positive")
        if self.stride > self.window:
            raise VerbnounError(f"--stride {self.stride:g} s is longer than --window "
                                f"{self.window:g} s")  # fmt: skip
        if self.gaps not in GAPS:
            raise VerbnounError(f"--gaps must be one of {', '.join(GAPS)}, got {self.gaps!r}")
        if not 0 <= self.holdout < 1:
            raise VerbnounError(f"--holdout must be in [0, 1), got {self.holdout}")
        if self.frames < 2 or self.size < 8:
            raise VerbnounError("--frames must be at least 2 and --size at least 8")
        for name in ("trees", "min_leaf", "max_windows"):
            if getattr(self, name) < 1:
                raise VerbnounError(f"--{name.replace('_', '-')} must be at least 1")


# ----------------------------------------------------------------------------- labels


@dataclass(frozen=True)
class Interval:
    """A scored interval: frames ``[first, end)`` of a video, and the row that gave it."""

    video_id: str
    behaviour: str  # a name; NO_BEHAVIOUR for an explicit "nothing"
    first: int
    end: int
    path: str
    line: int
    order: int = 0  # the file's place among the labels files given

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True)
class VideoFacts:
    fps: float
    num_frames: int


@dataclass
class LabelSet:
    """Every labelled frame: per video, a class index per frame (-1: not labelled)."""

    classes: list[str]  # behaviour names in order of first appearance, then NO_BEHAVIOUR
    frames: dict[str, np.ndarray]
    intervals: list[Interval]
    scored: dict[str, list[tuple[float, float]]]  # seconds: scored ranges and review windows
    files: list[dict] = field(default_factory=list)


def resolve_video(text: str, known) -> str:
    """A labels file's video name as a video id: the id itself, or a file name (``m1.mp4``,
    ``videos/m1.mp4``) whose id is known."""
    from verbnoun.data.layouts import file_video_id

    text = text.strip()
    if text in known or not text:
        return text
    stem = file_video_id(Path(text.replace("\\", "/")).stem)
    return stem if stem in known else text


def _column(header: list[str], names: Sequence[str]) -> str | None:
    lowered = {h.casefold(): h for h in header}
    return next((lowered[n] for n in names if n in lowered), None)


def read_label_file(
    path: str | Path, facts: dict[str, VideoFacts], known: Sequence[str] = (), order: int = 0
) -> tuple[list[Interval], list[tuple[str, int, int]], bool]:
    """Intervals of one labels file, the scored ranges ``(video, first, end)`` it spans (none
    for a ``label_next.csv``), and whether it is one. ``facts``: the videos rows may name;
    ``known``: every video given, for the message about an unknown one."""
    from verbnoun.data.ek100 import time_field
    from verbnoun.fileio import read_csv

    path = Path(path)
    table = read_csv(path, error=AnnotationError)
    columns = {
        "video": _column(table.header, ("video", "video_id")),
        "behaviour": _column(table.header, ("behaviour", "behavior", "action", "label")),
        "start": _column(table.header, ("start", "start_timestamp")),
        "stop": _column(table.header, ("stop", "stop_timestamp")),
    }
    missing = [name for name, found in columns.items() if found is None]
    if missing and len(table.header) == 1:
        raise AnnotationError(path, f"one column {table.header[0]!r}: is the file comma-separated?",
                              line=1)  # fmt: skip
    if missing:
        raise AnnotationError(
            path, f"missing column(s) {', '.join(missing)}: a labels file has video, behaviour, "
            "start and stop", line=1,
        )  # fmt: skip
    review = _column(table.header, ("predicted",)) is not None
    if not table.rows:
        raise AnnotationError(path, "no labelled intervals (the file has only a header)", line=1)
    video, behaviour, start, stop = (columns[k] for k in ("video", "behaviour", "start", "stop"))
    intervals = []
    for line, row in table.rows:
        name = row[behaviour].strip()
        if not name:
            if review:
                continue
            raise AnnotationError(path, "no behaviour", line=line, field=behaviour)
        vid = resolve_video(row[video], facts)
        if vid not in facts:
            given = sorted(known or facts)
            listed = ", ".join(given[:5]) + (" ..." if len(given) > 5 else "")
            raise AnnotationError(
                path, f"video {vid!r} is not among the videos given ({listed})", line=line,
                field=video,
            )  # fmt: skip
        a, b = time_field(row[start], path, line, start), time_field(row[stop], path, line, stop)
        if not (math.isfinite(a) and math.isfinite(b)) or a < 0:
            raise AnnotationError(path, "start must be a time >= 0", line=line, field=start)
        if b <= a:
            raise AnnotationError(path, f"stop {b:g} s is not after start {a:g} s", line=line,
                                  field=stop)  # fmt: skip
        info = facts[vid]
        duration = info.num_frames / info.fps
        if b > duration + 0.5 / info.fps:
            raise AnnotationError(path, f"stop {b:g} s is after the video's end ({duration:.2f} s)",
                                  line=line, field=stop)  # fmt: skip
        first, end = round(a * info.fps), min(round(b * info.fps), info.num_frames)
        if end <= first:
            raise AnnotationError(path, f"{a:g}-{b:g} s covers no frame at {info.fps:g} fps",
                                  line=line)  # fmt: skip
        intervals.append(Interval(vid, name, first, end, str(path), line, order))
    if not intervals:
        raise AnnotationError(path, "no row has a behaviour filled in", line=1)
    ranges = []
    if not review:
        by_video: dict[str, list[Interval]] = {}
        for item in intervals:
            by_video.setdefault(item.video_id, []).append(item)
        ranges = [(v, min(i.first for i in items), max(i.end for i in items))
                  for v, items in by_video.items()]  # fmt: skip
    return intervals, ranges, review


def read_labels(
    paths: Sequence[str | Path],
    facts: dict[str, VideoFacts],
    settings: AdaptSettings,
    known: Sequence[str] = (),
    scored: Sequence | None = None,
) -> LabelSet:
    """Every labels file, checked together (overlaps across files, frames per behaviour);
    ``scored``: the stretches scored exhaustively (:class:`~verbnoun.annotate.agreement.
    ScoredRange` s), instead of each file's first start to last stop per video."""
    from verbnoun.fileio import sha256_file

    if not paths:
        raise VerbnounError("give --labels FILE.csv")
    intervals: list[Interval] = []
    ranges: list[tuple[str, int, int]] = []
    files = []
    for order, path in enumerate(paths):
        found, spans, review = read_label_file(path, facts, known, order)
        intervals += found
        ranges += spans
        files.append({"path": str(path), "sha256": sha256_file(path), "rows": len(found),
                      "kind": "label_next" if review else "scored"})  # fmt: skip
    if scored is not None:
        ranges = _scored_ranges(scored, facts, known)
    by_video: dict[str, list[Interval]] = {}
    for item in intervals:
        by_video.setdefault(item.video_id, []).append(item)
    for video, _, _ in ranges:
        by_video.setdefault(video, [])
    for items in by_video.values():
        items.sort(key=lambda i: (i.first, i.end))
        for before, after in itertools.pairwise(items):
            if after.first < before.end:
                later, earlier = sorted((before, after), key=lambda i: (i.order, i.line))[::-1]
                raise AnnotationError(
                    later.path, f"overlaps the interval of {_place(earlier, later)} "
                    f"({later.behaviour!r} and {earlier.behaviour!r})", line=later.line,
                )  # fmt: skip
    names: list[str] = []
    for item in intervals:
        if item.behaviour != NO_BEHAVIOUR and item.behaviour not in names:
            names.append(item.behaviour)
    frames_of: dict[str, int] = {}
    for item in intervals:
        frames_of[item.behaviour] = frames_of.get(item.behaviour, 0) + item.end - item.first
    for name in names:
        if frames_of[name] < MIN_FRAMES:
            item = next(i for i in intervals if i.behaviour == name)
            raise AnnotationError(
                item.path, f"behaviour {name!r} has a single frame of labels; score at least "
                f"{MIN_FRAMES} frames of it (or drop the row)", line=item.line,
            )  # fmt: skip
    classes = [*names, NO_BEHAVIOUR]
    index = {name: k for k, name in enumerate(classes)}
    labelled: dict[str, np.ndarray] = {}
    for video, items in by_video.items():
        labels = np.full(facts[video].num_frames, -1, dtype=np.int16)
        if settings.gaps == "background":
            min_gap = max(1, round(settings.min_gap * facts[video].fps))
            for vid, first, end in ranges:
                if vid == video:
                    labels[first:end] = index[NO_BEHAVIOUR]
            covered = np.zeros(len(labels), dtype=bool)
            for item in items:
                covered[item.first : item.end] = True
            for first, end in _true_runs(labels >= 0):
                gap = ~covered[first:end]
                for a, b in _true_runs(gap):  # short unscored stretches are left out
                    if b - a < min_gap:
                        labels[first + a : first + b] = -1
        for item in items:
            labels[item.first : item.end] = index[item.behaviour]
        labelled[video] = labels
    if not any((labels == index[NO_BEHAVIOUR]).any() for labels in labelled.values()):
        classes = names
    if len(classes) < 2:
        where = intervals[0].path
        raise AnnotationError(
            where, f"only one class ({classes[0]!r}) is labelled: a classifier needs two or more "
            "behaviours (or unscored gaps, with --gaps background)",
        )  # fmt: skip
    scored: dict[str, list[tuple[float, float]]] = {}
    for vid, first, end in ranges:
        scored.setdefault(vid, []).append((first / facts[vid].fps, end / facts[vid].fps))
    for item in intervals:
        if not any(r[0] <= item.first / facts[item.video_id].fps < r[1]
                   for r in scored.get(item.video_id, [])):  # fmt: skip
            fps = facts[item.video_id].fps
            scored.setdefault(item.video_id, []).append((item.first / fps, item.end / fps))
    scored = {v: sorted((round(a, 4), round(b, 4)) for a, b in s) for v, s in scored.items()}
    return LabelSet(classes, labelled, intervals, scored, files)


def _scored_ranges(scored: Sequence, facts: dict, known: Sequence[str]) -> list:
    """``(video, first, end)`` of scored stretches (merged); an unknown video names its row."""
    import dataclasses

    from verbnoun.annotate.agreement import scored_frames

    resolved = []
    for r in scored:
        video = resolve_video(r.video_id, facts)
        if video not in facts:
            given = ", ".join(sorted(known or facts)[:5])
            raise VerbnounError(f"{r.where}: video {r.video_id!r} is not among the videos given "
                                f"({given})")  # fmt: skip
        resolved.append(dataclasses.replace(r, video_id=video))
    merged = scored_frames(resolved, facts)
    return [(v, a, b) for v, spans in merged.items() for a, b in spans]


def _place(other: Interval, this: Interval) -> str:
    return f"line {other.line}" if other.path == this.path else other.where


def _true_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[first, end)`` of every run of True."""
    padded = np.r_[False, mask, False].astype(np.int8)
    change = np.flatnonzero(np.diff(padded))
    return list(zip(change[::2].tolist(), change[1::2].tolist(), strict=True))


def label_runs(labels: np.ndarray) -> list[tuple[int, int, int]]:
    """``(class, first, end)`` of every maximal run of one label (unlabelled frames skipped)."""
    if not len(labels):
        return []
    change = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    starts, ends = np.r_[0, change], np.r_[change, len(labels)]
    return [(int(labels[a]), int(a), int(b)) for a, b in zip(starts, ends, strict=True)
            if labels[a] >= 0]  # fmt: skip


# ----------------------------------------------------------------------------- windows


@dataclass
class TrainingWindows:
    """Training windows of every labelled video: the windows, their class, and their bout."""

    windows: list[Window]
    targets: np.ndarray
    bouts: np.ndarray  # index into ``bout_spans``
    bout_spans: list[tuple[str, int, int, int]]  # (video, class, first, end)


def training_windows(
    labels: LabelSet, facts: dict[str, VideoFacts], settings: AdaptSettings
) -> TrainingWindows:
    """Windows centred every ``step`` frames over the labelled frames, labelled by the centre."""
    sizes = {v: round(settings.window * facts[v].fps) for v in labels.frames}
    for video, size in sizes.items():
        if size < 1 or size > facts[video].num_frames:
            raise VerbnounError(
                f"video {video}: --window {settings.window:g} s does not fit its "
                f"{facts[video].num_frames} frames at {facts[video].fps:g} fps"
            )  # fmt: skip
    labelled = sum(int((f >= 0).sum()) for f in labels.frames.values())
    step = max(1, round(min(sizes.values()) / 8))
    step = max(step, math.ceil(labelled / settings.max_windows))
    windows, targets, bouts, spans = [], [], [], []
    for video in sorted(labels.frames):
        frames, size, fps = labels.frames[video], sizes[video], facts[video].fps
        n = len(frames)
        owner = np.full(n, -1, dtype=np.int64)
        for cls, first, end in label_runs(frames):
            owner[first:end] = len(spans)
            spans.append((video, cls, first, end))
        seen = set()
        for first, end in _true_runs(frames >= 0):
            for centre in range(first + (end - first - 1) % step // 2, end, step):
                lo = min(max(centre - (size - 1) // 2, 0), n - size)
                window = Window(video, len(windows), lo, lo + size, fps)
                real = window.centre
                if lo in seen or frames[real] < 0:
                    continue
                seen.add(lo)
                windows.append(window)
                targets.append(int(frames[real]))
                bouts.append(int(owner[real]))
    if not windows:
        raise VerbnounError("no training window: the labelled intervals are too short")
    return TrainingWindows(windows, np.array(targets), np.array(bouts), spans)


def held_out_bouts(spans: Sequence[tuple[str, int, int, int]], holdout: float) -> set[int]:
    """Bouts held out: of each class with ``n >= 2`` bouts, ``max(1, round(holdout * n))``
    evenly spaced ones, in (video, start) order."""
    if holdout <= 0:
        return set()
    chosen: set[int] = set()
    by_class: dict[int, list[int]] = {}
    for k, (_, cls, _, _) in sorted(enumerate(spans), key=lambda x: (x[1][0], x[1][2])):
        by_class.setdefault(cls, []).append(k)
    for members in by_class.values():
        n = len(members)
        if n < 2:
            continue
        count = min(n - 1, max(1, round(holdout * n)))
        for j in range(count):
            chosen.add(members[min(n - 1, round((j + 1) * n / (count + 1)))])
    return chosen


def window_feature_matrix(
    sources, tw: TrainingWindows, settings: AdaptSettings, progress=None
) -> np.ndarray:
    """Features of every training window, decoded in one streaming pass per video exactly as
    ``annotate`` decodes its windows (only the features are kept)."""
    from verbnoun.annotate.forest import window_features
    from verbnoun.annotate.windows import StreamingReader
    from verbnoun.data.video import VideoReader

    rows: dict[int, np.ndarray] = {}
    by_video: dict[str, list[Window]] = {}
    for window in tw.windows:
        by_video.setdefault(window.video_id, []).append(window)
    for video, windows in by_video.items():
        reader = VideoReader(sources[video].layout)
        stream = StreamingReader(reader, {VIEW: (settings.frames, settings.size)})
        batch: list[tuple[Window, np.ndarray]] = []
        ordered = sorted(windows, key=lambda w: (w.first, w.index))
        for item in _then_none(stream.windows(reader.info(video), ordered)):
            if item is not None:
                batch.append((item[0], item[1][VIEW]))
            if batch and (item is None or len(batch) == 64):
                values = window_features(np.stack([clip for _, clip in batch]))
                for (window, _), row in zip(batch, values, strict=True):
                    rows[window.index] = row
                if progress is not None:
                    progress(len(batch))
                batch = []
    return np.stack([rows[k] for k in range(len(tw.windows))])


def _then_none(items):
    yield from items
    yield None


# ----------------------------------------------------------------------------- agreement


def agreement(truth: np.ndarray, pred: np.ndarray, classes: Sequence[str], baseline: int) -> dict:
    """Accuracy, Cohen's kappa, per-class report and confusion matrix (scikit-learn), with the
    majority-class baseline (always ``baseline``)."""
    from sklearn.metrics import (
        accuracy_score,
        classification_report,
        cohen_kappa_score,
        confusion_matrix,
    )

    labels = list(range(len(classes)))
    majority = np.full_like(truth, baseline)

    def kappa(a, b) -> float | None:
        if len(set(a.tolist()) | set(b.tolist())) < 2:
            return None  # one class only: kappa is undefined
        value = float(cohen_kappa_score(a, b, labels=labels))
        return round(value, 4) if math.isfinite(value) else None

    report = classification_report(truth, pred, labels=labels, target_names=list(classes),
                                   output_dict=True, zero_division=0)  # fmt: skip
    per_class = {name: {k: round(float(v), 4) for k, v in report[name].items()}
                 for name in classes}  # fmt: skip
    confusion = confusion_matrix(truth, pred, labels=labels).tolist()
    return {
        "windows": len(truth),
        "accuracy": round(float(accuracy_score(truth, pred)), 4),
        "kappa": kappa(truth, pred),
        "per_class": per_class,
        "confusion": {"rows_true_columns_predicted": list(classes), "counts": confusion},
        "majority": {
            "label": classes[baseline],
            "accuracy": round(float(accuracy_score(truth, majority)), 4),
            "kappa": kappa(truth, majority),
        },
    }


# ----------------------------------------------------------------------------- the command


def adapt(
    sources: Sequence,
    label_paths: Sequence[str | Path],
    out: str | Path,
    settings: AdaptSettings,
    *,
    scored: str | Path | None = None,
    progress: bool = False,
) -> dict:
    """Train a classifier of the labelled behaviours and write the model folder ``out``;
    returns its ``adapted.json``. ``sources``: :class:`~verbnoun.annotate.runner.VideoSource` s
    (the videos the labels may name); ``scored``: a CSV ``video_id,start,stop`` of the
    stretches scored exhaustively (as ``annotate score --scored`` reads)."""
    from verbnoun.data.video import VideoReader
    from verbnoun.fileio import atomic_folder, check_replaceable
    from verbnoun.progress import Progress, Stages

    settings.check()
    out = Path(out)
    check_replaceable(out, marker=CONFIG)
    by_id = {s.video_id: s for s in sources}
    if len(by_id) != len(sources):
        raise VerbnounError("a video id is given twice")
    ranges = None
    named = _named_videos(label_paths, set(by_id))
    if scored is not None:
        from verbnoun.annotate.agreement import read_scored

        ranges = read_scored(Path(scored))
        named += [v for v in (resolve_video(r.video_id, by_id) for r in ranges)
                  if v in by_id and v not in named]  # fmt: skip
    facts = {}
    for video in named:  # only the videos the labels name are opened
        info = VideoReader(by_id[video].layout).info(video)
        facts[video] = VideoFacts(info.fps, info.num_frames)
    labels = read_labels(label_paths, facts, settings, known=sorted(by_id), scored=ranges)
    if scored is not None:
        from verbnoun.fileio import sha256_file

        labels.files.append({"path": str(scored), "sha256": sha256_file(scored),
                             "rows": len(ranges or ()), "kind": "scored stretches"})  # fmt: skip
    facts = {v: facts[v] for v in labels.frames}
    tw = training_windows(labels, facts, settings)
    classes = labels.classes
    held = held_out_bouts(tw.bout_spans, settings.holdout)
    stages = Stages("adapt", ["decode windows", "train"], enabled=progress)
    with (
        stages("decode windows", f"{len(tw.windows)} windows of {len(facts)} video(s)"),
        Progress("adapt windows", len(tw.windows), enabled=progress) as advance,
    ):
        features = window_feature_matrix(by_id, tw, settings, advance)
    result_agreement, final = None, None
    with stages("train", f"{len(classes)} classes, {settings.trees} trees"):
        if held:
            test = np.isin(tw.bouts, sorted(held))
            train = ~test & ~_touches(tw, held)
            if len(np.unique(tw.targets[train])) < 2:
                train = ~test
            forest = _fit(features[train], tw.targets[train], len(classes), settings, 1)
            counts = np.bincount(tw.targets[train], minlength=len(classes))
            pred = forest.proba(features[test]).argmax(axis=1)
            result_agreement = agreement(tw.targets[test], pred, classes, int(counts.argmax()))
            result_agreement.update(
                held_out_bouts=len(held), training_windows=int(train.sum()),
                bouts={name: sum(1 for k in held if tw.bout_spans[k][1] == c)
                       for c, name in enumerate(classes)},
            )  # fmt: skip
            final = None if settings.refit else forest
        if final is None:
            final = _fit(features, tw.targets, len(classes), settings, 0)
    summary = _summary(labels, tw, facts, classes)
    config = {
        "kind": KIND,
        "format_version": 1,
        "behaviours": [c for c in classes if c != NO_BEHAVIOUR],
        "no_behaviour_class": NO_BEHAVIOUR in classes,
        "classes": classes,
        "window": settings.window,
        "stride": settings.stride,
        "view": {"frames": settings.frames, "size": settings.size},
        "features": FEATURES_VERSION,
        "settings": asdict(settings),
        "labels": labels.files,
        "scored": labels.scored,
        "training": summary,
        "agreement": _short(result_agreement),
    }
    from safetensors.numpy import save_file

    from verbnoun import __version__
    from verbnoun.fileio import write_json

    config["created_with"] = __version__
    with atomic_folder(out, marker=CONFIG) as folder:
        save_file(final.arrays(), str(folder / WEIGHTS))
        write_json(
            folder / AGREEMENT,
            result_agreement
            or {"held_out_bouts": 0, "why": "no class has two bouts: nothing could be held out"},
        )
        write_json(folder / CONFIG, config)
    return config


def _fit(features, targets, classes: int, settings: AdaptSettings, offset: int):
    from verbnoun.annotate.forest import Forest

    return Forest.fit(features, targets, classes, trees=settings.trees,
                      min_leaf=settings.min_leaf, seed=settings.seed + offset)  # fmt: skip


def _named_videos(paths: Sequence[str | Path], known: set[str]) -> list[str]:
    """The videos the labels name (unknown ones are left for the row-by-row check)."""
    from verbnoun.fileio import read_csv

    named: list[str] = []
    for path in paths:
        table = read_csv(path, error=AnnotationError)
        column = _column(table.header, ("video", "video_id"))
        if column is None:
            continue
        for _, row in table.rows:
            vid = resolve_video(row[column], known)
            if vid in known and vid not in named:
                named.append(vid)
    return named


def _touches(tw: TrainingWindows, held: set[int]) -> np.ndarray:
    """Windows whose frames overlap a held-out bout (kept out of the agreement fit)."""
    spans: dict[str, list[tuple[int, int]]] = {}
    for k in held:
        video, _, first, end = tw.bout_spans[k]
        spans.setdefault(video, []).append((first, end))
    return np.array([any(w.first < b and a < w.end for a, b in spans.get(w.video_id, ()))
                     for w in tw.windows], dtype=bool)  # fmt: skip


def _summary(labels: LabelSet, tw: TrainingWindows, facts, classes) -> dict:
    per = {}
    for c, name in enumerate(classes):
        seconds = sum(float((f == c).sum()) / facts[v].fps for v, f in labels.frames.items())
        per[name] = {"bouts": sum(1 for s in tw.bout_spans if s[1] == c),
                     "seconds": round(seconds, 3),
                     "windows": int((tw.targets == c).sum())}  # fmt: skip
    return {"videos": sorted(labels.frames), "windows": len(tw.windows), "classes": per}


def _short(result: dict | None) -> dict | None:
    if result is None:
        return None
    keys = ("windows", "held_out_bouts", "accuracy", "kappa")
    return {**{k: result[k] for k in keys}, "majority": result["majority"]}


def summary_lines(config: dict, out: Path) -> list[str]:
    """What ``annotate adapt`` prints."""
    lines = [f"{out}: a classifier of {len(config['behaviours'])} behaviours "
             f"({', '.join(config['behaviours'])})"
             + (" and (no behaviour)" if config["no_behaviour_class"] else "")
             + f" from {config['training']['windows']} windows of "
             f"{len(config['training']['videos'])} video(s)"]  # fmt: skip
    found = config["agreement"]
    if found is None:
        lines.append("  agreement: no class has two bouts, so nothing was held out")
    else:
        kappa = "n/a" if found["kappa"] is None else f"{found['kappa']:.3f}"
        m = found["majority"]
        lines.append(
            f"  agreement on {found['windows']} windows of {found['held_out_bouts']} held-out "
            f"bouts: accuracy {found['accuracy']:.3f}, kappa {kappa} (majority class "
            f"{m['label']!r}: accuracy {m['accuracy']:.3f}); details in {out / AGREEMENT}"
        )  # fmt: skip
    lines.append(f"  use it: verbnoun annotate --video VIDEOS --adapted {out} --out RUN")
    return lines


# ----------------------------------------------------------------------------- the window model


def read_config(folder: str | Path) -> dict:
    """``adapted.json`` of a model folder, checked."""
    from verbnoun.fileio import read_json, require

    path = Path(folder) / CONFIG
    if not Path(folder).is_dir():
        raise CheckpointFileError(folder, "no such adapted model folder")
    config = read_json(path, error=CheckpointFileError)
    if config.get("kind") != KIND:
        raise CheckpointFileError(path, f"not an adapted model (kind {config.get('kind')!r})")
    for key, kind in (("classes", list), ("behaviours", list), ("window", (int, float)),
                      ("stride", (int, float)), ("settings", dict)):  # fmt: skip
        require(config, key, kind, path, error=CheckpointFileError)
    return config


def behaviours_of(config: dict, source: str):
    """The annotate vocabulary of an adapted model: its behaviours, ids 0.. in order."""
    from verbnoun.annotate.vocabulary import _single_label
    from verbnoun.data.ek100 import ClassVocabulary

    names = tuple(config["behaviours"])
    classes = ClassVocabulary("action", names, tuple((n,) for n in names), ("",) * len(names),
                              source)  # fmt: skip
    return _single_label(classes, source)


class AdaptedModel:
    """The window model of an adapted folder: log-probabilities over its behaviours (labels
    ``"0"``, ``"1"``, ... as in its vocabulary) and, when it learned one, ``(no behaviour)``
    (the background label, which becomes no segment)."""

    name = "adapted"

    def __init__(self, folder: str | Path) -> None:
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        from verbnoun.annotate.forest import Forest

        self.folder = Path(folder)
        self.config = read_config(folder)
        try:
            settings = AdaptSettings(**self.config["settings"])
        except TypeError as error:
            raise CheckpointError(f"{self.folder / CONFIG}: bad settings ({error})") from None
        if self.config.get("features") != FEATURES_VERSION:
            raise CheckpointError(
                f"{self.folder / CONFIG}: features version {self.config.get('features')!r}, "
                f"this verbnoun computes version {FEATURES_VERSION}: adapt again"
            )
        try:
            self.forest = Forest(load_file(self.folder / WEIGHTS), len(self.config["classes"]))
        except (OSError, ValueError, SafetensorError) as error:
            raise CheckpointError(f"{self.folder / WEIGHTS}: cannot load the model ({error})"
                                  ) from None  # fmt: skip
        self.behaviours = behaviours_of(self.config, str(self.folder / CONFIG))
        by_name = dict(zip(self.behaviours.names, self.behaviours.labels, strict=True))
        self.labels = [by_name[c] if c != NO_BEHAVIOUR else BACKGROUND
                       for c in self.config["classes"]]  # fmt: skip
        self.views: dict[str, View] = {VIEW: (settings.frames, settings.size)}

    def settings(self) -> dict:
        from verbnoun.fileio import sha256_file

        return {"adapted": str(self.folder), "model": sha256_file(self.folder / WEIGHTS)}

    def scores(self, frames: Sequence[dict]) -> np.ndarray:
        """``(windows, classes)`` log-probabilities, in the order of ``self.labels``."""
        from verbnoun.annotate.forest import window_features

        return self.forest.log_proba(window_features(np.stack([f[VIEW] for f in frames])))

    def answer(self, windows: Sequence[Window], frames: Sequence[dict]) -> list:
        from verbnoun.annotate.models import Answer

        answers = []
        for row in self.scores(frames):
            values = [round(float(x), 4) for x in row]
            best = int(np.argmax(row))
            answers.append(Answer(self.labels[best], dict(zip(self.labels, values, strict=True))))
        return answers
