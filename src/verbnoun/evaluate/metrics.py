"""Metrics of an evaluation run: accuracy with a bootstrap interval, breakdowns, paired tests.

All functions take plain Python values (lists of booleans, dicts) so they are easy to check by
hand. An unparsed answer counts as wrong for accuracy and is reported separately with its rate.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence


def bootstrap_interval(
    correct: Sequence[bool], *, resamples: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the accuracy (deterministic for a given seed). The same
    vector asked again (a report's pivot and each run's metrics) is answered from memory."""
    n = len(correct)
    if n == 0:
        return (float("nan"), float("nan"))
    import numpy as np

    flags = np.asarray(correct, dtype=bool)
    key = (n, np.packbits(flags).tobytes(), resamples, level, seed)
    if key not in _INTERVALS:
        _INTERVALS[key] = _bootstrap(flags.astype(np.float64), resamples, level, seed)
        if len(_INTERVALS) > 256:
            del _INTERVALS[next(iter(_INTERVALS))]  # the oldest
    return _INTERVALS[key]


_INTERVALS: dict[tuple, tuple[float, float]] = {}


def resample_draws(n: int, resamples: int, seed: int):
    """The bootstrap's resamples of ``n`` items, as index arrays ``(chunk, n)`` of at most 100
    rows each (chunks keep memory flat for large runs); the same ``seed`` draws the same ones."""
    import numpy as np

    rng = np.random.default_rng(seed)
    for start in range(0, resamples, 100):
        yield rng.integers(0, n, size=(min(start + 100, resamples) - start, n))


def percentile_interval(estimates, level: float = 0.95) -> tuple[float, float]:
    """The central ``level`` interval of bootstrap estimates (NaN estimates left out)."""
    import numpy as np

    estimates = np.asarray(estimates, dtype=np.float64)
    estimates = estimates[~np.isnan(estimates)]
    if estimates.size == 0:
        return (float("nan"), float("nan"))
    alpha = (1.0 - level) / 2
    low, high = np.quantile(estimates, [alpha, 1.0 - alpha])
    return (float(low), float(high))


def centred_interval(estimates, value: float, level: float = 0.95) -> tuple[float, float]:
    """The spread of bootstrap estimates around their median, centred on the point estimate
    ``value``: for a statistic whose resamples sit off it (average precision, which is higher on
    fewer distinct clips, and a resample holds about 63 % of them), where a percentile interval
    could miss the estimate altogether. NaN estimates are left out."""
    import numpy as np

    estimates = np.asarray(estimates, dtype=np.float64)
    estimates = estimates[~np.isnan(estimates)]
    if estimates.size == 0 or value != value:
        return (float("nan"), float("nan"))
    alpha = (1.0 - level) / 2
    low, middle, high = np.quantile(estimates, [alpha, 0.5, 1.0 - alpha])
    return (float(value + low - middle), float(value + high - middle))


def _bootstrap(values, resamples: int, level: float, seed: int) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (floats)."""
    import numpy as np

    means = [values[draws].mean(axis=1) for draws in resample_draws(len(values), resamples, seed)]
    return percentile_interval(np.concatenate(means) if means else [], level)


def mean_interval(
    values: Sequence[float], *, resamples: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-item values (e.g. each clip's Jaccard
    index), drawn as :func:`bootstrap_interval` draws an accuracy's."""
    import numpy as np

    if len(values) == 0:
        return (float("nan"), float("nan"))
    return _bootstrap(np.asarray(values, dtype=np.float64), resamples, level, seed)


def accuracy_summary(correct: Sequence[bool], unparsed: int = 0, **bootstrap) -> dict:
    """``{"n", "correct", "accuracy", "ci95", "unparsed", "unparsed_rate"}``."""
    n = len(correct)
    hits = sum(bool(c) for c in correct)
    low, high = bootstrap_interval(correct, **bootstrap)
    return {
        "n": n,
        "correct": hits,
        "accuracy": hits / n if n else float("nan"),
        "ci95": [low, high],
        "unparsed": unparsed,
        "unparsed_rate": unparsed / n if n else float("nan"),
    }


def grouped_accuracy(items: Iterable[tuple[object, bool]]) -> dict[str, dict]:
    """Accuracy per group key: ``{key: {"n", "accuracy"}}``, keys sorted as strings."""
    totals: dict[str, list[int]] = {}
    for key, correct in items:
        entry = totals.setdefault(str(key), [0, 0])
        entry[0] += 1
        entry[1] += bool(correct)
    return {
        key: {"n": n, "accuracy": hits / n}
        for key, (n, hits) in sorted(totals.items(), key=lambda kv: kv[0])
    }


def mean_class_accuracy(groups: Mapping[str, dict]) -> float:
    """The unweighted mean of per-class accuracies (EK100's class-mean view)."""
    if not groups:
        return float("nan")
    return sum(g["accuracy"] for g in groups.values()) / len(groups)


def mcnemar_exact(a: Sequence[bool], b: Sequence[bool]) -> dict:
    """Exact two-sided McNemar test of two paired correctness vectors over the same questions.

    Returns the discordant counts (``a_only``: right in A only; ``b_only``: right in B only) and
    the p-value of the binomial test of ``a_only`` against ``Binomial(a_only + b_only, 1/2)``.
    """
    if len(a) != len(b):
        raise ValueError("paired test needs the same questions in both runs")
    a_only = sum(1 for x, y in zip(a, b, strict=True) if x and not y)
    b_only = sum(1 for x, y in zip(a, b, strict=True) if y and not x)
    return mcnemar_counts(a_only, b_only)


