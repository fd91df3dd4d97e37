"""Distractor strategies by name: the one registry that ``mqa build``, ``sft build``, the notebook
API and the CLI's ``--distractors`` choices read.

Each :class:`Strategy` declares its name, a one-line help, the build settings it reads (fields of
:class:`~verbnoun.bench.build.BuildSettings`), what it needs besides the vocabulary
(``predictions``: a specialist prediction file; ``counts``: how many labelled segments carry each
action) and ``build(inputs) -> DistractorStrategy``. :func:`strategy_for` gathers only what the
named strategy needs, refuses what it does not use, builds it and checks it fits the segments.

Adding a strategy is one module (a class with ``name`` and ``choose(segment, k, rng)``, see
:mod:`verbnoun.bench.distractors`) and one :func:`register` line at the end of this file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verbnoun.bench.distractors import (
    DistractorStrategy,
    PriorHardDistractors,
    RandomDistractors,
    SpecialistDistractors,
)
from verbnoun.data.annotations import ActionVocabulary
from verbnoun.data.ek100 import ClassVocabulary, Segment
from verbnoun.errors import VerbnounError
from verbnoun.lookup import Entry, Registry


@dataclass(frozen=True)
class StrategyInputs:
    """What a strategy may be built from (``None`` where the strategy does not need it)."""

    vocabulary: ActionVocabulary
    settings: Any  # BuildSettings: num_options, specialist_rule, ...
    predictions_path: Path | None = None
    verbs: ClassVocabulary | None = None
    nouns: ClassVocabulary | None = None
    actions: ClassVocabulary | None = None  # a single-label data set's action classes
    counts: Mapping[str, int] | None = None
    segments: Sequence[Segment] = ()  # the segments the questions are built for
    files: str | None = None  # how errors about them name their files


class Strategy(Entry):
    """A distractor strategy: ``build(StrategyInputs) -> DistractorStrategy``; ``settings``: the
    BuildSettings fields it reads besides ``num_options``."""

    NEEDS = ("predictions", "counts")


STRATEGIES: Registry[Strategy] = Registry("distractor strategy")
register = STRATEGIES.add  # add one: register(Strategy(...)), at the end of this file
names = STRATEGIES.names  # the CLI's choices, in registration order
get = STRATEGIES.lookup  # an unknown name: a one-line error naming the choices


def strategy_for(
    settings,
    dataset,
    vocabulary: ActionVocabulary,
    predictions_path: str | Path | None,
    segments: Sequence[Segment],
    files: str | None = None,
) -> DistractorStrategy:
    """The strategy ``settings.distractors`` names, built from what it needs of ``dataset``
    (an open :class:`~verbnoun.data.dataset.ActionDataset`) and checked against ``segments``
    (``files``: how errors name them)."""
    strategy = get(settings.distractors)
    if predictions_path is not None and "predictions" not in strategy.needs:
        users = [s.name for s in STRATEGIES.values() if "predictions" in s.needs]
        raise VerbnounError(f"--predictions is only used with --distractors {' or '.join(users)}")
    if predictions_path is None and "predictions" in strategy.needs:
        raise VerbnounError(f"--distractors {strategy.name} needs --predictions FILE")
    single = dataset.single_label
    counts = None
    if "counts" in strategy.needs:
        from verbnoun.bench.prior_grid import segment_counts

        counts = segment_counts(dataset, [settings.split])
    inputs = StrategyInputs(
        vocabulary=vocabulary, settings=settings,
        predictions_path=Path(predictions_path) if predictions_path is not None else None,
        verbs=None if single else dataset.verbs(), nouns=None if single else dataset.nouns(),
        actions=dataset.action_classes(), counts=counts, segments=segments, files=files,
    )  # fmt: skip
    return strategy.build(inputs)


# --------------------------------------------------------------------------- the strategies


def _specialist(inputs: StrategyInputs) -> SpecialistDistractors:
    from verbnoun.bench.predictions import load_predictions

    assert inputs.predictions_path is not None
    if inputs.actions is not None:
        predictions = load_predictions(inputs.predictions_path, num_actions=len(inputs.actions))
    elif inputs.verbs is None or inputs.nouns is None:
        raise VerbnounError("specialist predictions need the verb and noun classes")
    else:
        predictions = load_predictions(
            inputs.predictions_path, num_verbs=len(inputs.verbs), num_nouns=len(inputs.nouns)
        )
    predictions.check_fits(inputs.segments, inputs.files)
    settings = inputs.settings
    return SpecialistDistractors(predictions, settings.specialist_rule, settings.specialist_pool)


def _prior_grid(inputs: StrategyInputs) -> DistractorStrategy:
    from verbnoun.bench.prior_grid import PriorGridDistractors, split_vocabulary

    # distractor texts from the split's own narrations, as the answers' (strategy.texts)
    texts = split_vocabulary(inputs.segments)
    return PriorGridDistractors(inputs.vocabulary, inputs.counts, texts)


register(Strategy("random", "other actions of the vocabulary, uniformly",
                  lambda i: RandomDistractors(i.vocabulary)))  # fmt: skip
register(Strategy("specialist", "a specialist model's top predictions", _specialist,
                  needs=frozenset({"predictions"}),
                  settings=("specialist_rule", "specialist_pool")))  # fmt: skip
register(Strategy("prior-hard", "actions sharing the answer's verb or noun, by frequency",
                  lambda i: PriorHardDistractors(i.vocabulary)))  # fmt: skip
register(Strategy("prior-grid", "balanced verb x noun grids that a blind guess cannot read",
                  _prior_grid, needs=frozenset({"counts"})))  # fmt: skip
