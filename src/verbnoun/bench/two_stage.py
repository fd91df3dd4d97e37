"""Two-stage questions of a run (``verbnoun eval --two-stage``): the options of each segment are
the specialist's top-K actions.

In: a prediction file, the data set it ranks, the option wording and K. Out: the question file
``two-stage-top{K}.jsonl`` in the run folder. It is deterministic (same inputs, same bytes), so a
resumed run finds the file it started with.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from verbnoun.errors import VerbnounError

OPTION_TEXTS = ("narration", "official_key")


@dataclass(frozen=True)
class TwoStageSettings:
    """The ``--top-k`` actions of ``--predictions`` as options, worded as ``--option-text``
    says, shuffled with ``seed``."""

    top_k: int = 20
    option_text: str = "narration"
    predictions: Path | None = None
    seed: int = 0


def two_stage_questions(
    out: Path, data, settings: TwoStageSettings, split: str = "validation"
) -> Path:
    """Write the two-stage question file of run folder ``out`` and return its path.
    ``data``: the run's :class:`~verbnoun.evaluate.adapters.DataSettings`."""
    predictions = settings.predictions
    folder = data.open()
    if predictions is None or folder is None:
        raise VerbnounError(
            "--two-stage needs --predictions FILE and --annotations DIR (or --dataset FILE.yaml)"
        )
    from verbnoun.bench.build import OptionTexts, build_two_stage_questions
    from verbnoun.bench.predictions import load_predictions
    from verbnoun.bench.questions import write_questions

    if settings.option_text not in OPTION_TEXTS:
        raise VerbnounError(f"unknown option text {settings.option_text!r}")
    if folder.single_label:
        raise VerbnounError("--two-stage is not supported for single-label data sets yet")
    verbs, nouns = folder.verbs(), folder.nouns()
    loaded = load_predictions(Path(predictions), num_verbs=len(verbs), num_nouns=len(nouns))
    texts = OptionTexts.of(folder, folder.action_vocabulary(), settings.option_text)
    segments = folder.segments(split, require_labels=True)
    loaded.check_fits(segments)
    built = build_two_stage_questions(
        segments, loaded, texts, top_k=settings.top_k, seed=settings.seed
    )
    path = Path(out) / f"two-stage-top{settings.top_k}.jsonl"
    write_questions(path, built)
    return path
