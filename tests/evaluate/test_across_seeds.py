"""A claim over seeds with the seeds as the unit (:func:`across_seeds`), against figures worked
out by hand, and beside :func:`pooled` on the same run sets."""

from __future__ import annotations

from pathlib import Path

import pytest

from verbnoun.evaluate.findings import Claim, across_seeds, pooled, pooled_accuracy
from verbnoun.evaluate.score import Run


def _run(label: str, right: list[bool]) -> Run:
    predictions = {f"q{i}": {"correct": ok} for i, ok in enumerate(right)}
    return Run(Path(label), {}, [], predictions, {})


def _seed(gain: int, questions: int = 10) -> list[Run]:
    """Two runs on ``questions`` questions: ``better`` right on ``5 + gain``, ``worse`` on 5."""
    worse = [i < 5 for i in range(questions)]
    better = [i < 5 + gain for i in range(questions)]
    return [_run("better", better), _run("worse", worse)]


CLAIM = Claim("better beats worse", "better", "worse")


def test_the_seeds_are_the_unit():
    # effects 0.1, 0.0, 0.2: mean 0.1, sd 0.1, sem 0.1/sqrt(3); t(2) 97.5 % = 4.3027;
    # t = sqrt(3) = 1.7321, one-sided p = 0.1127
    result = across_seeds(CLAIM, [_seed(1), _seed(0), _seed(2)])
    assert result["seeds"] == 3 and result["effects"] == pytest.approx([0.1, 0.0, 0.2])
    assert result["mean"] == pytest.approx(0.1)
    half = 4.302653 * 0.1 / 3**0.5
    assert (result["low"], result["high"]) == pytest.approx((0.1 - half, 0.1 + half), abs=1e-6)
    assert result["p_value"] == pytest.approx(0.11270, abs=1e-4)
    # the same 30 questions pooled: 3 discordant, all one way; McNemar p = 0.25
    assert pooled(CLAIM, [_seed(1), _seed(0), _seed(2)])["p_value"] == pytest.approx(0.25)


def test_many_questions_do_not_make_noisy_seeds_convincing():
    """Large per-seed swings: pooled McNemar on 3,000 questions says p < 0.01, the seeds do
    not."""
    sets = [_seed(g, 1000) for g in (150, -60, 30)]  # +15, -6, +3 points
    assert pooled(CLAIM, sets)["p_value"] < 0.01
    result = across_seeds(CLAIM, sets)
    assert result["p_value"] > 0.1 and result["low"] < 0 < result["high"]


def test_one_seed_or_missing_runs():
    assert across_seeds(CLAIM, [_seed(1)]) == {
        "claim": CLAIM.text, "seeds": 1, "effects": [pytest.approx(0.1)],
        "mean": pytest.approx(0.1),
    }  # fmt: skip
    missing = [[_run("better", [True])]]  # no "worse" run: the seed is left out
    assert across_seeds(CLAIM, [*missing, _seed(2), _seed(2)])["seeds"] == 2
    same = across_seeds(CLAIM, [_seed(2), _seed(2)])  # no spread: a sure positive mean
    assert same["p_value"] == 0.0 and same["low"] == same["high"] == pytest.approx(0.2)


def test_pooled_accuracy_counts_every_question_of_every_seed_once():
    sets = [_seed(1), _seed(3, questions=20)]  # better: 6 of 10, 8 of 20
    assert pooled_accuracy(sets, "better") == (pytest.approx(14 / 30), 30)
    acc, count = pooled_accuracy(sets, "absent")
    assert count == 0 and acc != acc  # nan
