"""Answers to labels: a run folder's recorded window answers -> frame labels -> segments.

* :func:`load_answers` reads every shard's ``windows*.jsonl`` once (first answer of a window
  wins) into a compact :class:`WindowAnswers` per video (scores as a float32 matrix);
* :func:`frame_labels` turns them into one label per frame (the smoothing's choice per window,
  spread over the frames nearest its centre, or over its span for given segments);
* :func:`derive` gives a video's :class:`VideoLabels`: smoothed and unsmoothed frame labels
  (short runs absorbed after ``min_duration``) and the segments, each with its confidence (mean
  probability of its label over its windows), its windows and a narration. With several
  behaviours per window (``smoothing.several``, a threshold), each frame holds a set
  (:attr:`VideoLabels.sets`) and the segments are each behaviour's runs, which may overlap in
  time (sorted by first frame, then the vocabulary's order).

Nothing here writes a file: :mod:`verbnoun.annotate.outputs` writes what a person uses, and
:mod:`verbnoun.annotate.scoring` scores the unsmoothed labels.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from verbnoun import runs
from verbnoun.annotate.metrics import BACKGROUND
from verbnoun.annotate.metrics import runs as label_runs
from verbnoun.annotate.smoothing import (
    SmoothingSettings,
    absorb_short,
    frames_from_spans,
    frames_from_windows,
    window_labels,
    window_sets,
)
from verbnoun.annotate.vocabulary import Behaviours
from verbnoun.errors import VerbnounError


@dataclass
class VideoLabels:
    """A video's frame labels (smoothed and unsmoothed) and its segments."""

    video_id: str
    fps: float
    num_frames: int
    frames: list[str]
    unsmoothed: list[str]
    segments: list[dict]
    sets: list[frozenset[str]] | None = None  # several behaviours per window: each frame's set


@dataclass
class WindowAnswers:
    """A video's recorded answers in window order, compact: scores as a float32 matrix over
    ``labels`` (NaN: not scored), so memory is a few hundred bytes per window."""

    labels: list[str]
    index: np.ndarray
    first: np.ndarray
    end: np.ndarray
    chosen: list[str]
    scores: np.ndarray
    texts: list[str | None]

    @property
    def centres(self) -> np.ndarray:
        return (self.first + self.end - 1) // 2


def load_answers(out: Path, behaviours: Behaviours) -> dict[str, WindowAnswers]:
    """Every video's answers from the run folder's windows files, in one pass (first wins)."""
    column = {label: i for i, label in enumerate(behaviours.labels)}
    rows: dict[str, dict[int, tuple]] = {}
    for record in runs.merged(out, "windows", "malformed window record"):
        mine = rows.setdefault(record["video_id"], {})
        if record["index"] in mine:
            continue
        vector = np.full(len(column), np.nan, dtype=np.float32)
        extra = {}
        for label, value in record["scores"].items():
            if value is None:
                continue
            if label in column:
                vector[column[label]] = value
            else:
                extra[label] = value
        text = record.get("extra", {}).get("answer")
        mine[record["index"]] = (record["first"], record["end"], record["label"], vector, extra,
                                 text)  # fmt: skip
    result = {}
    for video, by_index in rows.items():
        order = sorted(by_index)
        extras = sorted({x for i in order for x in by_index[i][4]})
        labels = list(behaviours.labels) + extras
        matrix = np.full((len(order), len(labels)), np.nan, dtype=np.float32)
        for row, i in enumerate(order):
            matrix[row, : len(column)] = by_index[i][3]
            for label, value in by_index[i][4].items():
                matrix[row, len(column) + extras.index(label)] = value
        result[video] = WindowAnswers(
            labels=labels,
            index=np.array(order, dtype=np.int64),
            first=np.array([by_index[i][0] for i in order], dtype=np.int64),
            end=np.array([by_index[i][1] for i in order], dtype=np.int64),
            chosen=[by_index[i][2] for i in order],
            scores=matrix,
            texts=[by_index[i][5] for i in order],
        )
    return result


def frame_labels(
    answers: WindowAnswers, num_frames: int, smoothing: SmoothingSettings, spans: bool
) -> list[str]:
    """Frame labels of a video's answers (given segments with ``spans``), before the minimum
    duration."""
    chosen = window_labels(answers.scores, answers.labels, smoothing)
    if spans:
        return frames_from_spans(
            chosen, list(zip(answers.first.tolist(), answers.end.tolist(), strict=True)), num_frames
        )
    return frames_from_windows(chosen, answers.centres.tolist(), num_frames)


