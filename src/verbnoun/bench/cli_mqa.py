"""``verbnoun mqa build``, ``mqa stats`` and ``mqa audit`` (typer commands): build and inspect
multiple-choice benchmarks; registered under ``mqa`` by :mod:`verbnoun.cli`. Heavy imports stay
inside the commands."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from verbnoun.bench.strategies import names as distractor_names
from verbnoun.cli_options import choice

mqa_app = typer.Typer(
    help="Build and inspect EPIC-KITCHENS-100-MQA benchmarks.", no_args_is_help=True
)


class Split(StrEnum):
    train = "train"
    validation = "validation"


# --distractors: the registry of verbnoun.bench.strategies
Distractors = choice("Distractors", distractor_names())


class OptionText(StrEnum):
    narration = "narration"
    official_key = "official_key"


class SpecialistRule(StrEnum):
    benchmark = "benchmark"
    training = "training"


@mqa_app.command("build")
def mqa_build(
    out: Annotated[
        Path, typer.Option(help="Output question file (.jsonl); the manifest goes beside it.")
    ],
    annotations: Annotated[
        Path | None,
        typer.Option(
            help="EK100 annotation folder; with --dataset, the folder its paths are relative to."
        ),
    ] = None,
    dataset: Annotated[
        Path | None,
        typer.Option(help="Dataset description (YAML) of any data set, e.g. configs/datasets/."),
    ] = None,
    split: Annotated[
        str, typer.Option(help="Split whose segments become questions.")
    ] = Split.validation.value,
    distractors: Annotated[
        Distractors, typer.Option(help="How wrong options are chosen.")  # type: ignore[valid-type]
    ] = "random",
    predictions: Annotated[
        Path | None,
        typer.Option(help="Specialist prediction file (JSON), for --distractors specialist."),
    ] = None,
    num_options: Annotated[int, typer.Option(min=2, max=26, help="Options per question (K).")] = 5,
    option_text: Annotated[OptionText, typer.Option(help="Option wording.")] = OptionText.narration,
    specialist_rule: Annotated[
        SpecialistRule,
        typer.Option(
            help="benchmark: top-K, ground truth replaces the K-th; training: K-1 of top-2K."
        ),
    ] = SpecialistRule.benchmark,
    seed: Annotated[int, typer.Option(help="Seed; the same seed gives the same bytes.")] = 0,
) -> None:
    """Build a multiple-choice benchmark: one question per labelled segment of a split."""
    from verbnoun.bench.build import BuildSettings, build_benchmark, manifest_path
    from verbnoun.data.dataset import open_dataset
    from verbnoun.errors import VerbnounError

    source = open_dataset(dataset, annotations)
    if source is None:
        raise VerbnounError("give --annotations DIR (EK100) or --dataset FILE.yaml")
    settings = BuildSettings(
        split=split,
        distractors=str(distractors),
        num_options=num_options,
        option_text=option_text.value,
        seed=seed,
        specialist_rule=specialist_rule.value,
    )
    manifest = build_benchmark(source, out, settings, predictions)
    typer.echo(
        f"wrote {manifest['counts']['questions']} questions to {out} "
        f"(manifest: {manifest_path(out)}, sha256 {manifest['output']['sha256'][:12]})"
    )


@mqa_app.command("stats")
def mqa_stats(
    questions: Annotated[Path, typer.Argument(help="A question file (.jsonl).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Summarise a question file: counts, correct letters, distractor sources and hardness."""
    import json

    from verbnoun.bench.questions import read_questions
    from verbnoun.bench.stats import render, summarize

    summary = summarize(read_questions(questions))
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
    else:
        render(summary, title=str(questions))


@mqa_app.command("audit")
def mqa_audit(
    questions: Annotated[Path, typer.Argument(help="The question file (.jsonl) to audit.")],
    train: Annotated[
        list[Path] | None,
        typer.Option(
            help="Training material for the rules that learn: question files or SFT records "
            "(repeat the option for several). Without it they are cross-fitted on QUESTIONS."
        ),
    ] = None,
    annotations: Annotated[
        Path | None,
        typer.Option(help="EK100 annotation folder: its train split's counts are the prior."),
    ] = None,
    dataset: Annotated[
        Path | None, typer.Option(help="Dataset description (YAML), instead of --annotations.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the audit as JSON here.")] = None,
) -> None:
    """How much of a benchmark a reader that never sees the video gets right, rule by rule."""
    from verbnoun.bench.audit import audit_file, render_audit
    from verbnoun.data.dataset import open_dataset

    source = open_dataset(dataset, annotations)
    report = audit_file(questions, train or (), dataset=source, out=out)
    render_audit(report, title=f"blind audit of {questions}")
    if out is not None:
        typer.echo(f"audit: {out}")
