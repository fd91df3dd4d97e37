"""Ground truth and predictions as frame labels, and ``annotate score``.

Truth comes from a data set (an EK100 annotation folder or a description YAML: the segments of
the predicted videos in its labelled splits) or from a plain CSV (``video_id,start,stop,action``,
times in seconds or ``HH:MM:SS.ff``, the action a behaviour's name or label). A segment covers
frames ``round(start * fps)`` up to, not including, ``round(stop * fps)``; frames no segment
covers are background. Labels are matched to the annotation's behaviours by label, or by name for
a user's own list (``--actions``); a truth class that is neither is an error naming the row.

**Several behaviours at once.** A segment of a multi-label data set (``segments.multi_label``)
covers its frames with every one of its labels, and so do overlapping rows of a truth CSV. The
frame-label metrics above read one label per frame (a segment's first label; of overlapping CSV
rows, the later), as before; when some frame has two or more true behaviours, ``multilabel`` adds
the frame-level multi-label figures (:func:`frame_multilabel`): each frame's predicted behaviour
(none for background) against its set of true ones; a prediction whose rows overlap (``annotate
--behaviours-per-window several``) brings a set per frame too, every behaviour of its rows
covering the frame, and adds ``multilabel`` whichever side has several.

``annotate score`` compares a ``segments.csv`` with the truth, and puts beside it the same
metrics for a majority-class baseline (every frame the most frequent true class) and, when the
run's ``windows.jsonl`` is beside the prediction, for the unsmoothed per-window answers. With
``--scored``, only the stretches a human scored are compared, and ``agreement`` adds kappa, MCC,
frame precision/recall/F1, F1@k and edit with bootstrap intervals
(:mod:`verbnoun.annotate.agreement`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from verbnoun.annotate.metrics import BACKGROUND, majority_labels, segmentation_metrics
from verbnoun.annotate.vocabulary import Behaviours
from verbnoun.data.ek100 import time_field
from verbnoun.errors import AnnotationError, VerbnounError
from verbnoun.fileio import read_csv

if TYPE_CHECKING:
    from verbnoun.annotate.agreement import AgreementSettings


@dataclass(frozen=True)
class Span:
    """A labelled stretch of a video, in seconds."""

    video_id: str
    start: float
    stop: float
    label: str
    where: str  # file:line or segment id, for messages
    also: tuple[str, ...] = ()  # a multi-label segment's other labels (``label`` is its first)


def rasterise(spans: Sequence[Span], num_frames: int, fps: float) -> list[str]:
    """Frame labels of spans (later spans win overlaps; background elsewhere)."""
    frames = [BACKGROUND] * num_frames
    for span in spans:
        for f in range(max(round(span.start * fps), 0), min(round(span.stop * fps), num_frames)):
            frames[f] = span.label
    return frames


def rasterise_sets(spans: Sequence[Span], num_frames: int, fps: float) -> list[frozenset[str]]:
    """Each frame's set of true behaviours: every label of every span covering it (empty:
    background)."""
    frames: list[set[str]] = [set() for _ in range(num_frames)]
    for span in spans:
        for f in range(max(round(span.start * fps), 0), min(round(span.stop * fps), num_frames)):
            frames[f].update((span.label, *span.also))
    return [frozenset(f) for f in frames]


def frame_multilabel(pieces, truth_sets: dict[str, list[frozenset[str]]], *, replicates: int = 1000,
                     seed: int = 0, pred_sets: dict | None = None) -> dict:  # fmt: skip
    """Frame-level multi-label figures of the compared pieces: each frame's predicted set (its
    behaviour, empty for background; or, with ``pred_sets``, every behaviour of the prediction's
    rows covering it) against its true set.

    ``jaccard``: the mean Jaccard index over the frames with at least one true behaviour, with a
    95 % bootstrap interval resampling pieces (videos, or scored stretches: frames next to each
    other are nearly the same picture, so resampling frames would give intervals far too
    narrow); ``per_class`` / ``micro`` / ``macro_f1``: each behaviour as its own yes/no track
    over every compared frame (:func:`verbnoun.evaluate.multilabel.per_class_figures`);
    ``frames_with_several``: frames with two or more true behaviours."""
    import numpy as np

    from verbnoun.evaluate.metrics import percentile_interval, resample_draws
    from verbnoun.evaluate.multilabel import jaccard_values, per_class_figures

    predicted, truths, sums, counts = [], [], [], []
    for piece in pieces:
        sets = truth_sets[piece.video_id][piece.first : piece.end]
        if pred_sets is not None:
            guesses = pred_sets[piece.video_id][piece.first : piece.end]
        else:
            guesses = [frozenset() if p == BACKGROUND else frozenset({p}) for p in piece.pred]
        predicted += guesses
        truths += sets
        labelled = [(g, t) for g, t in zip(guesses, sets, strict=True) if t]
        values = jaccard_values([g for g, _ in labelled], [t for _, t in labelled])
        sums.append(sum(values))
        counts.append(len(values))
    total = sum(counts)
    value = sum(sums) / total if total else float("nan")
    interval = [float("nan"), float("nan")]
    if total and replicates:
        sums_a, counts_a = np.asarray(sums), np.asarray(counts, dtype=np.float64)
        estimates = []
        for draws in resample_draws(len(pieces), replicates, seed):
            weights = np.zeros((len(draws), len(pieces)))
            np.add.at(weights, (np.arange(len(draws))[:, None], draws), 1.0)
            drawn = weights @ counts_a
            estimates.append(np.where(drawn > 0, (weights @ sums_a) / np.maximum(drawn, 1), np.nan))
        interval = list(percentile_interval(np.concatenate(estimates)))
    figures = per_class_figures(predicted, truths)
    return {
        "jaccard": {"value": value, "ci95": interval, "frames": total, "units": len(pieces)},
        "frames_with_several": sum(len(t) > 1 for t in truths),
        **figures,
    }


def _matcher(behaviours: Behaviours | None):
    by_label = set(behaviours.labels) if behaviours else set()
    by_name = {}
    if behaviours is not None:
        for label, name, text in zip(
            behaviours.labels, behaviours.names, behaviours.option_texts, strict=True
        ):
            by_name[name.casefold()] = label
            by_name[text.casefold()] = label
    return by_label, by_name


def truth_from_csv(path: Path, behaviours: Behaviours | None) -> list[Span]:
    """Spans of a plain truth CSV: ``video_id`` (or ``video``), ``start``, ``stop``, ``action``
    (or ``label``); the action a behaviour's name or label."""
    table = read_csv(path, error=AnnotationError)
    header = table.header
    video = next((c for c in ("video_id", "video") if c in header), None)
    label = next((c for c in ("action", "label", "behaviour") if c in header), None)
    start = next((c for c in ("start", "start_timestamp") if c in header), None)
    stop = next((c for c in ("stop", "stop_timestamp") if c in header), None)
    if None in (video, label, start, stop):
        raise AnnotationError(
            path, "a truth table needs video_id, start, stop and action columns", line=1
        )
    by_label, by_name = _matcher(behaviours)
    spans = []
    for line, row in table.rows:
        value = row[label].strip()  # type: ignore[index]
        if value in by_label:
            matched = value
        elif value.casefold() in by_name:
            matched = by_name[value.casefold()]
        else:
            raise AnnotationError(
                path, f"unknown class {value!r} (not one of the behaviours)", line=line,
                field=label,
            )  # fmt: skip
        a = time_field(row[start], path, line, start)  # type: ignore[index]
        b = time_field(row[stop], path, line, stop)  # type: ignore[index]
        if b <= a:
            raise AnnotationError(path, "stop is not after start", line=line)
        spans.append(Span(row[video].strip(), a, b, matched, f"{path}:{line}"))  # type: ignore[index]
    return spans


