"""Multi-label metrics against scikit-learn on random label sets, and by hand on small ones."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, jaccard_score

from verbnoun.evaluate import multilabel
from verbnoun.evaluate.metrics import bootstrap_interval

CLASSES = [f"c{k}" for k in range(7)]


def random_sets(rng, n, *, empty_ok=True):
    sets = []
    for _ in range(n):
        size = int(rng.integers(0 if empty_ok else 1, 4))
        sets.append(set(rng.choice(CLASSES, size=size, replace=False).tolist()))
    return sets


@pytest.mark.parametrize("seed", range(5))
def test_jaccard_agrees_with_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    truths = random_sets(rng, 60, empty_ok=False)
    predicted = random_sets(rng, 60)  # empty predictions (unparsed answers) included
    predicted[0], truths[1] = set(), set()  # and one empty truth
    predicted[1] = set()  # empty against empty: 1, as zero_division=1.0 says
    y_true = multilabel.binarize(truths, CLASSES)
    y_pred = multilabel.binarize(predicted, CLASSES)
    expected = jaccard_score(y_true, y_pred, average="samples", zero_division=1.0)
    assert multilabel.jaccard_accuracy(predicted, truths) == pytest.approx(expected, abs=1e-12)


def test_jaccard_by_hand():
    values = multilabel.jaccard_values(
        [{"eat"}, {"eat", "walk"}, set(), {"run"}, set()],
        [{"eat", "walk"}, {"eat", "walk"}, {"eat"}, {"eat"}, set()],
    )
    assert values == [0.5, 1.0, 0.0, 0.0, 1.0]


@pytest.mark.parametrize("seed", range(5))
def test_map_agrees_with_scikit_learn(seed):
    rng = np.random.default_rng(100 + seed)
    truths = random_sets(rng, 80, empty_ok=False)
    truths = [t - {"c6"} or {"c0"} for t in truths]  # c6: a class without a positive clip
    scores = [{c: float(rng.random()) for c in CLASSES} for _ in truths]
    scores[3]["c2"] = scores[4]["c2"]  # a tie
    y_true = multilabel.binarize(truths, CLASSES)
    matrix = np.array([[s[c] for c in CLASSES] for s in scores])
    keep = y_true.any(axis=0)
    expected = average_precision_score(y_true[:, keep], matrix[:, keep], average="macro")
    assert multilabel.mean_average_precision(truths, scores, CLASSES) == pytest.approx(expected)
    aps = multilabel.average_precisions(truths, scores, CLASSES)
    assert aps["c6"] is None
    for k, label in enumerate(CLASSES[:6]):
        assert aps[label] == pytest.approx(average_precision_score(y_true[:, k], matrix[:, k]))
    with warnings.catch_warnings():  # scikit-learn counts c6 as 0 (and warns): ours leaves it out
        warnings.simplefilter("ignore")
        counted = average_precision_score(y_true, matrix, average="macro")
    assert counted < multilabel.mean_average_precision(truths, scores, CLASSES)


def test_missing_scores_rank_last():
    truths = [{"a"}, {"b"}, {"a"}]
    scores = [{"a": 0.9}, {"b": 0.8, "a": 0.7}, {"b": 0.1}]  # clip 3 gives "a" no score
    aps = multilabel.average_precisions(truths, scores)
    matrix = np.array([[0.9, -0.9], [0.7, 0.8], [-0.9, 0.1]])  # floor: lowest score - 1
    assert aps["a"] == pytest.approx(average_precision_score([1, 0, 1], matrix[:, 0]))
    assert aps["b"] == pytest.approx(1.0)


@pytest.mark.parametrize("seed", range(3))
def test_weighted_average_precision_is_scikit_learns_with_weights(seed):
    rng = np.random.default_rng(seed)
    n = 40
    positive = (rng.random(n) < 0.3).astype(float)
    positive[0] = 1
    score = np.round(rng.random(n), 1)  # many ties
    weights = rng.integers(0, 3, size=(6, n)).astype(float)
    weights[:, 0] = 1
    ours = multilabel._weighted_average_precisions(positive, score, weights)
    for row, w in zip(ours, weights, strict=True):
        assert row == pytest.approx(average_precision_score(positive, score, sample_weight=w))
    none = multilabel._weighted_average_precisions(np.zeros(n), score, weights)
    assert np.isnan(none).all()


def test_per_class_figures_by_hand():
    figures = multilabel.per_class_figures(
        [{"eat", "walk"}, {"eat"}, set(), {"run"}],
        [{"eat"}, {"eat", "walk"}, {"walk"}, {"eat"}],
    )
    eat, walk, run = (figures["per_class"][k] for k in ("eat", "walk", "run"))
    assert eat == {"support": 3, "predicted": 2, "precision": 1.0, "recall": 2 / 3, "f1": 0.8}
    assert walk == {"support": 2, "predicted": 1, "precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert run["precision"] == 0.0 and run["recall"] is None  # no true "run": recall undefined
    # micro: 2 hits of 4 predicted labels and 5 true ones
    assert figures["micro"]["precision"] == 0.5
    assert figures["micro"]["recall"] == pytest.approx(0.4)


def test_summary_and_intervals():
    rng = np.random.default_rng(7)
    truths = random_sets(rng, 50, empty_ok=False)
    predicted = [t if k % 3 else set() for k, t in enumerate(truths)]
    scores = [{c: float(c in t) + rng.random() for c in CLASSES} for t in truths]
    summary = multilabel.multilabel_summary(predicted, truths, scores, resamples=200, seed=3)
    assert summary["n"] == 50
    jaccard = summary["jaccard"]
    assert jaccard["value"] == pytest.approx(multilabel.jaccard_accuracy(predicted, truths))
    assert jaccard["ci95"][0] <= jaccard["value"] <= jaccard["ci95"][1]
    exact = [p == t for p, t in zip(predicted, truths, strict=True)]
    assert summary["exact_match"]["ci95"] == list(bootstrap_interval(exact, resamples=200, seed=3))
    assert summary["empty_predictions"] == 17
    # scores that put every true label above every other: mAP 1, and so are its resamples
    assert summary["map"]["value"] == 1.0
    assert summary["map"]["ci95"] == pytest.approx([1.0, 1.0])
    assert all(v["ap"] == 1.0 for v in summary["per_class"].values() if v["support"])
    again = multilabel.multilabel_summary(predicted, truths, scores, resamples=200, seed=3)
    assert again == summary  # the same seed, the same intervals
    noisy = [{c: rng.random() for c in CLASSES} for _ in truths]
    low, high = multilabel.map_interval(truths, noisy, resamples=300)
    value = multilabel.mean_average_precision(truths, noisy)
    assert low < value < high


def test_summary_without_scores_has_no_map():
    summary = multilabel.multilabel_summary([{"a"}], [{"a", "b"}], resamples=10)
    assert summary["map"] is None
    assert summary["jaccard"]["value"] == 0.5
    assert math.isnan(multilabel.jaccard_accuracy([], []))


def test_a_label_outside_the_classes_is_named():
    with pytest.raises(ValueError, match=r"\['zz'\]"):
        multilabel.binarize([{"a", "zz"}], ["a", "b"])


@pytest.mark.slow
def test_map_interval_is_centred_on_the_estimate():
    """mAP on a resample (about 63 % of the clips) sits above mAP on all of them: the plain
    percentile interval can miss the estimate; the interval has the resamples' spread, centred
    on the estimate."""
    from verbnoun.evaluate.metrics import percentile_interval

    rng = np.random.default_rng(0)
    classes = [str(c) for c in range(140)]
    truths = [set(rng.choice(classes, size=int(rng.integers(1, 4)), replace=False))
              for _ in range(1000)]  # fmt: skip
    scores = []
    for t in truths:  # 26 options per clip, the true ones among them
        shown = t | set(rng.choice(classes, size=26 - len(t), replace=False))
        scores.append({c: float(np.log(rng.random())) for c in shown})
    value = multilabel.mean_average_precision(truths, scores, classes)
    low, high = multilabel.map_interval(truths, scores, classes, resamples=200)
    assert low < value < high
    y = multilabel.binarize(truths, classes).astype(float)
    matrix = multilabel.score_matrix(scores, classes)
    estimates = []
    for draws in multilabel.resample_draws(len(truths), 200, 0):
        weights = np.zeros((len(draws), len(truths)))
        np.add.at(weights, (np.arange(len(draws))[:, None], draws), 1.0)
        per_class = [multilabel._weighted_average_precisions(y[:, k], matrix[:, k], weights)
                     for k in range(len(classes))]  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            estimates.append(np.nanmean(np.stack(per_class, axis=1), axis=1))
    estimates = np.concatenate(estimates)
    plain_low, plain_high = percentile_interval(estimates)
    assert value < plain_low  # the resamples all sit above the estimate here
    assert high - low == pytest.approx(plain_high - plain_low)  # the same spread


def test_centred_interval():
    from verbnoun.evaluate.metrics import centred_interval

    estimates = np.linspace(1.0, 2.0, 1001)  # median 1.5, 95 % spread 1.025 .. 1.975
    assert centred_interval(estimates, 0.5) == pytest.approx((0.025, 0.975))
