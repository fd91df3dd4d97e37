"""Build an EPIC-KITCHENS-100-MQA benchmark: one multiple-choice question per labelled segment.

``build_questions`` works on any list of labelled segments; ``build_benchmark`` reads a data set
(an EK100 annotation folder, or any data set through a description YAML, see
:mod:`verbnoun.data.dataset`), builds, and writes ``FILE.jsonl`` plus ``FILE.manifest.json``
(inputs with their sha256, every setting, counts, library version and the output's sha256).

Single-label data sets (one action class per segment) work the same way: action ids are class
ids (``"7"``), option texts in ``official_key`` mode are the class keys, and prior-hard
distractors, having no verb or noun to share, are the most frequent other actions (drawn by
frequency).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from verbnoun.bench import prompts, strategies
from verbnoun.bench.distractors import DistractorStrategy
from verbnoun.bench.predictions import SpecialistPredictions
from verbnoun.bench.questions import (
    FORMAT_VERSION,
    Option,
    PriorAction,
    Question,
    questions_bytes,
)
from verbnoun.bench.stats import summarize
from verbnoun.data.annotations import ActionVocabulary
from verbnoun.data.dataset import ActionDataset, as_dataset, describe
from verbnoun.data.ek100 import ClassVocabulary, Segment, parse_action_id, single_action_class
from verbnoun.errors import VerbnounError
from verbnoun.fileio import atomic_outputs, json_bytes, sha256_bytes

OPTION_TEXTS = ("narration", "official_key")
PRIOR_WINDOW = 3.0  # seconds: SPEC 5(b)


@dataclass(frozen=True)
class BuildSettings:
    """Everything that changes a benchmark's content."""

    split: str = "validation"
    distractors: str = "random"
    num_options: int = 5
    option_text: str = "narration"
    seed: int = 0
    specialist_rule: str = "benchmark"
    specialist_pool: int = 0  # the training rule draws from the top N (0: 2K, the release)
    vocabulary_splits: tuple[str, ...] = ("train", "validation")

    def check(self) -> None:
        strategies.get(self.distractors)  # a registered strategy (verbnoun.bench.strategies)
        if not 2 <= self.num_options <= len(prompts.LETTERS):
            raise VerbnounError(f"num_options must be 2..26, got {self.num_options}")
        if self.option_text not in OPTION_TEXTS:
            raise VerbnounError(f"unknown option text {self.option_text!r}")


class OptionTexts:
    """Turns action ids into option text: a narration of the class, or ``verb noun`` keys
    (single-label data sets: the action class's key, from ``actions``)."""

    def __init__(
        self,
        vocabulary: ActionVocabulary,
        verbs: ClassVocabulary | None,
        nouns: ClassVocabulary | None,
        mode: str,
        actions: ClassVocabulary | None = None,
    ) -> None:
        self.vocabulary, self.verbs, self.nouns, self.mode = vocabulary, verbs, nouns, mode
        self.actions = actions

    @classmethod
    def of(cls, dataset: ActionDataset, vocabulary: ActionVocabulary, mode: str) -> OptionTexts:
        """The option texts of a data set's classes (verb/noun or single-label)."""
        if dataset.single_label:
            return cls(vocabulary, None, None, mode, dataset.action_classes())
        return cls(vocabulary, dataset.verbs(), dataset.nouns(), mode)

    def key_text(self, action: str) -> str:
        single = single_action_class(action)
        if single is not None:
            if self.actions is None:
                raise VerbnounError(f"action {action}: a class id, but no action classes given")
            return self.actions.display(single)
        if self.verbs is None or self.nouns is None:
            raise VerbnounError(f"action {action}: verb:noun, but the data set is single-label")
        verb, noun = parse_action_id(action)
        return f"{self.verbs.display(verb)} {self.nouns.display(noun)}"

    def distractor(self, action: str, used: set[str], rng: random.Random) -> tuple[str, str]:
        """(text, text_source) for a distractor, never one of the texts already ``used``."""
        if self.mode == "narration":
            narrations = self.vocabulary.narrations.get(action, {})
            texts = [t for t in narrations if t and t not in used]
            if texts:
                return rng.choices(texts, [narrations[t] for t in texts])[0], "narration"
        text = self.key_text(action)
        if text in used:
            raise VerbnounError(f"no distinct option text left for action {action}")
        return text, "official_key"


def prior_actions(segments: Sequence[Segment]) -> dict[str, tuple[PriorAction, PriorAction]]:
    """The two previous actions of each segment that qualifies under SPEC 5(b).

    Within a video (segments ordered by start time, then file order), a segment qualifies when the
    previous one starts at most 3 s before it and the one before that at most 3 s before the
    previous one. Offsets are start-time differences to the current segment, in seconds, rounded
    to 2 decimals; the older action comes first.
    """
    by_video: dict[str, list[Segment]] = {}
    for segment in segments:
        by_video.setdefault(segment.video_id, []).append(segment)
    result = {}
    for video_segments in by_video.values():
        ordered = sorted(video_segments, key=lambda s: (s.start, s.row, s.source))
        for older, newer, current in zip(ordered, ordered[1:], ordered[2:], strict=False):
            if (
                current.start - newer.start <= PRIOR_WINDOW
                and newer.start - older.start <= PRIOR_WINDOW
            ):
                result[current.narration_id] = (
                    PriorAction(
                        older.narration_id,
                        round(current.start - older.start, 2),
                        older.narration or "",
                        older.action_id,
                    ),
                    PriorAction(
                        newer.narration_id,
                        round(current.start - newer.start, 2),
                        newer.narration or "",
                        newer.action_id,
                    ),
                )
    return result