def truth_from_dataset(
    source: Path, behaviours: Behaviours | None, videos: set[str], split: str | None = None
) -> list[Span]:
    """Labelled segments of ``videos`` in a data set's splits (or one split)."""
    from verbnoun.data.dataset import GenericDataset, open_dataset

    dataset = open_dataset(annotations=source)
    if split is not None:
        splits: Sequence[str] = (split,)
    elif isinstance(dataset, GenericDataset):
        splits = tuple(dataset.description.splits)
    else:
        splits = ("train", "validation")
    _, by_name = _matcher(behaviours)
    match_names = behaviours is not None and behaviours.by_name
    classes = dataset.action_classes() if dataset.single_label else None
    spans, seen = [], set()
    for name in splits:
        for segment in dataset.segments(name, require_labels=True):
            if segment.video_id not in videos or segment.narration_id in seen:
                continue
            seen.add(segment.narration_id)
            labels = [
                _named(dataset, classes, action, by_name, segment) if match_names else action
                for action in segment.all_action_ids
            ]
            spans.append(Span(segment.video_id, segment.start, segment.stop, labels[0],
                              segment.narration_id, tuple(labels[1:])))  # fmt: skip
    return spans


def _named(dataset, classes, action: str, by_name: dict, segment) -> str:
    """The behaviour label of a segment's action id when behaviours are matched by name."""
    if classes is not None:
        number = int(action)
        key, display = classes.keys[number], classes.display(number)
    else:  # a verb/noun data set: "verb noun" as its keys read
        verb, noun = (int(part) for part in action.split(":"))
        key = f"{dataset.verbs().keys[verb]} {dataset.nouns().keys[noun]}"
        display = f"{dataset.verbs().display(verb)} {dataset.nouns().display(noun)}"
    found = by_name.get(key.casefold()) or by_name.get(display.casefold())
    if found is None:
        raise AnnotationError(
            segment.source, f"unknown class {key!r} (not one of the behaviours)", line=segment.line
        )
    return found


