"""Answers to labels: a run folder's recorded window answers -> frame labels -> segments.

* :func:`load_answers` reads every shard's ``windows*.jsonl`` once (first answer of a window
  wins) into a compact :class:`WindowAnswers` per video (scores as a float32 matrix);
* :func:`frame_labels` turns them into one label per frame (the smoothing's choice per window,
  spread over the frames nearest its centre, or over its span for given segments);
* :func:`derive` gives a video's :class:`VideoLabels`: smoothed and unsmoothed frame labels
  (short runs absorbed after ``min_duration``) and the segments, each with its confidence (mean
  probability of its label over its windows), its windows and a narration.

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
)
from verbnoun.annotate.vocabulary import Behaviours


@dataclass
class VideoLabels:
    """A video's frame labels (smoothed and unsmoothed) and its segments."""

    video_id: str
    fps: float
    num_frames: int
    frames: list[str]
    unsmoothed: list[str]
    segments: list[dict]


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
    smoothed = absorb_short(
        frame_labels(answers, info.num_frames, smoothing, spans),
        round(smoothing.min_duration * info.fps),
    )
    centres = answers.centres
    segments = []
    for run in label_runs(smoothed):
        if run.label == BACKGROUND:
            continue
        inside = np.flatnonzero((centres >= run.start) & (centres < run.end))
        column = answers.labels.index(run.label)
        values = answers.scores[inside, column]
        probs = np.exp(np.where(np.isnan(values), math.log(smoothing.floor), values))
        texts = Counter(answers.texts[i] for i in inside
                        if answers.texts[i] and answers.chosen[i] == run.label)  # fmt: skip
        segments.append({
            "label": run.label, "first": run.start, "end": run.end,
            "confidence": round(float(probs.mean()), 4) if len(inside) else None,
            "windows": answers.index[inside].tolist(),
            "narration": texts.most_common(1)[0][0] if texts else behaviours.name(run.label),
        })  # fmt: skip
    return VideoLabels(info.video_id, info.fps, info.num_frames, smoothed, unsmoothed, segments)
