"""Agreement of a prediction with a human's scoring, each figure with a bootstrap interval.

In: the frame labels of the prediction and of the truth (:mod:`verbnoun.annotate.scoring`), and
optionally the stretches a human actually scored. Out: a JSON-ready dict (``scores.json``'s
``agreement``), overall and per behaviour.

**Where a human scored.** Without ``--scored``, the truth covers whole videos and frames no truth
bout covers are background (no behaviour). With ``--scored FILE`` (a CSV ``video_id,start,stop``,
seconds or ``HH:MM:SS.ff``, one row per scored stretch; overlapping rows merge), only those
stretches are scored: inside them a frame no truth bout covers is background, outside them
nothing is compared (unlabelled, not background), and videos without a scored stretch are left
out. Each scored stretch is compared as its own sequence (a *piece*): segments are cut at its
edges, and the edit score is averaged over pieces as it is over videos without ``--scored``.

**Figures.** Frame by frame over the scored frames: Cohen's kappa and Matthews correlation
(overall: all behaviours and background as classes; per behaviour: that behaviour against
everything else), precision, recall and F1 (per behaviour; overall their mean over the behaviours
seen in the truth or the prediction, an undefined value counting 0), all by scikit-learn. Of
segments: F1@{10,25,50} and the edit score (:mod:`verbnoun.annotate.metrics`); per behaviour the
edit score compares only that behaviour's segments, so it says whether the number of its bouts
agrees (pieces where it appears in neither are skipped). Kappa and MCC are in [-1, 1]; the others
are percentages.

**Intervals.** A percentile bootstrap (``replicates`` resamples, 95 %, a fixed ``seed``: the same
input gives the same interval). The resampled unit is, by default, the *bout*: each true bout with
the frames from its start to the next true bout's start (the first also takes the frames before
it; a piece without a true bout is one unit), the predicted segments matched to it, and the
unmatched predicted segments whose middle frame lies in it. Frames are not independent (the
neighbours of a frame are nearly the same picture), so resampling frames would give intervals far
too narrow; a person usually scores a few minutes of one or two videos, so resampling videos would
give none; a bout with what follows it is the smallest stretch that keeps a bout, its boundary
errors and the segments predicted over it together. Bouts of one video share the animal and the
camera, so this interval describes other bouts like these, not other animals: with many scored
videos, ``unit="video"`` resamples whole videos instead. Every figure is a function of sums over
units (confusion counts, matched segments, alignment operations), so a resample is a weighted sum
and all resamples are computed at once; with every unit taken once the sums give back exactly the
point estimates.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from verbnoun.annotate.metrics import BACKGROUND, THRESHOLDS, Run, match_segments, segments_of
from verbnoun.errors import AnnotationError, VerbnounError

UNITS = ("bout", "video")
FRAME_METRICS = ("kappa", "mcc", "precision", "recall", "f1")
SEGMENT_METRICS = (*(f"f1@{k}" for k in THRESHOLDS), "edit")
METRICS = FRAME_METRICS + SEGMENT_METRICS
FEW_UNITS = 10  # fewer units than this: the intervals say little, and the output says so


@dataclass(frozen=True)
class AgreementSettings:
    """How the intervals are drawn (``annotate score --bootstrap/--seed/--unit``)."""

    replicates: int = 1000  # 0: point estimates only
    seed: int = 0
    unit: str = "bout"  # or "video"
    confidence: float = 0.95

    def check(self) -> None:
        if self.replicates < 0:
            raise VerbnounError(f"--bootstrap must be >= 0, got {self.replicates}")
        if self.unit not in UNITS:
            raise VerbnounError(f"unknown bootstrap unit {self.unit!r}; choose bout or video")
        if not 0 < self.confidence < 1:
            raise VerbnounError(f"confidence must be between 0 and 1, got {self.confidence}")


@dataclass(frozen=True)
class ScoredRange:
    """A stretch of a video a human scored, in seconds."""

    video_id: str
    start: float
    stop: float
    where: str  # file:line


def read_scored(path: Path) -> list[ScoredRange]:
    """The rows of a ``--scored`` CSV: ``video_id`` (or ``video``), ``start``, ``stop``."""
    from verbnoun.data.ek100 import time_field
    from verbnoun.fileio import read_csv

    path = Path(path)
    if not path.is_file():
        raise VerbnounError(f"{path}: scored-ranges file not found")
    table = read_csv(path, error=AnnotationError)
    video = next((c for c in ("video_id", "video") if c in table.header), None)
    start = next((c for c in ("start", "start_timestamp") if c in table.header), None)
    stop = next((c for c in ("stop", "stop_timestamp") if c in table.header), None)
    if video is None or start is None or stop is None:
        raise AnnotationError(path, "scored ranges need video_id, start and stop columns", line=1)
    ranges = []
    for line, row in table.rows:
        a, b = time_field(row[start], path, line, start), time_field(row[stop], path, line, stop)
        if a < 0:
            raise AnnotationError(path, "start is negative", line=line, field=start)
        if b <= a:
            raise AnnotationError(path, "stop is not after start", line=line)
        ranges.append(ScoredRange(row[video].strip(), a, b, f"{path}:{line}"))
    if not ranges:
        raise AnnotationError(path, "no scored ranges")
    return ranges


def scored_frames(ranges: Sequence[ScoredRange], facts: dict) -> dict[str, list[tuple[int, int]]]:
    """Scored frame ranges ``[first, end)`` by video (merged, in order); ``facts`` maps a video id
    to its ``fps`` and ``num_frames``. A range of an unknown video or past a video's end is an
    error naming its row."""
    by_video: dict[str, list[tuple[int, int]]] = {}
    for r in ranges:
        if r.video_id not in facts:
            raise VerbnounError(f"{r.where}: video {r.video_id!r} is not in the prediction")
        fact = facts[r.video_id]
        first = max(round(r.start * fact.fps), 0)
        end = min(round(r.stop * fact.fps), fact.num_frames)
        if end <= first:
            raise VerbnounError(
                f"{r.where}: {r.start:g}-{r.stop:g} s holds no frame of video {r.video_id!r} "
                f"({fact.num_frames / fact.fps:g} s long)"
            )
        by_video.setdefault(r.video_id, []).append((first, end))
    merged = {}
    for video, spans in by_video.items():
        out: list[list[int]] = []
        for first, end in sorted(spans):
            if out and first <= out[-1][1]:
                out[-1][1] = max(out[-1][1], end)
            else:
                out.append([first, end])
        merged[video] = [(a, b) for a, b in out]
    return merged


@dataclass
class Piece:
    """A scored stretch of one video: frames ``[first, end)`` and their labels."""

    video_id: str
    first: int
    end: int
    pred: list[str]
    truth: list[str]

    @property
    def name(self) -> str:
        return f"{self.video_id}@{self.first}-{self.end}"


def make_pieces(
    pred: dict[str, list[str]],
    truth: dict[str, list[str]],
    ranges: dict[str, list[tuple[int, int]]] | None,
) -> list[Piece]:
    """The pieces to compare: whole videos without ``ranges``, else the scored stretches."""
    pieces = []
    for video in sorted(truth if ranges is None else ranges):
        spans = [(0, len(truth[video]))] if ranges is None else ranges[video]
        for a, b in spans:
            pieces.append(Piece(video, a, b, list(pred[video][a:b]), list(truth[video][a:b])))
    return pieces


def alignment(pred: Sequence[str], truth: Sequence[str]) -> list[tuple[str, int, int]]:
    """One optimal Levenshtein alignment of two label sequences, as its cost-1 operations:
    ``("sub", i, j)`` (prediction i stands for truth j), ``("ins", i, -1)`` (prediction i has no
    counterpart), ``("del", -1, j)`` (truth j was missed). Their number is the edit distance."""
    n, m = len(pred), len(truth)
    # the whole table is kept for the way back: 2 bytes a cell up to 32k segments a side
    dtype = np.int16 if max(n, m) < 2**15 - 1 else np.int32
    table = np.zeros((n + 1, m + 1), dtype=dtype)
    table[0] = np.arange(m + 1)
    steps = np.arange(m + 1, dtype=dtype)
    b = np.asarray(truth, dtype=object)
    for i in range(1, n + 1):
        candidate = np.empty(m + 1, dtype=dtype)
        candidate[0] = i
        candidate[1:] = np.minimum(table[i - 1, 1:] + 1, table[i - 1, :-1] + (b != pred[i - 1]))
        # a run of cost-1 steps along the row: current[j] = min_k candidate[k] + (j - k)
        table[i] = np.minimum.accumulate(candidate - steps) + steps
    ops = []
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and table[i, j] == table[i - 1, j - 1] + (pred[i - 1] != truth[j - 1]):
            if pred[i - 1] != truth[j - 1]:
                ops.append(("sub", i - 1, j - 1))
            i, j = i - 1, j - 1
        elif j > 0 and table[i, j] == table[i, j - 1] + 1:
            ops.append(("del", -1, j - 1))
            j -= 1
        else:
            ops.append(("ins", i - 1, -1))
            i -= 1
    return ops[::-1]


@dataclass
class _UnitStats:
    """Per-unit sums every figure is computed from (U units, C labels, background first)."""

    labels: list[str]
    piece: np.ndarray  # (U,) piece index
    video: np.ndarray  # (U,) video index
    diag: np.ndarray  # (U, C) frames true c and predicted c
    rows: np.ndarray  # (U, C) frames true c
    cols: np.ndarray  # (U, C) frames predicted c
    segments: np.ndarray  # (U, C, K, 3) tp, fp, fn of segments at each threshold
    edit: np.ndarray  # (U, 3) edit distance, predicted segments, true segments
    class_edit: np.ndarray  # (U, C, 3) the same, counting one label's segments only
    units_per_piece: np.ndarray  # (Q,)


def unit_stats(pieces: Sequence[Piece]) -> _UnitStats:
    """Cut the pieces into bout units and tally, per unit, what the figures need."""
    seen = {x for p in pieces for x in (*p.pred, *p.truth)} - {BACKGROUND}
    labels = [BACKGROUND, *sorted(seen)]
    index = {label: i for i, label in enumerate(labels)}
    videos = {v: i for i, v in enumerate(sorted({p.video_id for p in pieces}))}
    c, k = len(labels), len(THRESHOLDS)
    layouts = []
    total = 0
    for q, piece in enumerate(pieces):
        t_segs, p_segs = segments_of(piece.truth), segments_of(piece.pred)
        bounds = np.array([0] + [s.start for s in t_segs[1:]], dtype=np.int64)
        layouts.append((q, piece, t_segs, p_segs, bounds, total))
        total += len(bounds)
    stats = _UnitStats(
        labels=labels, piece=np.zeros(total, np.int64), video=np.zeros(total, np.int64),
        diag=np.zeros((total, c)), rows=np.zeros((total, c)), cols=np.zeros((total, c)),
        segments=np.zeros((total, c, k, 3)), edit=np.zeros((total, 3)),
        class_edit=np.zeros((total, c, 3)),
        units_per_piece=np.array([len(x[4]) for x in layouts], dtype=np.float64),
    )  # fmt: skip
    for q, piece, t_segs, p_segs, bounds, base in layouts:
        stats.piece[base : base + len(bounds)] = q
        stats.video[base : base + len(bounds)] = videos[piece.video_id]
        t = np.array([index[x] for x in piece.truth], dtype=np.int64)
        p = np.array([index[x] for x in piece.pred], dtype=np.int64)
        unit = base + np.searchsorted(bounds, np.arange(len(t)), side="right") - 1
        same = t == p
        np.add.at(stats.diag, (unit[same], t[same]), 1)
        np.add.at(stats.rows, (unit, t), 1)
        np.add.at(stats.cols, (unit, p), 1)

        def home(seg: Run, base=base, bounds=bounds) -> int:  # the unit holding a segment's middle
            return base + int(np.searchsorted(bounds, (seg.start + seg.end - 1) // 2, "right")) - 1

        true_unit = [base + j for j in range(len(t_segs))]
        for label in {s.label for s in (*t_segs, *p_segs)}:
            col = index[label]
            mine_t = [j for j, s in enumerate(t_segs) if s.label == label]
            mine_p = [i for i, s in enumerate(p_segs) if s.label == label]
            for slot, threshold in enumerate(THRESHOLDS):
                matched = match_segments(
                    [p_segs[i] for i in mine_p], [t_segs[j] for j in mine_t], threshold / 100
                )
                for i, j in zip(mine_p, matched, strict=True):
                    if j >= 0:
                        stats.segments[true_unit[mine_t[j]], col, slot, 0] += 1
                    else:
                        stats.segments[home(p_segs[i]), col, slot, 1] += 1
                hit = set(matched)
                for jj, j in enumerate(mine_t):
                    if jj not in hit:
                        stats.segments[true_unit[j], col, slot, 2] += 1
            _tally_edit(stats.class_edit[:, col], [p_segs[i] for i in mine_p],
                        [t_segs[j] for j in mine_t], [true_unit[j] for j in mine_t], home)  # fmt: skip
        _tally_edit(stats.edit, p_segs, t_segs, true_unit, home)
    return stats


def _tally_edit(target: np.ndarray, p_segs, t_segs, true_unit, home) -> None:
    """Add a sequence pair's alignment operations and segment counts to ``target`` (U, 3)."""
    for seg in p_segs:
        target[home(seg), 1] += 1
    for j in range(len(t_segs)):
        target[true_unit[j], 2] += 1
    for op, i, j in alignment([s.label for s in p_segs], [s.label for s in t_segs]):
        target[true_unit[j] if op != "ins" else home(p_segs[i]), 0] += 1