def mcnemar_counts(a_only: int, b_only: int) -> dict:
    """:func:`mcnemar_exact` from its discordant counts."""
    n = a_only + b_only
    if n == 0:
        return {"a_only": 0, "b_only": 0, "p_value": 1.0}
    k = min(a_only, b_only)
    # sum of C(n, i) for i <= k, each term from the last (linear, not quadratic, in k: a
    # benchmark's 10,000 questions give thousands of discordant pairs)
    term = total = 1
    for i in range(1, k + 1):
        term = term * (n - i + 1) // i
        total += term
    tail = total / 2**n
    return {"a_only": a_only, "b_only": b_only, "p_value": min(1.0, 2 * tail)}


def topk_recall(ranked: Sequence[Sequence[str]], truths: Sequence[str], k: int) -> float:
    """How often the truth is among the first ``k`` ranked items (the two-stage ceiling)."""
    if not truths:
        return float("nan")
    return sum(t in r[:k] for r, t in zip(ranked, truths, strict=True)) / len(truths)


def recognition_top1(predicted: Sequence[str], truths: Sequence[str]) -> dict:
    """EK100 top-1 verb, noun and action accuracy of predicted action ids ``"v:n"``.

    A verb is right when the predicted verb class equals the true one, likewise the noun; an
    action only when both are. Single-label truths (class ids without ``:``) have no verb or
    noun: then only the action is scored and ``verb`` and ``noun`` are ``None`` (not
    applicable).
    """
    n = len(truths)
    if n == 0:
        return {"verb": float("nan"), "noun": float("nan"), "action": float("nan"), "n": 0}
    if all(":" not in t for t in truths):
        hits = sum(p == t for p, t in zip(predicted, truths, strict=True))
        return {"verb": None, "noun": None, "action": hits / n, "n": n}
    verb = noun = action = 0
    for p, t in zip(predicted, truths, strict=True):
        pv, pn = p.split(":")
        tv, tn = t.split(":")
        verb += pv == tv
        noun += pn == tn
        action += pv == tv and pn == tn
    return {"verb": verb / n, "noun": noun / n, "action": action / n, "n": n}


def shuffled(items: Sequence, seed: int) -> list:
    """A deterministic shuffle (used to split work and to draw samples for reports)."""
    result = list(items)
    random.Random(seed).shuffle(result)
    return result


def open_vocab_top1(
    predicted: Sequence[tuple[int | None, int | None]], truths: Sequence[tuple[int, int]]
) -> dict:
    """Top-1 verb, noun and action of free-text answers mapped to ``(verb, noun)`` classes.

    ``None`` marks a part that could not be mapped: it counts as wrong, and ``unmapped`` is the
    share of answers with at least one unmapped part (``verb_unmapped`` / ``noun_unmapped``:
    per part).
    """
    n = len(truths)
    if n == 0:
        nan = float("nan")
        return {"n": 0, "verb": nan, "noun": nan, "action": nan, "unmapped": nan,
                "unmapped_count": 0, "verb_unmapped": nan, "noun_unmapped": nan}  # fmt: skip
    verb = noun = action = unmapped = verb_missing = noun_missing = 0
    for (pv, pn), (tv, tn) in zip(predicted, truths, strict=True):
        verb += pv is not None and pv == tv
        noun += pn is not None and pn == tn
        action += pv is not None and pn is not None and pv == tv and pn == tn
        verb_missing += pv is None
        noun_missing += pn is None
        unmapped += pv is None or pn is None
    return {
        "n": n,
        "verb": verb / n,
        "noun": noun / n,
        "action": action / n,
        "unmapped": unmapped / n,
        "unmapped_count": unmapped,
        "verb_unmapped": verb_missing / n,
        "noun_unmapped": noun_missing / n,
    }


def coverage_summary(total: int, correct: Sequence[bool], failures: Sequence[dict]) -> dict:
    """How many of ``total`` questions were answered, failed (by kind and HTTP status) or not
    asked, and the accuracy over the answered ones and over all asked (a failed question counts
    as wrong there). ``correct``: one flag per answered question; ``failures``: the ``failed``
    part of each failed record."""
    answered, failed = len(correct), len(failures)
    hits = sum(bool(c) for c in correct)
    by_kind: dict[str, int] = {}
    by_status: dict[str, int] = {}
    for failure in failures:
        by_kind[failure["kind"]] = by_kind.get(failure["kind"], 0) + 1
        status = str(failure.get("status"))
        by_status[status] = by_status.get(status, 0) + 1
    asked = answered + failed
    return {
        "questions": total,
        "answered": answered,
        "failed": failed,
        "not_asked": total - asked,
        "failed_by_kind": dict(sorted(by_kind.items())),
        "failed_by_status": dict(sorted(by_status.items())),
        "accuracy_over_answered": hits / answered if answered else None,
        "accuracy_over_all": hits / asked if asked else None,
    }


def usage_summary(
    records: Iterable[Mapping], price_per_mtok: tuple[float, float] | None = None
) -> dict | None:
    """Token usage summed over records that carry one (``None`` when none does): prompt and
    completion tokens, requests (tries) and, given ``(input, output)`` prices per million
    tokens, the estimated cost."""
    prompt = completion = requests = counted = 0
    for record in records:
        usage = record.get("usage")
        if usage is not None:
            counted += 1
            prompt += int(usage.get("prompt_tokens", 0))
            completion += int(usage.get("completion_tokens", 0))
        requests += int(record.get("attempts", record.get("failed", {}).get("attempts", 0)))
    if not counted:
        return None
    summary: dict = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "records_with_usage": counted,
        "requests": requests,
    }
    if price_per_mtok is not None:
        price_in, price_out = price_per_mtok
        summary["price_per_mtok"] = [price_in, price_out]
        summary["estimated_cost"] = round((prompt * price_in + completion * price_out) / 1e6, 6)
    return summary
