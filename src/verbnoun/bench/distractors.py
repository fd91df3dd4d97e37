"""Distractor strategies: which wrong actions a question offers next to the ground truth.

Every strategy answers one call, ``choose(segment, k, rng)``: the K-1 distractor actions for a
segment, each with where it came from. Strategies never return the ground truth's action id and
never repeat an action. Randomness comes only from the ``rng`` they are given (one per question,
seeded from the build seed and the segment's narration id), so output does not depend on the
order questions are built in, on the process, or on ``PYTHONHASHSEED``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Protocol

from verbnoun.bench.predictions import SpecialistPredictions
from verbnoun.data.annotations import ActionVocabulary
from verbnoun.data.ek100 import Segment, parse_action_id, single_action_class
from verbnoun.errors import PredictionFileError, VerbnounError


@dataclass(frozen=True)
class Distractor:
    action_id: str
    source: str
    rank: int | None = None  # the specialist's 1-based rank, when a specialist chose it


class DistractorStrategy(Protocol):
    """Chooses the K-1 wrong options of a question."""

    name: str

    def choose(self, segment: Segment, k: int, rng: random.Random) -> list[Distractor]: ...


def weighted_sample(
    items: Sequence[str], weights: Sequence[float], count: int, rng: random.Random
) -> list[str]:
    """Draw ``count`` distinct items, each draw proportional to weight (Efraimidis-Spirakis keys)."""
    keys = []
    for index, weight in enumerate(weights):
        if weight > 0:
            keys.append((rng.random() ** (1.0 / weight), index))
    keys.sort(reverse=True)
    return [items[index] for _, index in keys[:count]]


class RandomDistractors:
    """K-1 other actions of the vocabulary, uniformly, the ground truth excluded."""

    name = "random"

    def __init__(self, vocabulary: ActionVocabulary) -> None:
        self.actions = vocabulary.actions
        self.known = set(vocabulary.actions)

    def choose(self, segment: Segment, k: int, rng: random.Random) -> list[Distractor]:
        if len(self.actions) - (segment.action_id in self.known) < k - 1:
            raise VerbnounError(f"the vocabulary has too few actions for {k} options")
        picked = [a for a in rng.sample(self.actions, k) if a != segment.action_id][: k - 1]
        return [Distractor(action, "random") for action in picked]


class SpecialistDistractors:
    """Distractors from a specialist model's ranked predictions.

    ``rule="benchmark"`` (SPEC 3): the top K; when the ground truth is not among them it replaces
    the K-th. ``rule="training"`` (SPEC 5(a)): the top ``pool`` without the ground truth, K-1 of
    them at random; ``pool=0`` is the release's 2K (its top 10 of EK100's 3,806 actions). A small
    vocabulary may want a smaller pool for distractors as hard: 10 of the kitchen's 91 actions
    reach far past the specialist's real confusions.
    """

    name = "specialist"

    def __init__(
        self, predictions: SpecialistPredictions, rule: str = "benchmark", pool: int = 0
    ) -> None:
        if rule not in ("benchmark", "training"):
            raise VerbnounError(f"unknown specialist rule {rule!r} (benchmark or training)")
        if pool and rule != "training":
            raise VerbnounError("a specialist pool is only used by the training rule")
        if pool < 0:
            raise VerbnounError(f"the specialist pool must be 0 (2K) or more, got {pool}")
        self.predictions = predictions
        self.rule = rule
        self.pool = pool

    def choose(self, segment: Segment, k: int, rng: random.Random) -> list[Distractor]:
        ranked = self.predictions.ranked(segment)
        truth = segment.action_id
        if self.rule == "benchmark":
            if len(ranked) < k:
                raise PredictionFileError(
                    self.predictions.path,
                    f"{segment.narration_id} has {len(ranked)} distinct predictions, need {k}",
                    key=self.predictions.key_of(segment),
                )
            top = list(enumerate(ranked[:k], start=1))
            chosen = [(r, a) for r, a in top if a != truth][: k - 1]
        else:
            top = self.pool or 2 * k
            pool = [(r, a) for r, a in enumerate(ranked[:top], start=1) if a != truth]
            if len(pool) < k - 1:
                raise PredictionFileError(
                    self.predictions.path,
                    f"{segment.narration_id} has {len(pool)} wrong actions in its top {top}, "
                    f"need {k - 1}",
                    key=self.predictions.key_of(segment),
                )
            chosen = sorted(rng.sample(pool, k - 1))
        return [Distractor(action, "specialist", rank) for rank, action in chosen]


class PriorHardDistractors:
    """Hard distractors without a model: actions sharing the verb or the noun of the ground truth.

    Half of the K-1 distractors (the odd one decided at random) share the verb, the other half the
    noun, so that neither the verb nor the noun alone gives the answer away. Each half is drawn
    without replacement, weighted by how often each action occurs; a short half is topped up from
    the other, and when both are exhausted the rest come from all actions, weighted by frequency.

    Single-label actions (class ids, no verb or noun) share nothing: all K-1 distractors are
    drawn from the other actions weighted by frequency (source ``prior-hard:frequency``), so the
    hard options are the common actions a blind guess would favour.
    """

    name = "prior-hard"

    def __init__(self, vocabulary: ActionVocabulary) -> None:
        self.vocabulary = vocabulary
        self.by_verb: dict[int, list[str]] = {}
        self.by_noun: dict[int, list[str]] = {}
        for action in vocabulary.actions:
            if single_action_class(action) is not None:
                continue
            verb, noun = parse_action_id(action)
            self.by_verb.setdefault(verb, []).append(action)
            self.by_noun.setdefault(noun, []).append(action)
        self.frequency = {a: vocabulary.frequency(a) for a in vocabulary.actions}
        self._cumulative: dict[tuple[str, int], list[float]] = {}

    def _draw(
        self, pool: list[str], count: int, rng: random.Random, exclude: str, key: tuple[str, int]
    ) -> list[str]:
        """``count`` distinct actions of ``pool`` (never ``exclude``), weighted by frequency.

        Successive weighted draws with rejection of repeats: the same distribution as drawing
        without replacement, in O(count log n) instead of O(n) per question.
        """
        available = len(pool) - (exclude in pool)
        if count >= available or available <= 2 * count:
            rest = [a for a in pool if a != exclude]
            return weighted_sample(rest, [self.frequency[a] for a in rest], count, rng)
        if key not in self._cumulative:
            self._cumulative[key] = list(accumulate(self.frequency[a] for a in pool))
        cumulative = self._cumulative[key]
        picked: list[str] = []
        while len(picked) < count:
            action = rng.choices(pool, cum_weights=cumulative)[0]
            if action != exclude and action not in picked:
                picked.append(action)
        return picked

    def choose(self, segment: Segment, k: int, rng: random.Random) -> list[Distractor]:
        truth = segment.action_id
        if single_action_class(truth) is None:
            verb, noun = parse_action_id(truth)
            same_verb = self.by_verb.get(verb, [])
            same_noun = self.by_noun.get(noun, [])
        else:
            verb = noun = -1
            same_verb = same_noun = []
        n_verb = len(same_verb) - (truth in same_verb)
        n_noun = len(same_noun) - (truth in same_noun)
        wanted = k - 1
        verb_share = wanted // 2 + (wanted % 2 if rng.random() < 0.5 else 0)
        verb_share = min(verb_share, n_verb)
        noun_share = min(wanted - verb_share, n_noun)
        verb_share = min(wanted - noun_share, n_verb)
        verb_picks = self._draw(same_verb, verb_share, rng, truth, ("verb", verb))
        noun_picks = self._draw(same_noun, noun_share, rng, truth, ("noun", noun))
        result = [Distractor(a, "prior-hard:verb") for a in verb_picks]
        result += [Distractor(a, "prior-hard:noun") for a in noun_picks]
        if len(result) < wanted:
            taken = {truth, *same_verb, *same_noun}
            rest = [a for a in self.vocabulary.actions if a not in taken]
            extra = weighted_sample(
                rest, [self.frequency[a] for a in rest], wanted - len(result), rng
            )
            result += [Distractor(a, "prior-hard:frequency") for a in extra]
        if len(result) < wanted:
            raise VerbnounError(f"the vocabulary has too few actions for {k} options")
        return result
