"""The ``verbnoun`` command line: one entry point, one sub-command per stage.

Imports stay lazy: each command imports what it needs when it runs, so ``verbnoun mqa ...``
never imports torch. Usage errors (unknown flags, bad values) print one line and exit with 2;
errors in the user's files print one line naming the file, line or id and exit with 1.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="verbnoun",
    help="Measure and improve how multimodal LLMs understand human actions in video.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
from verbnoun.bench.cli_mqa import Distractors, mqa_app  # noqa: E402, F401 (Distractors: its old home)

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

from verbnoun.train.cli_lora import export_merged_command  # noqa: E402

export_app.command("merged")(export_merged_command)

from verbnoun.integrations.lmms_eval.export import export_lmms_eval  # noqa: E402

export_app.command("lmms-eval")(export_lmms_eval)

from verbnoun.annotate.cli import annotate_app  # noqa: E402
from verbnoun.annotate.cli_adapt import adapt_command  # noqa: E402

annotate_app.command("adapt")(adapt_command)

app.add_typer(annotate_app, name="annotate")


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
