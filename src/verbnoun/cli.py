"""The ``verbnoun`` command line: one entry point, one sub-command per stage.

Imports stay lazy: each command imports what it needs when it runs, so ``verbnoun mqa ...``
never imports torch. Usage errors (unknown flags, bad values) print one line and exit with 2;
errors in the user's files print one line naming the file, line or id and exit with 1.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from verbnoun.bench.strategies import names as distractor_names
from verbnoun.cli_options import choice

app = typer.Typer(
    name="verbnoun",
    help="Measure and improve how multimodal LLMs understand human actions in video.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
mqa_app = typer.Typer(
    help="Build and inspect EPIC-KITCHENS-100-MQA benchmarks.", no_args_is_help=True
)
app.add_typer(mqa_app, name="mqa")

from verbnoun.data.cli_video import frames_app, synth  # noqa: E402

app.add_typer(frames_app, name="frames")
app.command("synth")(synth)

from verbnoun.evaluate.cli_eval import eval_command  # noqa: E402
from verbnoun.evaluate.cli_score import (  # noqa: E402
    report_command,
    score_command,
    show_prompt_command,
)

app.command("eval")(eval_command)
app.command("score")(score_command)
app.command("report")(report_command)
app.command("show-prompt")(show_prompt_command)

from verbnoun.model.cli_model import ask  # noqa: E402

app.command("ask")(ask)

from verbnoun.train.cli_sft import sft_app, specialist_app  # noqa: E402

app.add_typer(sft_app, name="sft")
app.add_typer(specialist_app, name="specialist")

from verbnoun.train.cli_train import train  # noqa: E402

app.command("train")(train)

export_app = typer.Typer(
    help="Export benchmarks and checkpoints to other tools (lmms-eval, Hugging Face).",
    no_args_is_help=True,
)
app.add_typer(export_app, name="export")
# Each exporter registers its command here, from its own module (imports stay lazy inside).
from verbnoun.model.export_hf import export_hf_command  # noqa: E402

export_app.command("hf")(export_hf_command)

from verbnoun.integrations.lmms_eval.export import export_lmms_eval  # noqa: E402

export_app.command("lmms-eval")(export_lmms_eval)

from verbnoun.annotate.cli import annotate_app  # noqa: E402
from verbnoun.annotate.cli_adapt import adapt_command  # noqa: E402

annotate_app.command("adapt")(adapt_command)

app.add_typer(annotate_app, name="annotate")


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


@app.command("demo")
def demo(
    out: Annotated[Path, typer.Option(help="Run folder (everything goes under it).")] = Path(
        "runs/demo"
    ),
    seed: Annotated[int, typer.Option(help="Seed of the synthetic kitchen and the benchmark.")] = 0,
) -> None:
    """Run the pipeline on the embedded synthetic kitchen and print the report's path."""
    from verbnoun.demo import run_demo

    report = run_demo(out, seed=seed, progress=True)
    typer.echo(f"report: {report}")


def main(argv: list[str] | None = None) -> int:
    """Console entry point: run the app, turning errors into one-line messages.

    Usage errors come from the click layer inside typer (vendored in recent typer releases), so
    they are recognised by their interface (``exit_code`` and ``format_message``), not by class.
    """
    from verbnoun.errors import VerbnounError

    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="verbnoun", standalone_mode=False)
        if isinstance(code, int) and not isinstance(code, bool):
            return code  # a command's typer.Exit(code), e.g. 3: some questions failed
    except typer.Exit as exit_:
        return exit_.exit_code
    except typer.Abort:
        print("verbnoun: aborted", file=sys.stderr)
        return 130
    except VerbnounError as error:
        print(f"verbnoun: error: {_one_line(str(error))}", file=sys.stderr)
        return 1
    except Exception as error:
        if not (hasattr(error, "format_message") and hasattr(error, "exit_code")):
            return _unexpected(error, sys.argv[1:] if argv is None else argv)
        if type(error).__name__ == "NoArgsIsHelpError":  # a group called without a command
            print(error.format_message())
            return 2
        ctx = getattr(error, "ctx", None)
        where = f"{ctx.command_path}: " if ctx is not None else ""
        print(f"verbnoun: error: {where}{_one_line(error.format_message())}", file=sys.stderr)
        return error.exit_code
    return 0


def _one_line(message: str) -> str:
    return " ".join(message.split())


def _unexpected(error: Exception, argv: list[str]) -> int:
    """Last resort for an error no reader turned into a VerbnounError: still one line, exit 1.

    An OS error names its file (permission denied, disk full, ...). Anything else is a bug or an
    input nothing checked yet: the line names the command and the error; ``VERBNOUN_DEBUG=1``
    prints the traceback too.
    """
    import os
    import traceback

    if os.environ.get("VERBNOUN_DEBUG", "") not in ("", "0"):
        traceback.print_exception(error, file=sys.stderr)
    if isinstance(error, OSError) and error.filename is not None:
        from verbnoun.fileio import os_problem

        print(f"verbnoun: error: {error.filename}: {os_problem(error)}", file=sys.stderr)
        return 1
    command = " ".join(["verbnoun", *argv])
    detail = _one_line(str(error)) or "(no message)"
    print(
        f"verbnoun: error: unexpected {type(error).__name__} in `{_one_line(command)[:300]}`: "
        f"{detail[:500]} (set VERBNOUN_DEBUG=1 for the traceback, and please report it)",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
