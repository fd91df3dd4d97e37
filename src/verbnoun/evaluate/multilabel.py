"""Multi-label metrics: clips that show several behaviours at once (Animal Kingdom's way).

In: per clip the true label set (action ids; never empty in a valid question file) and the
predicted set (empty when the answer gave none: an unparsed answer), and, for models that give a
score per class, per clip a ``{action id: score}`` mapping. Out: JSON-ready figures
(:func:`multilabel_summary`). Labels are strings; the classes are those given, else the union of
the true and predicted labels (and the scored ones, for mAP).

* **Jaccard accuracy**: the mean over clips of ``|predicted ∩ true| / |predicted ∪ true|``. A
  clip whose predicted and true sets are both empty scores 1 (nothing to disagree about; a valid
  question always has a label, so this only arises with hand-made sets); an empty prediction
  against a non-empty truth scores 0, as an unparsed answer counts as wrong in accuracy. This is
  scikit-learn's ``jaccard_score(average="samples", zero_division=1.0)``.
* **Exact match**: the share of clips whose predicted set equals the true one (subset accuracy).
* **Per class**: precision, recall and F1 (scikit-learn's ``precision_recall_fscore_support``),
  with the class's support (true clips) and predicted clips; a value whose denominator is zero
  (a class never predicted has no precision) is ``None``, and ``macro_f1`` averages the defined
  ones. ``micro`` pools every clip's labels.
* **Mean average precision** over classes, from per-class scores: each class's average
  precision is scikit-learn's ``average_precision_score`` of that class's scores over all clips
  (a clip that gives a class no score ranks it below every scored clip). A class with no
  positive clip has no average precision (scikit-learn would count it 0 with a warning, which
  lowers mAP for a reason that has nothing to do with the model): it is left out of the mean, and
  ``classes_without_positive`` counts such classes.
* **Intervals**: percentile bootstrap over clips (95 %, 1000 resamples, seed 0 unless told), drawn
  by :mod:`verbnoun.evaluate.metrics`' bootstrap (the same draws for the same seed and size). For
  mAP each resample weighs the clips by how often it drew them; average precision with integer
  weights equals average precision on the repeated clips, and :func:`_weighted_average_precisions`
  computes all resamples of a class at once (a test checks it against scikit-learn with
  ``sample_weight``); classes without a positive in a resample are left out of its mean.
  Average precision is higher on fewer distinct clips (a resample holds about 63 % of them; half
  samples drawn without repeats sit as high), so the resamples' mAP sits above the estimate (on
  2,000 clips of 140 classes, 26 options each, over 97.5 % of them): a percentile interval
  would miss the figure it describes. mAP's interval is therefore the resamples' spread around
  their median, centred on the estimate (:func:`verbnoun.evaluate.metrics.centred_interval`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from verbnoun.evaluate.metrics import (
    bootstrap_interval,
    centred_interval,
    mean_interval,
    resample_draws,
)

LabelSet = frozenset[str]


def label_sets(sets: Iterable[Iterable[str]]) -> list[LabelSet]:
    """Each clip's labels as a frozenset of strings."""
    return [frozenset(str(label) for label in labels) for labels in sets]


def classes_of(*collections: Iterable[Iterable[str]]) -> list[str]:
    """Every label that occurs in the given collections of sets (or mappings), sorted."""
    return sorted({str(label) for sets in collections for labels in sets for label in labels})


def binarize(sets: Sequence[Iterable[str]], classes: Sequence[str]) -> np.ndarray:
    """The clips x classes indicator matrix (scikit-learn's ``MultiLabelBinarizer``); a label
    outside ``classes`` is a ``ValueError`` naming it."""
    from sklearn.preprocessing import MultiLabelBinarizer

    known = set(classes)
    for labels in sets:
        unknown = sorted(set(map(str, labels)) - known)
        if unknown:
            raise ValueError(f"label(s) {unknown} outside the classes")
    binarizer = MultiLabelBinarizer(classes=list(classes))
    return binarizer.fit_transform([[str(label) for label in labels] for labels in sets])


def jaccard_values(predicted: Sequence[Iterable[str]], truths: Sequence[Iterable[str]]) -> list:
    """Each clip's Jaccard index ``|P ∩ T| / |P ∪ T|`` (1 when both are empty)."""
    if len(predicted) != len(truths):
        raise ValueError(f"{len(predicted)} predicted sets for {len(truths)} clips")
    values = []
    for p, t in zip(label_sets(predicted), label_sets(truths), strict=True):
        union = len(p | t)
        values.append(len(p & t) / union if union else 1.0)
    return values


