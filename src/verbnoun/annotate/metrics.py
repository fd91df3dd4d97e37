"""Temporal action segmentation metrics, by their standard definitions.

Inputs are frame-wise label sequences (one label per video frame; ``""`` is background, a frame
no segment covers). Definitions, as in MS-TCN's evaluation code (Farha and Gall, CVPR 2019):

* **frame accuracy**: share of frames whose predicted label equals the true one (background
  included), over all frames of all videos;
* **segmental edit score** (Lea et al., CVPR 2017): segments are maximal runs of one label,
  background runs removed; ``100 * (1 - levenshtein(pred, true) / max(len(pred), len(true)))``
  over the two sequences of segment labels, averaged over videos (100 when both are empty);
* **F1@k**: each predicted segment is matched to the true segment of the same label with the
  highest IoU (frame ranges ``[start, end)``); it is a true positive when that IoU >= k/100 and
  the true segment was not matched before, else a false positive; unmatched true segments are
  false negatives. Counts are summed over videos, then ``F1 = 2PR / (P + R)`` (0 when both are 0).

Per class: frame recall and precision of the class, and F1@k counting only that class's
segments. All numbers are percentages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

BACKGROUND = ""
THRESHOLDS = (10, 25, 50)


@dataclass(frozen=True)
class Run:
    """A maximal run of one label: frames ``[start, end)``."""

    label: str
    start: int
    end: int


def runs(labels: Sequence[str]) -> list[Run]:
    """The maximal runs of equal labels, background included, in order."""
    if len(labels) == 0:
        return []
    array = np.asarray(labels, dtype=object)
    change = np.flatnonzero(array[1:] != array[:-1]) + 1
    starts, ends = np.r_[0, change], np.r_[change, len(array)]
    return [Run(array[a], int(a), int(b)) for a, b in zip(starts, ends, strict=True)]


def segments_of(labels: Sequence[str]) -> list[Run]:
    """The non-background runs (the segments the edit score and F1 compare)."""
    return [r for r in runs(labels) if r.label != BACKGROUND]


def levenshtein(a: Sequence[str], b: Sequence[str]) -> int:
    """Edit distance between two label sequences (insert, delete, substitute: cost 1)."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        current = [i] + [0] * len(b)
        for j, y in enumerate(b, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y))
        previous = current
    return previous[-1]


def edit_score(pred: Sequence[str], truth: Sequence[str]) -> float:
    """Lea et al.'s segmental edit score of one video, in percent."""
    p = [r.label for r in segments_of(pred)]
    t = [r.label for r in segments_of(truth)]
    if not p and not t:
        return 100.0
    return 100.0 * (1.0 - levenshtein(p, t) / max(len(p), len(t)))


def f1_counts(
    pred: Sequence[str], truth: Sequence[str], threshold: float, label: str | None = None
) -> tuple[int, int, int]:
    """``(tp, fp, fn)`` of one video at IoU ``threshold`` (0-1); ``label``: that class only."""
    p = [r for r in segments_of(pred) if label is None or r.label == label]
    t = [r for r in segments_of(truth) if label is None or r.label == label]
    return _match(p, t, threshold)


def _match(p: Sequence[Run], t: Sequence[Run], threshold: float) -> tuple[int, int, int]:
    matched = match_segments(p, t, threshold)
    tp = sum(1 for j in matched if j >= 0)
    return tp, len(p) - tp, len(t) - tp


def match_segments(p: Sequence[Run], t: Sequence[Run], threshold: float) -> list[int]:
    """For each predicted segment, the index of the true segment it matches at IoU
    ``threshold`` (a true positive), or -1 (a false positive); F1@k's matching rule above.
    True segments no prediction matched are the false negatives."""
    hit = [False] * len(t)
    matched = []
    for seg in p:
        best, best_iou = -1, -1.0
        for j, other in enumerate(t):
            if other.label != seg.label:
                continue
            inter = min(seg.end, other.end) - max(seg.start, other.start)
            union = max(seg.end, other.end) - min(seg.start, other.start)
            iou = max(inter, 0) / union
            if iou > best_iou:
                best, best_iou = j, iou
        if best >= 0 and best_iou >= threshold and not hit[best]:
            hit[best] = True
            matched.append(best)
        else:
            matched.append(-1)
    return matched