def _divide(num: np.ndarray, den: np.ndarray, empty: float = math.nan) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den != 0, num / np.where(den != 0, den, 1), empty)


def evaluate(weights: np.ndarray, stats: _UnitStats) -> tuple[dict, dict]:
    """Every figure for each row of ``weights`` (R, U: how often each unit is taken): overall
    ``{metric: (R,)}`` and per label ``{metric: (R, C)}`` (column 0, background, unused)."""
    w = np.asarray(weights, dtype=np.float64)
    diag, rows, cols = w @ stats.diag, w @ stats.rows, w @ stats.cols
    n = rows.sum(axis=1)
    trace, rc = diag.sum(axis=1), (rows * cols).sum(axis=1)
    overall = {
        "kappa": _divide(n * trace - rc, n * n - rc),
        "mcc": _divide(
            trace * n - rc,
            np.sqrt((n * n - (rows**2).sum(1)) * (n * n - (cols**2).sum(1))),
            0.0,
        ),
    }
    tp, fp, fn = diag, cols - diag, rows - diag
    tn = n[:, None] - tp - fp - fn
    b_rc = (tp + fn) * (tp + fp) + (fp + tn) * (fn + tn)
    nn = n[:, None]
    per = {
        "kappa": _divide(nn * (tp + tn) - b_rc, nn * nn - b_rc),
        "mcc": _divide(
            tp * tn - fp * fn, np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)), 0.0
        ),
        "precision": 100 * _divide(tp, tp + fp),
        "recall": 100 * _divide(tp, tp + fn),
        "f1": 100 * _divide(2 * tp, 2 * tp + fp + fn),
    }
    seen = (rows + cols)[:, 1:] > 0
    for name in ("precision", "recall", "f1"):
        values = np.where(seen, np.nan_to_num(per[name][:, 1:]), 0.0)
        overall[name] = _divide(values.sum(axis=1), seen.sum(axis=1))
    counts = (w @ stats.segments.reshape(len(w[0]), -1)).reshape(len(w), *stats.segments.shape[1:])
    for slot, k in enumerate(THRESHOLDS):
        c_tp, c_fp, c_fn = counts[:, :, slot, 0], counts[:, :, slot, 1], counts[:, :, slot, 2]
        per[f"f1@{k}"] = 100 * _divide(2 * c_tp, 2 * c_tp + c_fp + c_fn)
        s_tp, s_fp, s_fn = c_tp.sum(1), c_fp.sum(1), c_fn.sum(1)
        overall[f"f1@{k}"] = 100 * _divide(2 * s_tp, 2 * s_tp + s_fp + s_fn, 0.0)
    member = np.zeros((len(w[0]), len(stats.units_per_piece)))
    member[np.arange(len(w[0])), stats.piece] = 1.0
    piece_weight = (w @ member) / stats.units_per_piece  # (R, Q)
    q = member.shape[1]
    sums = (w @ (member[:, :, None] * stats.edit[:, None, :]).reshape(len(member), -1)).reshape(
        len(w), q, 3
    )  # (R, Q, 3)
    longest = np.maximum(sums[..., 1], sums[..., 2])
    edit_q = 100 * (1 - _divide(sums[..., 0], longest, 0.0))
    overall["edit"] = _divide((piece_weight * edit_q).sum(1), piece_weight.sum(1))
    by_piece = member[:, :, None, None] * stats.class_edit[:, None, :, :]  # (U, Q, C, 3)
    sums_c = (w @ by_piece.reshape(len(member), -1)).reshape(len(w), q, *stats.class_edit.shape[1:])
    longest_c = np.maximum(sums_c[..., 1], sums_c[..., 2])
    edit_qc = 100 * (1 - _divide(sums_c[..., 0], longest_c, 0.0))
    weight_qc = piece_weight[:, :, None] * (longest_c > 0)
    per["edit"] = _divide((weight_qc * edit_qc).sum(1), weight_qc.sum(1))
    return overall, per