def jaccard_accuracy(predicted: Sequence[Iterable[str]], truths: Sequence[Iterable[str]]) -> float:
    """The mean Jaccard index over clips (NaN without clips)."""
    values = jaccard_values(predicted, truths)
    return float(np.mean(values)) if values else math.nan


def _number(value) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


def per_class_figures(
    predicted: Sequence[Iterable[str]],
    truths: Sequence[Iterable[str]],
    classes: Sequence[str] | None = None,
) -> dict:
    """``{"per_class": {label: {support, predicted, precision, recall, f1}}, "micro":
    {precision, recall, f1}, "macro_f1"}``; an undefined value (zero denominator) is ``None``."""
    from sklearn.metrics import precision_recall_fscore_support

    classes = list(classes) if classes is not None else classes_of(truths, predicted)
    if not classes or not truths:
        return {"per_class": {}, "micro": {"precision": None, "recall": None, "f1": None},
                "macro_f1": None}  # fmt: skip
    y_true, y_pred = binarize(truths, classes), binarize(predicted, classes)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, average=None, zero_division=np.nan
    )
    micro = precision_recall_fscore_support(y_true, y_pred, average="micro", zero_division=np.nan)
    per_class = {
        label: {
            "support": int(support[k]),
            "predicted": int(y_pred[:, k].sum()),
            "precision": _number(precision[k]),
            "recall": _number(recall[k]),
            "f1": _number(f1[k]),
        }
        for k, label in enumerate(classes)
    }
    defined = [v["f1"] for v in per_class.values() if v["f1"] is not None]
    return {
        "per_class": per_class,
        "micro": {
            "precision": _number(micro[0]),
            "recall": _number(micro[1]),
            "f1": _number(micro[2]),
        },
        "macro_f1": float(np.mean(defined)) if defined else None,
    }


def score_matrix(scores: Sequence[Mapping[str, float]], classes: Sequence[str]) -> np.ndarray:
    """Clips x classes scores; a class a clip gives no score ranks below every given score."""
    matrix = np.full((len(scores), len(classes)), np.nan)
    column = {label: k for k, label in enumerate(classes)}
    for row, clip in enumerate(scores):
        for label, value in clip.items():
            k = column.get(str(label))
            if k is not None:
                matrix[row, k] = float(value)
    finite = matrix[np.isfinite(matrix)]
    floor = (finite.min() - 1.0) if finite.size else 0.0
    return np.where(np.isfinite(matrix), matrix, floor)


def average_precisions(
    truths: Sequence[Iterable[str]],
    scores: Sequence[Mapping[str, float]],
    classes: Sequence[str] | None = None,
) -> dict[str, float | None]:
    """Each class's average precision (scikit-learn), ``None`` for a class without a positive."""
    from sklearn.metrics import average_precision_score

    if len(scores) != len(truths):
        raise ValueError(f"{len(scores)} score rows for {len(truths)} clips")
    classes = list(classes) if classes is not None else classes_of(truths, scores)
    y_true = binarize(truths, classes)
    matrix = score_matrix(scores, classes)
    result: dict[str, float | None] = {}
    for k, label in enumerate(classes):
        if y_true[:, k].any():
            result[label] = float(average_precision_score(y_true[:, k], matrix[:, k]))
        else:
            result[label] = None
    return result


def mean_average_precision(
    truths: Sequence[Iterable[str]],
    scores: Sequence[Mapping[str, float]],
    classes: Sequence[str] | None = None,
) -> float:
    """The mean of the defined per-class average precisions (NaN when none is defined)."""
    values = [v for v in average_precisions(truths, scores, classes).values() if v is not None]
    return float(np.mean(values)) if values else math.nan