def question_rng(seed: int, narration_id: str) -> random.Random:
    """One generator per question: independent of build order, process and hash seed."""
    return random.Random(f"llavaction-mqa:{seed}:{narration_id}")


def segment_question(
    segment: Segment,
    options: Sequence[Option],
    answer_index: int,
    prior: tuple[PriorAction, ...] = (),
) -> Question:
    """The question about a labelled segment with the given options, validated. A multi-label
    segment's question is multi-select: every option carrying one of its labels is right
    (``answer_index`` is then the first of them, or -1)."""
    multi = {}
    if segment.multi_label:
        indices = tuple(i for i, o in enumerate(options) if o.action_id in segment.action_ids)
        multi = {"action_ids": segment.action_ids, "answer_indices": indices}
        answer_index = indices[0] if indices else -1
    question = Question(
        id=segment.narration_id,
        video_id=segment.video_id,
        participant_id=segment.participant_id,
        start=segment.start,
        stop=segment.stop,
        options=tuple(options),
        answer_index=answer_index,
        narration=segment.narration or "",
        verb_class=segment.verb_class,
        noun_class=segment.noun_class,
        prior_actions=prior,
        action_class=segment.action_class,
        **multi,
    )
    question.validate()
    return question


def build_questions(
    segments: Sequence[Segment],
    strategy: DistractorStrategy,
    texts: OptionTexts,
    settings: BuildSettings,
) -> list[Question]:
    """One question per labelled segment, in file order (multi-select for a segment with several
    labels, see :func:`multi_select_options`)."""
    k = settings.num_options
    priors = prior_actions(segments)
    questions = []
    for segment in segments:
        rng = question_rng(settings.seed, segment.narration_id)
        if segment.multi_label:
            options = multi_select_options(segment, strategy, texts, settings, rng)
            questions.append(segment_question(segment, options, -1))
            continue
        chosen = strategy.choose(segment, k, rng)
        if settings.option_text == "narration":
            truth = Option(segment.narration or "", segment.action_id, "ground_truth", "narration")
        else:
            truth = Option(
                texts.key_text(segment.action_id), segment.action_id, "ground_truth", "official_key"
            )
        options = [truth]
        used = {truth.text}
        for distractor in chosen:
            text, text_source = texts.distractor(distractor.action_id, used, rng)
            used.add(text)
            options.append(
                Option(text, distractor.action_id, distractor.source, text_source, distractor.rank)
            )
        rng.shuffle(options)
        questions.append(
            segment_question(
                segment, options, options.index(truth), priors.get(segment.narration_id, ())
            )
        )
    return questions


def multi_select_options(
    segment: Segment,
    strategy: DistractorStrategy,
    texts: OptionTexts,
    settings: BuildSettings,
    rng: random.Random,
) -> list[Option]:
    """The shuffled options of a multi-label segment's question: every true label, and
    distractors that are none of them, ``max(num_options, labels + 1)`` options in all.

    The strategy is asked for as many extra distractors as the segment has labels besides the
    first (strategies exclude only ``segment.action_id``); those that are true labels are dropped.
    Every option's text, the true ones included, is drawn the same way (a narration of its class,
    or its class keys), so the wording does not give the answers away.
    """
    truths = segment.action_ids
    total = max(settings.num_options, len(truths) + 1)
    if total > len(prompts.LETTERS):
        raise VerbnounError(
            f"segment {segment.narration_id} has {len(truths)} labels: too many for one question"
        )
    wanted = total - len(truths)
    try:
        chosen = strategy.choose(segment, wanted + len(truths), rng)
    except VerbnounError as error:  # name the segment whose labels asked for so many options
        raise VerbnounError(
            f"{segment.source}:{segment.line}: segment {segment.narration_id} has "
            f"{len(truths)} labels, so its question needs {total} options: {error}"
        ) from None
    kept = [d for d in chosen if d.action_id not in truths][:wanted]
    if len(kept) < wanted:
        raise VerbnounError(
            f"segment {segment.narration_id}: the {strategy.name} strategy gave {len(kept)} "
            f"distractors that are not its labels, need {wanted}"
        )
    options, used = [], set()
    for action in truths:
        text, text_source = _text(texts, action, used, rng)
        used.add(text)
        options.append(Option(text, action, "ground_truth", text_source))
    for distractor in kept:
        text, text_source = _text(texts, distractor.action_id, used, rng)
        used.add(text)
        options.append(
            Option(text, distractor.action_id, distractor.source, text_source, distractor.rank)
        )
    rng.shuffle(options)
    return options


