"""From per-window scores to frame labels and segments: each step a setting.

1. **Window labels.** ``method="none"``: each window's best-scoring label (the unsmoothed
   answers). ``method="viterbi"``: the most likely label sequence under a sticky Markov prior,
   emissions the windows' log-probabilities and, between consecutive windows, probability
   ``1 - switch`` of keeping the label and ``switch`` spread evenly over the others; a label the
   model did not score gets probability ``floor``.
2. **Background.** With ``min_confidence`` > 0, a window whose best probability is below it is
   labelled background (nothing the vocabulary names).
3. **Frames.** Every frame takes the label of the window whose centre is nearest (ties: the
   earlier window), so equal neighbours merge into one segment.
4. **Minimum duration.** Runs shorter than ``min_duration`` seconds are absorbed, shortest first,
   by their longer neighbour.

**Several behaviours per window** (``several``: a probability threshold in (0, 1]; ``None``, the
default, is one behaviour per window as above): :func:`window_sets` turns on, in each window,
every behaviour whose probability (the window's scores renormalised as in step 1, rounded to 4
decimals) reaches the threshold; when none reaches it, the window's most probable behaviour alone
(so a window is never left empty by the threshold; ``min_confidence`` still makes it empty). The
Viterbi step does not apply; each behaviour is then its own on/off track, whose short runs step 4
absorbs (:func:`verbnoun.annotate.labels.derive`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from verbnoun.annotate.metrics import BACKGROUND, Run, runs
from verbnoun.errors import VerbnounError

METHODS = ("none", "viterbi")


@dataclass(frozen=True)
class SmoothingSettings:
    """How window answers become segments (none of it changes what the model is asked)."""

    method: str = "viterbi"
    switch: float = 0.1  # prior probability of a label change between consecutive windows
    min_duration: float = 0.0  # seconds
    min_confidence: float = 0.0  # below it a window is background
    floor: float = 1e-3  # probability of a label a window's answer did not score
    several: float | None = None  # threshold of several behaviours per window; None: one

    def check(self) -> None:
        if self.method not in METHODS:
            raise VerbnounError(
                f"unknown smoothing {self.method!r}; choose one of {', '.join(METHODS)}"
            )
        if not 0 < self.switch < 1:
            raise VerbnounError(f"--switch must be between 0 and 1, got {self.switch}")
        if self.min_duration < 0:
            raise VerbnounError(f"--min-duration must be >= 0, got {self.min_duration}")
        if not 0 <= self.min_confidence < 1:
            raise VerbnounError(f"--min-confidence must be in [0, 1), got {self.min_confidence}")
        if self.several is not None and not 0 < self.several <= 1:
            raise VerbnounError(f"--threshold must be in (0, 1], got {self.several}")


def log_probabilities(
    answers: Sequence[dict[str, float]] | np.ndarray, labels: Sequence[str], floor: float
) -> np.ndarray:
    """``(windows, labels)`` log-probabilities: each answer's scores (log-probabilities of the
    labels it scored; a dict per window, or a matrix over ``labels`` with NaN where not scored)
    renormalised with ``floor`` for the labels it did not score."""
    if isinstance(answers, np.ndarray):
        matrix = np.asarray(answers, dtype=np.float64).copy()
        matrix[~np.isfinite(matrix)] = math.log(floor)
    else:
        index = {label: i for i, label in enumerate(labels)}
        matrix = np.full((len(answers), len(labels)), math.log(floor), dtype=np.float64)
        for row, scores in enumerate(answers):
            for label, value in scores.items():
                if label in index and value is not None and math.isfinite(value):
                    matrix[row, index[label]] = value
    matrix -= np.logaddexp.reduce(matrix, axis=1, keepdims=True)
    return matrix


def viterbi(log_emissions: np.ndarray, switch: float) -> np.ndarray:
    """The most likely state sequence under a sticky prior (uniform start); ties: lowest."""
    steps, states = log_emissions.shape
    if states == 1:
        return np.zeros(steps, dtype=np.int64)
    stay, move = math.log(1.0 - switch), math.log(switch / (states - 1))
    score = log_emissions[0].copy()
    back = np.zeros((steps, states), dtype=np.int64)
    for t in range(1, steps):
        best = int(np.argmax(score))
        from_best = score[best] + move
        kept = score + stay
        take_best = from_best > kept
        back[t] = np.where(take_best, best, np.arange(states))
        score = np.where(take_best, from_best, kept) + log_emissions[t]
    path = np.empty(steps, dtype=np.int64)
    path[-1] = int(np.argmax(score))
    for t in range(steps - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def window_labels(
    answers: Sequence[dict[str, float]] | np.ndarray,
    labels: Sequence[str],
    settings: SmoothingSettings,
) -> list[str]:
    """One label per window (background where the confidence is too low)."""
    if len(answers) == 0:
        return []
    if not labels:
        return [BACKGROUND] * len(answers)
    matrix = log_probabilities(answers, labels, settings.floor)
    if settings.method == "viterbi":
        path = viterbi(matrix, settings.switch)
    else:
        path = np.argmax(matrix, axis=1)
    result = [labels[i] for i in path]
    if settings.min_confidence > 0:
        best = np.exp(matrix.max(axis=1))
        result = [
            BACKGROUND if p < settings.min_confidence else x
            for x, p in zip(result, best, strict=True)
        ]
    return result


def window_sets(
    answers: Sequence[dict[str, float]] | np.ndarray,
    labels: Sequence[str],
    settings: SmoothingSettings,
) -> list[frozenset[str]]:
    """The behaviours on in each window (``settings.several`` is the threshold): those whose
    probability reaches it, else the most probable one; empty where the best probability is
    below ``min_confidence``."""
    assert settings.several is not None
    if len(answers) == 0:
        return []
    if not labels:
        return [frozenset()] * len(answers)
    probs = np.round(np.exp(log_probabilities(answers, labels, settings.floor)), 4)
    result = []
    for row in probs:
        best = int(np.argmax(row))
        if row[best] < settings.min_confidence:
            result.append(frozenset())
            continue
        on = frozenset(labels[i] for i in np.flatnonzero(row >= settings.several))
        result.append(on or frozenset({labels[best]}))
    return result


def frames_from_windows(
    labels: Sequence[str], centres: Sequence[float], num_frames: int
) -> list[str]:
    """Each frame's label: that of the window with the nearest centre frame (ties: earlier)."""
    if not labels:
        return [BACKGROUND] * num_frames
    centres_array = np.asarray(centres, dtype=np.float64)
    bounds = (centres_array[:-1] + centres_array[1:]) / 2.0  # frame f goes right when f > bound
    owner = np.searchsorted(bounds, np.arange(num_frames), side="left")
    return [labels[i] for i in owner]