def read_truth(
    source: Path, behaviours: Behaviours | None, videos: set[str], split: str | None = None,
    *, allow_empty: bool = False,
) -> dict[str, list[Span]]:  # fmt: skip
    """Truth spans by video, from a data set or a plain CSV; an error when a video has none
    (unless ``allow_empty``: a scored stretch may hold no bout)."""
    source = Path(source)
    if not source.exists():
        raise VerbnounError(f"{source}: truth not found")
    is_table = source.is_file() and source.suffix.lower() == ".csv"
    if is_table:
        spans = truth_from_csv(source, behaviours)
    else:
        spans = truth_from_dataset(source, behaviours, videos, split)
    by_video: dict[str, list[Span]] = {v: [] for v in videos}
    for span in spans:
        if span.video_id in by_video:
            by_video[span.video_id].append(span)
    empty = sorted(v for v, s in by_video.items() if not s)
    if empty and not allow_empty:
        raise VerbnounError(
            f"{source}: no labelled segments of video {empty[0]} (a human scored only some "
            "videos or stretches? say which with --scored FILE)"
        )
    return by_video


@dataclass(frozen=True)
class VideoFacts:
    video_id: str
    fps: float
    num_frames: int


def read_prediction(path: Path) -> tuple[dict[str, list[Span]], dict[str, VideoFacts]]:
    """Predicted spans by video from a ``segments.csv``, and the videos' frame counts from the
    ``videos.csv`` beside it (written by ``annotate``)."""
    table = read_csv(
        path, required=("video_id", "start_frame", "stop_frame"), error=AnnotationError
    )
    facts_path = path.with_name("videos.csv")
    facts_table = read_csv(
        facts_path, required=("video_id", "fps", "num_frames"), error=AnnotationError
    )
    facts = {}
    for line, row in facts_table.rows:
        try:
            facts[row["video_id"]] = VideoFacts(
                row["video_id"], float(row["fps"]), int(row["num_frames"])
            )
        except ValueError:
            raise AnnotationError(facts_path, "bad fps or num_frames", line=line) from None
    spans: dict[str, list[Span]] = {v: [] for v in facts}
    for line, row in table.rows:
        video = row["video_id"]
        if video not in facts:
            raise AnnotationError(path, f"video {video!r} not in {facts_path.name}", line=line)
        fps = facts[video].fps
        if row.get("action_class", "").strip():
            label = row["action_class"].strip()
        elif row.get("verb_class", "").strip() and row.get("noun_class", "").strip():
            label = f"{row['verb_class'].strip()}:{row['noun_class'].strip()}"
        else:
            raise AnnotationError(path, "no action_class nor verb_class/noun_class", line=line)
        try:
            first, end = int(row["start_frame"]), int(row["stop_frame"])
        except ValueError:
            raise AnnotationError(path, "start_frame/stop_frame not integers", line=line) from None
        spans[video].append(Span(video, first / fps, end / fps, label, f"{path}:{line}"))
    return spans, facts


def score_frames(
    pred: dict[str, list[str]], truth: dict[str, list[str]], *, per_class: bool = True
) -> dict:
    """Metrics of frame labels by video (same videos, same lengths)."""
    videos = sorted(truth)
    return segmentation_metrics([(pred[v], truth[v]) for v in videos], per_class=per_class)


def majority_baseline(truth: dict[str, list[str]]) -> tuple[str, dict]:
    """The majority class (over true frames) and the metrics of labelling every frame with it."""
    label = majority_labels(list(truth.values()))
    pred = {v: [label] * len(t) for v, t in truth.items()}
    return label, score_frames(pred, truth, per_class=False)


