"""How a model's answer to a multi-select question becomes a set of action ids, by name.

A multi-label question (several behaviours in one clip, :mod:`verbnoun.bench.questions`'
``action_ids``) is scored by comparing sets (:mod:`verbnoun.evaluate.multilabel`), so each run
names how a reply becomes a set (``--answer-set``, recorded in the run's ``config.json``):

* ``letters`` (default): the reply is read by the multi-select parser
  (:func:`verbnoun.interpret.multiselect.parse_selection`: ``A, C``, ``B. walk; D. eat``, JSON
  lists, option texts; alternatives, hedges, negations stay unparsed); the set is the chosen
  options' action ids. An unparsed reply is an empty set (Jaccard 0) and counts as unparsed.
* ``free-text``: the direct-narration question is asked (``--open-vocab``) and the free-text
  mapper returns every action the reply names
  (:meth:`verbnoun.interpret.open_vocab.OpenVocabMapper.map_all`); no action found: unparsed.
* ``threshold``: the options whose probability reaches ``--threshold`` (default 0.3), the
  probabilities being the softmax over the question's options of the adapter's per-option
  log-likelihoods (``llavaction --scoring letters`` or ``text``, ``hf``: option likelihood);
  a reply without scores, or whose scores are no log-likelihoods (a score above 0, as the
  ``prior`` baseline's counts), is refused in one line. No option reaching the threshold is an empty set
  (counted as such, not as unparsed: the model gave its scores).

Every reading also yields the per-class scores it saw (``scores``: action id -> probability of
the question's options; ``None`` for ``letters`` without scores and for ``free-text``), from which
mean average precision is computed when every clip has them.

Adding a reading is one function and one :data:`ANSWER_SETS` line.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from verbnoun.errors import VerbnounError
from verbnoun.lookup import Entry, Registry

MULTISELECT_VERSION = "1"  # of this module's readings; the parser has its own version


@dataclass(frozen=True)
class AnswerSetSettings:
    """How a multi-select reply becomes a set (``--answer-set``, ``--threshold``)."""

    answer_set: str = "letters"
    threshold: float = 0.3  # a softmax over the options: 0.5 could never choose two

    def check(self) -> None:
        entry = ANSWER_SETS.lookup(self.answer_set)
        if "threshold" in entry.settings and not 0 < self.threshold <= 1:
            raise VerbnounError(f"--threshold must be in (0, 1], got {self.threshold}")

    def record(self) -> dict:
        """What a run's config.json records (the threshold only where it is read)."""
        from verbnoun.interpret.multiselect import MULTI_PARSER_VERSION

        entry = ANSWER_SETS.lookup(self.answer_set)
        recorded: dict[str, Any] = {"answer_set": self.answer_set, "version": MULTISELECT_VERSION}
        if "threshold" in entry.settings:
            recorded["threshold"] = self.threshold
        if self.answer_set == "letters":
            recorded["parser_version"] = MULTI_PARSER_VERSION
        return recorded


@dataclass(frozen=True)
class SetRead:
    """A reply read as a set: the chosen action ids (``None``: unparsed), the options chosen
    (indices; ``None`` for free text, which shows no options), the rule that decided, and the
    per-class scores seen (``None`` when the reply has none)."""

    labels: frozenset[str] | None
    choices: tuple[int, ...] | None
    rule: str
    scores: dict[str, float] | None = None


class AnswerSet(Entry):
    """A reading of replies as sets: ``build(settings) -> read(question, raw, scores, mapper)``;
    ``needs``: ``scores`` (per-option scores in the reply), ``mapper`` (the free-text mapper,
    ``--open-vocab``)."""

    NEEDS = ("scores", "mapper")


Reader = Callable[[Any, str, "Sequence[float] | None", Any], SetRead]


def option_probabilities(question, scores: Sequence[float] | None) -> dict[str, float] | None:
    """Each option's action id -> its probability: the softmax over the options of per-option
    log-likelihoods (``None`` without scores, and for scores that are no log-likelihoods: a
    score above 0, as the ``prior`` baseline's training counts)."""
    if scores is None or any(s > 0 for s in scores):
        return None
    if len(scores) != len(question.options):
        raise VerbnounError(
            f"question {question.id}: {len(scores)} scores for {len(question.options)} options"
        )
    top = max(scores)
    weights = [math.exp(s - top) for s in scores]
    total = sum(weights)
    return {o.action_id: w / total for o, w in zip(question.options, weights, strict=True)}


def _letters(settings: AnswerSetSettings) -> Reader:
    from verbnoun.interpret.multiselect import parse_selection

    def read(question, raw: str, scores, mapper) -> SetRead:
        parsed = parse_selection(raw, question.option_texts)
        probabilities = option_probabilities(question, scores)
        if parsed.indices is None:
            return SetRead(None, None, parsed.rule, probabilities)
        chosen = tuple(sorted(parsed.indices))
        labels = frozenset(question.options[i].action_id for i in chosen)
        return SetRead(labels, chosen, parsed.rule, probabilities)

    return read


def _free_text(settings: AnswerSetSettings) -> Reader:
    def read(question, raw: str, scores, mapper) -> SetRead:
        if mapper is None:
            raise VerbnounError("--answer-set free-text needs --open-vocab (the free-text mapper)")
        found = mapper.map_all(raw)
        if not found:
            return SetRead(None, None, "unmapped")
        return SetRead(frozenset(m.action_id for m in found), None, "free-text")

    return read


def _threshold(settings: AnswerSetSettings) -> Reader:
    def read(question, raw: str, scores, mapper) -> SetRead:
        probabilities = option_probabilities(question, scores)
        if probabilities is None:
            what = "scores" if scores is None else "log-likelihoods (a score above 0)"
            raise VerbnounError(
                f"question {question.id}: --answer-set threshold needs per-option {what} "
                "(e.g. --model llavaction --scoring letters or text, --model hf)"
            )
        chosen = tuple(
            i for i, o in enumerate(question.options)
            if probabilities[o.action_id] >= settings.threshold
        )  # fmt: skip
        labels = frozenset(question.options[i].action_id for i in chosen)
        return SetRead(labels, chosen, "threshold", probabilities)

    return read


ANSWER_SETS: Registry[AnswerSet] = Registry("answer set")
ANSWER_SETS.add(AnswerSet("letters", "the multi-select parser reads the options the reply gives",
                          _letters))  # fmt: skip
ANSWER_SETS.add(AnswerSet("free-text", "every action the free-text mapper finds in a narration",
                          _free_text, needs=frozenset({"mapper"})))  # fmt: skip
ANSWER_SETS.add(AnswerSet("threshold", "the options whose probability reaches --threshold",
                          _threshold, needs=frozenset({"scores"}),
                          settings=("threshold",)))  # fmt: skip
names = ANSWER_SETS.names


def reader(settings: AnswerSetSettings) -> Reader:
    """The reading ``settings.answer_set`` names (checked)."""
    settings.check()
    return ANSWER_SETS.lookup(settings.answer_set).build(settings)