def _ranking(score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The clips above one class's lowest score, in order of that score (highest first), and
    where each group of tied scores ends in that order (ties form one threshold, as in
    scikit-learn). The clips at the lowest score, the last group (every clip that gives the
    class no score is there), are left out: that group always ends at the totals."""
    above = np.flatnonzero(score > score.min()) if len(score) else np.arange(0)
    order = above[np.argsort(-score[above], kind="mergesort")]
    ends = np.nonzero(np.diff(score[order]))[0]
    return order, np.r_[ends, len(order) - 1].astype(int) if len(order) else ends


def _weighted_average_precisions(
    positive: np.ndarray, score: np.ndarray, weights: np.ndarray, ranking=None, totals=None
) -> np.ndarray:
    """One class's average precision under each row of ``weights`` (resamples x clips): the sum
    over distinct score thresholds, highest first, of the recall gained times the precision
    there (scikit-learn's definition). NaN for a row without a positive. ``totals``: each row's
    weighted positives and weight (the lowest threshold's counts; computed when not given)."""
    order, ends = ranking if ranking is not None else _ranking(score)
    if totals is None:
        totals = (weights @ positive, weights.sum(axis=1))
    w = weights[:, order]
    hits = np.c_[np.cumsum(w * positive[order], axis=1)[:, ends], totals[0]]
    seen = np.c_[np.cumsum(w, axis=1)[:, ends], totals[1]]
    total = hits[:, -1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(seen > 0, hits / np.where(seen > 0, seen, 1), 0.0)
        gained = np.diff(hits, axis=1, prepend=0.0) / total
    result = (gained * precision).sum(axis=1)
    result[total[:, 0] == 0] = np.nan
    return result


def map_interval(
    truths: Sequence[Iterable[str]],
    scores: Sequence[Mapping[str, float]],
    classes: Sequence[str] | None = None,
    *,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Bootstrap interval of :func:`mean_average_precision` over clips, centred on the estimate
    (see the module's docstring)."""
    n = len(truths)
    if n == 0 or resamples == 0:
        return (math.nan, math.nan)
    classes = list(classes) if classes is not None else classes_of(truths, scores)
    y_true = binarize(truths, classes).astype(np.float64)
    matrix = score_matrix(scores, classes)
    rankings = [_ranking(matrix[:, k]) for k in range(len(classes))]
    estimates = []
    for draws in resample_draws(n, resamples, seed):
        weights = np.zeros((len(draws), n))
        np.add.at(weights, (np.arange(len(draws))[:, None], draws), 1.0)
        hits, seen = weights @ y_true, weights.sum(axis=1)  # every class's lowest threshold
        per_class = np.stack(
            [_weighted_average_precisions(y_true[:, k], matrix[:, k], weights, rankings[k],
                                          (hits[:, k], seen)) for k in range(len(classes))],
            axis=1,
        )  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a resample without any positive
            estimates.append(np.nanmean(per_class, axis=1))
    value = mean_average_precision(truths, scores, classes)
    return centred_interval(np.concatenate(estimates), value, level)


def multilabel_summary(
    predicted: Sequence[Iterable[str]],
    truths: Sequence[Iterable[str]],
    scores: Sequence[Mapping[str, float] | None] | None = None,
    *,
    classes: Sequence[str] | None = None,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict:
    """The figures of a multi-label run (see the module's docstring): ``n``, ``jaccard`` and
    ``exact_match`` (each ``{"value", "ci95"}``), ``empty_predictions``, ``mean_labels`` (true,
    predicted), ``per_class``, ``micro``, ``macro_f1`` and ``map`` (``None`` unless every clip
    has scores: ``{"value", "ci95", "classes", "classes_without_positive"}``; each class's
    ``ap`` then joins its per-class figures)."""
    predicted, truths = label_sets(predicted), label_sets(truths)
    n = len(truths)
    values = jaccard_values(predicted, truths)
    exact = [p == t for p, t in zip(predicted, truths, strict=True)]
    options = {"resamples": resamples, "level": level, "seed": seed}
    figures = per_class_figures(predicted, truths, classes)
    summary: dict = {
        "n": n,
        "jaccard": {
            "value": float(np.mean(values)) if n else math.nan,
            "ci95": list(mean_interval(values, **options)),
        },
        "exact_match": {
            "value": sum(exact) / n if n else math.nan,
            "ci95": list(bootstrap_interval(exact, **options)),
        },
        "empty_predictions": sum(not p for p in predicted),
        "mean_labels": {
            "true": sum(map(len, truths)) / n if n else math.nan,
            "predicted": sum(map(len, predicted)) / n if n else math.nan,
        },
        **figures,
        "map": None,
    }
    if scores is not None and n and all(s is not None for s in scores):
        scored = [dict(s) for s in scores]  # type: ignore[arg-type]
        ap_classes = list(classes) if classes is not None else classes_of(truths, scored)
        aps = average_precisions(truths, scored, ap_classes)
        defined = [v for v in aps.values() if v is not None]
        summary["map"] = {
            "value": float(np.mean(defined)) if defined else math.nan,
            "ci95": list(map_interval(truths, scored, ap_classes, **options)),
            "classes": len(defined),
            "classes_without_positive": len(aps) - len(defined),
        }
        for label, ap in aps.items():
            if label in summary["per_class"]:
                summary["per_class"][label]["ap"] = ap
    return summary