def load_behaviours(folder: Path) -> Behaviours | None:
    """The behaviours of a run folder (``behaviours.json``), or ``None`` when absent."""
    from verbnoun.fileio import read_json

    path = folder / "behaviours.json"
    if not path.is_file():
        return None
    data = read_json(path)
    try:
        return Behaviours(
            labels=tuple(data["labels"]), names=tuple(data["names"]),
            option_texts=tuple(data["option_texts"]), kind=data["kind"], source=data["source"],
            by_name=bool(data.get("by_name")),
        )  # fmt: skip
    except (KeyError, TypeError) as error:
        raise VerbnounError(f"{path}: not a behaviours file ({error})") from None


def unsmoothed_frames(folder: Path, facts: dict[str, VideoFacts], behaviours: Behaviours):
    """Frame labels of the unsmoothed per-window answers of a run folder, or ``None``."""
    from verbnoun.annotate.labels import frame_labels, load_answers
    from verbnoun.annotate.smoothing import SmoothingSettings
    from verbnoun.fileio import read_json

    if not (folder / "config.json").is_file():
        return None
    spans = bool(read_json(folder / "config.json").get("segments"))
    answers = load_answers(folder, behaviours)
    if set(facts) - set(answers):
        return None
    raw = SmoothingSettings(method="none")
    return {v: frame_labels(answers[v], f.num_frames, raw, spans) for v, f in facts.items()}


def score_run(
    pred: Path, truth: Path, split: str | None = None, *, scored: Path | None = None,
    agreement: AgreementSettings | None = None,
) -> tuple[dict, dict[str, list[str]]]:  # fmt: skip
    """Metrics of a ``segments.csv`` against the truth, with the majority-class baseline and
    (when the run's windows are beside it) the unsmoothed answers; and the truth's frames.
    ``scored``: a CSV of the stretches a human scored (only they are compared); ``agreement``:
    kappa, MCC, ... with bootstrap intervals (:mod:`verbnoun.annotate.agreement`)."""
    from verbnoun.annotate import agreement as agree

    pred = Path(pred)
    if not pred.is_file():
        raise VerbnounError(f"{pred}: prediction file not found")
    spans, facts = read_prediction(pred)
    behaviours = load_behaviours(pred.parent)
    ranges = None if scored is None else agree.scored_frames(agree.read_scored(scored), facts)
    videos = set(facts) if ranges is None else set(ranges)
    truth_spans = read_truth(Path(truth), behaviours, videos, split, allow_empty=bool(ranges))
    truth_frames = {v: rasterise(truth_spans.get(v, []), f.num_frames, f.fps)
                    for v, f in facts.items()}  # fmt: skip
    pred_frames = {v: rasterise(spans[v], f.num_frames, f.fps) for v, f in facts.items()}
    pieces = agree.make_pieces(pred_frames, truth_frames, ranges)
    compared = {p.name: p.truth for p in pieces}
    result: dict = {
        "prediction": str(pred),
        "truth": str(truth),
        "scored": {
            "file": None if scored is None else str(scored), "videos": len(videos),
            "stretches": len(pieces), "frames": sum(len(p.truth) for p in pieces),
            "seconds": round(sum(len(p.truth) / facts[p.video_id].fps for p in pieces), 3),
        },
        "model": score_frames({p.name: p.pred for p in pieces}, compared),
    }  # fmt: skip
    if behaviours is not None:
        raw = unsmoothed_frames(pred.parent, facts, behaviours)
        if raw is not None:
            raw_pieces = agree.make_pieces(raw, truth_frames, ranges)
            result["unsmoothed"] = score_frames({p.name: p.pred for p in raw_pieces}, compared)
    label, metrics = majority_baseline(compared)
    result["majority"] = {"label": label, **metrics}
    truth_sets = {v: rasterise_sets(truth_spans.get(v, []), f.num_frames, f.fps)
                  for v, f in facts.items()}  # fmt: skip
    pred_sets = {v: rasterise_sets(spans[v], f.num_frames, f.fps) for v, f in facts.items()}
    if any(len(s) > 1 for p in pieces for sets in (truth_sets, pred_sets)
           for s in sets[p.video_id][p.first : p.end]):  # fmt: skip
        options = {"replicates": agreement.replicates, "seed": agreement.seed} if agreement else {}
        result["multilabel"] = frame_multilabel(pieces, truth_sets, pred_sets=pred_sets, **options)
    if agreement is not None:
        names = {x: behaviours.name(x) for x in behaviours.labels} if behaviours else None
        result["agreement"] = agree.agreement(pieces, agreement, names)
    return result, truth_frames