def frames_from_spans(
    labels: Sequence[str], spans: Sequence[tuple[int, int]], num_frames: int
) -> list[str]:
    """Frame labels of given segments ``[first, end)`` (later segments win overlaps)."""
    frames = [BACKGROUND] * num_frames
    for label, (first, end) in zip(labels, spans, strict=True):
        for f in range(max(first, 0), min(end, num_frames)):
            frames[f] = label
    return frames


def absorb_short(frames: list[str], min_frames: int) -> list[str]:
    """Runs shorter than ``min_frames`` take their longer neighbour's label, shortest first."""
    if min_frames <= 1:
        return list(frames)
    parts: list[Run] = runs(frames)
    while len(parts) > 1:
        short = [i for i, r in enumerate(parts) if r.end - r.start < min_frames]
        if not short:
            break
        i = min(short, key=lambda k: (parts[k].end - parts[k].start, k))
        neighbours = [j for j in (i - 1, i + 1) if 0 <= j < len(parts)]
        j = max(neighbours, key=lambda k: (parts[k].end - parts[k].start, -k))
        lo, hi = min(i, j), max(i, j)
        merged = Run(parts[j].label, parts[lo].start, parts[hi].end)
        parts[lo : hi + 1] = [merged]
        # merging may make two equal labels adjacent: join them
        joined: list[Run] = []
        for r in parts:
            if joined and joined[-1].label == r.label:
                joined[-1] = Run(r.label, joined[-1].start, r.end)
            else:
                joined.append(r)
        parts = joined
    out: list[str] = []
    for r in parts:
        out += [r.label] * (r.end - r.start)
    return out