def derive(
    video, answers: WindowAnswers, behaviours: Behaviours, smoothing: SmoothingSettings
) -> VideoLabels:
    """Frame labels and segments of one planned video from its answers."""
    info = video.info
    spans = video.source.spans is not None
    raw = SmoothingSettings(method="none", floor=smoothing.floor)
    unsmoothed = frame_labels(answers, info.num_frames, raw, spans)
    if smoothing.several is not None:
        return _derive_sets(video, answers, behaviours, smoothing, unsmoothed)
    smoothed = absorb_short(
        frame_labels(answers, info.num_frames, smoothing, spans),
        round(smoothing.min_duration * info.fps),
    )
    segments = [_segment(run, answers, behaviours, smoothing.floor)
                for run in label_runs(smoothed) if run.label != BACKGROUND]  # fmt: skip
    return VideoLabels(info.video_id, info.fps, info.num_frames, smoothed, unsmoothed, segments)


def _segment(run, answers: WindowAnswers, behaviours: Behaviours, floor: float) -> dict:
    """A segment of ``run``: its confidence (mean probability of its label over the windows
    whose centre lies in it), those windows and a narration."""
    centres = answers.centres
    inside = np.flatnonzero((centres >= run.start) & (centres < run.end))
    column = answers.labels.index(run.label)
    values = answers.scores[inside, column]
    probs = np.exp(np.where(np.isnan(values), math.log(floor), values))
    texts = Counter(answers.texts[i] for i in inside
                    if answers.texts[i] and answers.chosen[i] == run.label)  # fmt: skip
    return {
        "label": run.label, "first": run.start, "end": run.end,
        "confidence": round(float(probs.mean()), 4) if len(inside) else None,
        "windows": answers.index[inside].tolist(),
        "narration": texts.most_common(1)[0][0] if texts else behaviours.name(run.label),
    }  # fmt: skip


def _derive_sets(
    video, answers: WindowAnswers, behaviours: Behaviours, smoothing: SmoothingSettings,
    unsmoothed: list[str],
) -> VideoLabels:  # fmt: skip
    """Several behaviours per window: each behaviour an on/off track of its own (short runs
    absorbed after ``min_duration``), its runs the segments (they may overlap)."""
    info = video.info
    scored = np.isfinite(answers.scores).sum(axis=1)
    if len(scored) and int(scored.max()) < 2:
        raise VerbnounError(
            f"--behaviours-per-window several needs probabilities over the behaviours; the "
            f"answers of video {info.video_id} score one behaviour each (a model or mode that "
            "names one behaviour, e.g. oracle or --mode open)"
        )
    chosen = window_sets(answers.scores, answers.labels, smoothing)
    if video.source.spans is not None:
        empty: frozenset[str] = frozenset()
        frame_sets = [empty] * info.num_frames
        for on, first, end in zip(chosen, answers.first.tolist(), answers.end.tolist(),
                                  strict=True):  # fmt: skip
            frame_sets[max(first, 0) : min(end, info.num_frames)] = [on] * (
                min(end, info.num_frames) - max(first, 0)
            )
    else:
        frame_sets = frames_from_windows(chosen, answers.centres.tolist(), info.num_frames)
    min_frames = round(smoothing.min_duration * info.fps)
    rank = {label: i for i, label in enumerate(answers.labels)}
    present = sorted({x for s in chosen for x in s}, key=rank.__getitem__)
    segments, on_frames = [], [set() for _ in range(info.num_frames)]
    for label in present:
        track = absorb_short([label if label in s else BACKGROUND for s in frame_sets],
                             min_frames)  # fmt: skip
        for run in label_runs(track):
            if run.label == BACKGROUND:
                continue
            segments.append(_segment(run, answers, behaviours, smoothing.floor))
            for f in range(run.start, run.end):
                on_frames[f].add(label)
    segments.sort(key=lambda s: (s["first"], rank[s["label"]]))
    sets = [frozenset(s) for s in on_frames]
    # one label per frame (for the one-label figures): the unsmoothed answer when it is on,
    # else the frame's first behaviour in the vocabulary's order
    frames = [u if u in s else (min(s, key=rank.__getitem__) if s else BACKGROUND)
              for u, s in zip(unsmoothed, sets, strict=True)]  # fmt: skip
    return VideoLabels(info.video_id, info.fps, info.num_frames, frames, unsmoothed, segments,
                       sets)  # fmt: skip