def _sklearn_frame_figures(pieces: Sequence[Piece], labels: list[str]) -> tuple[dict, dict]:
    """Kappa, MCC, precision, recall and F1 of the scored frames by scikit-learn, given the
    frames as their confusion cells (each distinct true/predicted pair once, weighted by its
    count: the same figures as frame by frame, in a few hundred samples)."""
    from sklearn.metrics import (
        cohen_kappa_score,
        matthews_corrcoef,
        precision_recall_fscore_support,
    )

    index = {label: i for i, label in enumerate(labels)}
    confusion = np.zeros((len(labels), len(labels)))
    for piece in pieces:
        t = np.array([index[x] for x in piece.truth], dtype=np.int64)
        p = np.array([index[x] for x in piece.pred], dtype=np.int64)
        np.add.at(confusion, (t, p), 1)
    truth, pred = np.nonzero(confusion)
    weight = confusion[truth, pred]
    behaviours = list(range(1, len(labels)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a single class: kappa is undefined (NaN), MCC 0
        overall = {"kappa": cohen_kappa_score(truth, pred, sample_weight=weight),
                   "mcc": matthews_corrcoef(truth, pred, sample_weight=weight)}  # fmt: skip
        per: dict[str, dict] = {}
        if behaviours:
            macro = precision_recall_fscore_support(
                truth, pred, labels=behaviours, average="macro", zero_division=0,
                sample_weight=weight,
            )  # fmt: skip
            each = precision_recall_fscore_support(
                truth, pred, labels=behaviours, average=None, zero_division=np.nan,
                sample_weight=weight,
            )  # fmt: skip
            for name, m, e in zip(("precision", "recall", "f1"), macro, each, strict=False):
                overall[name] = 100 * float(m)
                per[name] = dict(zip(labels[1:], (100 * float(x) for x in e), strict=True))
        else:
            overall.update(precision=math.nan, recall=math.nan, f1=math.nan)
        # one behaviour against the rest: true/predicted (1, 1), (1, 0), (0, 1), (0, 0)
        one, other = np.array([1, 1, 0, 0]), np.array([1, 0, 1, 0])
        n = confusion.sum()
        per["kappa"], per["mcc"] = {}, {}
        for c in behaviours:
            tp = confusion[c, c]
            fn, fp = confusion[c].sum() - tp, confusion[:, c].sum() - tp
            cells = np.array([tp, fn, fp, n - tp - fn - fp])
            per["kappa"][labels[c]] = float(cohen_kappa_score(one, other, sample_weight=cells))
            per["mcc"][labels[c]] = float(matthews_corrcoef(one, other, sample_weight=cells))
    return {k: float(v) for k, v in overall.items()}, per


def _number(value) -> float | None:
    value = float(value)
    return None if math.isnan(value) else round(value, 4)


def agreement(
    pieces: Sequence[Piece], settings: AgreementSettings, names: dict[str, str] | None = None
) -> dict:
    """The agreement figures of the pieces with their bootstrap intervals (see the module)."""
    settings.check()
    stats = unit_stats(pieces)
    labels = stats.labels
    units = len(stats.piece)
    overall_sk, per_sk = _sklearn_frame_figures(pieces, labels)
    point_overall, point_per = evaluate(np.ones((1, units)), stats)
    low_o = high_o = low_p = high_p = None
    if settings.replicates and units:
        rng = np.random.default_rng(settings.seed)
        group = stats.video if settings.unit == "video" else np.arange(units)
        groups = int(group.max()) + 1
        alpha = 100 * (1 - settings.confidence) / 2
        collected_o: dict[str, list] = {m: [] for m in METRICS}
        collected_p: dict[str, list] = {m: [] for m in METRICS}
        left = settings.replicates
        while left:
            size = min(left, 250)
            draws = rng.multinomial(groups, np.full(groups, 1 / groups), size=size)
            overall, per = evaluate(draws[:, group].astype(np.float64), stats)
            for m in METRICS:
                collected_o[m].append(overall[m])
                collected_p[m].append(per[m])
            left -= size
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # all-NaN columns: a figure never defined
            low_o, high_o, low_p, high_p = {}, {}, {}, {}
            for m in METRICS:
                low_o[m], high_o[m] = np.nanpercentile(np.concatenate(collected_o[m]),
                                                       [alpha, 100 - alpha])  # fmt: skip
                low_p[m], high_p[m] = np.nanpercentile(np.concatenate(collected_p[m]),
                                                       [alpha, 100 - alpha], axis=0)  # fmt: skip

    def entry(value, low, high) -> dict:
        return {"value": _number(value), "low": None if low is None else _number(low),
                "high": None if high is None else _number(high)}  # fmt: skip

    overall_out = {}
    for m in METRICS:
        value = overall_sk[m] if m in FRAME_METRICS else point_overall[m][0]
        overall_out[m] = entry(value, low_o and low_o[m], high_o and high_o[m])
    per_class = {}
    for col, label in enumerate(labels):
        if col == 0:
            continue
        row: dict = {"behaviour": (names or {}).get(label, label),
                     "true_frames": int(stats.rows[:, col].sum()),
                     "predicted_frames": int(stats.cols[:, col].sum())}  # fmt: skip
        for m in METRICS:
            value = per_sk[m][label] if m in FRAME_METRICS else point_per[m][0, col]
            row[m] = entry(value, low_p and low_p[m][col], high_p and high_p[m][col])
        per_class[label] = row
    drawn = int(units if settings.unit == "bout" else len(set(stats.video.tolist())))
    result = {
        "unit": settings.unit,
        "units": drawn,
        "replicates": settings.replicates,
        "seed": settings.seed,
        "confidence": settings.confidence,
        "overall": overall_out,
        "per_class": per_class,
    }
    if settings.replicates and drawn < FEW_UNITS:
        result["note"] = (f"only {drawn} {settings.unit}(s) to resample: the intervals are rough; "
                          "score more bouts or videos for a firm interval")  # fmt: skip
    return result