def _text(texts: OptionTexts, action: str, used: set[str], rng: random.Random) -> tuple[str, str]:
    """An option's (text, text_source): a narration of its class or its class keys."""
    if texts.mode == "narration":
        return texts.distractor(action, used, rng)
    text = texts.key_text(action)
    if text in used:
        raise VerbnounError(f"no distinct option text left for action {action}")
    return text, "official_key"


def build_benchmark(
    annotations_dir: str | Path | ActionDataset,
    out: str | Path,
    settings: BuildSettings,
    predictions_path: str | Path | None = None,
) -> dict:
    """Build a benchmark from a data set; write the JSONL and its manifest.

    ``annotations_dir``: an EK100 annotation folder, a dataset description YAML, or an
    :class:`~verbnoun.data.dataset.ActionDataset` already open. Returns the manifest (also
    written to ``<out without .jsonl>.manifest.json``).
    """
    from verbnoun import __version__

    settings.check()
    annotations = as_dataset(annotations_dir)
    assert annotations is not None
    # a split without label columns (EK100's test timestamps) is refused there, naming the file;
    # a data set whose test split is labelled (MECCANO, EPFL-Smart-Kitchen-30) builds from it
    segments = annotations.segments(settings.split, require_labels=True)
    files = ", ".join(str(p) for p in annotations.split_paths(settings.split))
    if not segments:
        raise VerbnounError(f"no segments in {files} (split {settings.split!r})")
    vocabulary = annotations.action_vocabulary(settings.vocabulary_splits)
    strategy = strategies.strategy_for(
        settings, annotations, vocabulary, predictions_path, segments, files
    )
    # a strategy may name where its distractors' texts come from (prior-grid: the split)
    texts = OptionTexts.of(
        annotations, getattr(strategy, "texts", None) or vocabulary, settings.option_text
    )
    questions = build_questions(segments, strategy, texts, settings)

    out = Path(out)
    data = questions_bytes(questions)
    inputs = annotations.inputs(predictions_path)
    manifest = {
        "kind": "llavaction.mqa",
        "format_version": FORMAT_VERSION,
        "llavaction_version": __version__,
        **describe(annotations),
        "settings": {
            **asdict(settings),
            "vocabulary_splits": list(settings.vocabulary_splits),
            "predictions": str(predictions_path) if predictions_path else None,
        },
        "split_files": [annotations.relative(p) for p in annotations.split_paths(settings.split)],
        "inputs": inputs,
        "vocabulary": vocabulary.provenance,
        **_rule(strategy, settings),
        "counts": summarize(questions),
        "output": {"path": out.name, "sha256": sha256_bytes(data)},
    }
    # Both files land together, only after everything above succeeded: a failed build leaves
    # the previous question file and manifest untouched.
    with atomic_outputs(out, manifest_path(out)) as (questions_tmp, manifest_tmp):
        questions_tmp.write_bytes(data)
        manifest_tmp.write_bytes(json_bytes(manifest))
    return manifest


def _rule(strategy: DistractorStrategy, settings: BuildSettings) -> dict:
    """``{"distractor_rule": ...}`` for strategies that describe their rule and its version
    (``prior-grid``); nothing for the others, whose manifests stay as they were."""
    describe_rule = getattr(strategy, "describe", None)
    return {"distractor_rule": describe_rule(settings.num_options)} if describe_rule else {}


def manifest_path(questions_path: str | Path) -> Path:
    path = Path(questions_path)
    stem = path.name[: -len(".jsonl")] if path.name.endswith(".jsonl") else path.name
    return path.with_name(stem + ".manifest.json")


def build_two_stage_questions(
    segments: Sequence[Segment],
    predictions: SpecialistPredictions,
    texts: OptionTexts,
    *,
    top_k: int = 20,
    seed: int = 0,
) -> list[Question]:
    """Two-stage recognition (SPEC 4): the specialist's top-K actions as options, in rank order.

    No ground truth is forced in: when the specialist missed it, ``answer_index`` is -1 and the
    question cannot be answered right (the ceiling is the specialist's top-K recall). Every
    option, the true one included, is shown as one narration drawn from its class (or its class
    keys), so the wording does not give the answer away.
    """
    if not 2 <= top_k <= len(prompts.LETTERS):
        raise VerbnounError(f"--top-k must be 2..26, got {top_k}")
    questions = []
    for segment in segments:
        ranked = predictions.ranked(segment)
        if len(ranked) < top_k:
            raise VerbnounError(
                f"{predictions.path} [{predictions.key_of(segment)}]: {segment.narration_id} has "
                f"{len(ranked)} distinct predictions, need {top_k}"
            )
        rng = question_rng(seed, segment.narration_id)
        options, used = [], set()
        for rank, action in enumerate(ranked[:top_k], start=1):
            text, text_source = _text(texts, action, used, rng)
            used.add(text)
            options.append(Option(text, action, "specialist", text_source, rank))
        truth = segment.action_id
        answer = next((i for i, o in enumerate(options) if o.action_id == truth), -1)
        questions.append(segment_question(segment, options, answer))
    return questions