def f1_from_counts(tp: int, fp: int, fn: int) -> float:
    """F1 in percent from summed counts (0 when precision + recall is 0)."""
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    if precision + recall == 0:
        return 0.0
    return 100.0 * 2 * precision * recall / (precision + recall)


def segmentation_metrics(
    videos: Sequence[tuple[Sequence[str], Sequence[str]]], *, per_class: bool = True
) -> dict:
    """Metrics over videos given as ``(pred, truth)`` frame-label pairs of equal length."""
    correct = total = 0
    edits = []
    counts = {k: [0, 0, 0] for k in THRESHOLDS}
    for pred, truth in videos:
        if len(pred) != len(truth):
            raise ValueError(f"prediction has {len(pred)} frames, the truth {len(truth)}")
        p, t = np.asarray(pred, dtype=object), np.asarray(truth, dtype=object)
        correct += int((p == t).sum())
        total += len(t)
        edits.append(edit_score(pred, truth))
        p_segs, t_segs = segments_of(pred), segments_of(truth)
        for k in THRESHOLDS:
            for slot, value in enumerate(_match(p_segs, t_segs, k / 100)):
                counts[k][slot] += value
    result: dict = {
        "videos": len(videos),
        "frames": total,
        "frame_accuracy": 100.0 * correct / total if total else 0.0,
        "edit": float(np.mean(edits)) if edits else 0.0,
        **{f"f1@{k}": f1_from_counts(*counts[k]) for k in THRESHOLDS},
        "segments": {
            "predicted": sum(len(segments_of(p)) for p, _ in videos),
            "true": sum(len(segments_of(t)) for _, t in videos),
        },
    }
    if per_class:
        result["per_class"] = per_class_metrics(videos)
    return result


def per_class_metrics(videos: Sequence[tuple[Sequence[str], Sequence[str]]]) -> dict:
    """Per true or predicted class: frames, frame recall and precision, F1@k of its segments."""
    prepared = []
    for pred, truth in videos:
        p, t = np.asarray(pred, dtype=object), np.asarray(truth, dtype=object)
        prepared.append((p, t, segments_of(pred), segments_of(truth)))
    labels = sorted({x for p, t, _, _ in prepared for x in (*set(p), *set(t))} - {BACKGROUND})
    table = {}
    for label in labels:
        tp_frames = true_frames = pred_frames = 0
        counts = {k: [0, 0, 0] for k in THRESHOLDS}
        for p, t, p_segs, t_segs in prepared:
            pm, tm = p == label, t == label
            tp_frames += int((pm & tm).sum())
            true_frames += int(tm.sum())
            pred_frames += int(pm.sum())
            mine_p = [r for r in p_segs if r.label == label]
            mine_t = [r for r in t_segs if r.label == label]
            for k in THRESHOLDS:
                for slot, value in enumerate(_match(mine_p, mine_t, k / 100)):
                    counts[k][slot] += value
        table[label] = {
            "true_frames": true_frames,
            "predicted_frames": pred_frames,
            "frame_recall": 100.0 * tp_frames / true_frames if true_frames else None,
            "frame_precision": 100.0 * tp_frames / pred_frames if pred_frames else None,
            **{f"f1@{k}": f1_from_counts(*counts[k]) for k in THRESHOLDS},
        }
    return table


def majority_labels(truths: Sequence[Sequence[str]]) -> str:
    """The most frequent non-background label over all true frames (ties: the smallest)."""
    counts: dict[str, int] = {}
    for truth in truths:
        for label in truth:
            if label != BACKGROUND:
                counts[label] = counts.get(label, 0) + 1
    if not counts:
        return BACKGROUND
    return min(counts, key=lambda label: (-counts[label], label))
