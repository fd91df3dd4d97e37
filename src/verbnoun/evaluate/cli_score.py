"""``verbnoun score``, ``verbnoun show-prompt`` and ``verbnoun report``: reading run folders
back (typer commands; heavy imports stay inside)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from verbnoun.cli_options import Layout, choice
from verbnoun.errors import VerbnounError
from verbnoun.interpret.parsing import PARSERS

Parser = choice("Parser", PARSERS)


def _source(dataset: Path | None, annotations: Path | None):
    from verbnoun.evaluate.adapters import DataSettings
    from verbnoun.evaluate.job import data_source

    return data_source(DataSettings(annotations, dataset))


def score_command(
    runs: Annotated[list[Path], typer.Argument(help="Run directories to compare.")],
    annotations: Annotated[
        Path | None, typer.Option(help="EK100 annotation folder, for head/tail and unseen splits.")
    ] = None,
    dataset: Annotated[
        Path | None, typer.Option(help="Dataset description (YAML), for the same breakdowns.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    reparse: Annotated[
        bool,
        typer.Option(
            help="Parse RUN's stored raw answers again with this version's parser into --out "
            "(no model is asked), then compare the two runs."
        ),
    ] = False,
    out: Annotated[Path | None, typer.Option(help="--reparse: the new run folder.")] = None,
    parser: Annotated[
        Parser | None, typer.Option(help="--reparse: strict or original (default: the run's own).")
    ] = None,
) -> None:
    """Compare runs: accuracy, 95% CI, unparsed rate, and paired tests on shared questions.

    With --reparse RUN --out NEW: rescore RUN's answers with the current parser into NEW first."""
    import json

    from verbnoun.evaluate.score import compare, load_run, render

    source = _source(dataset, annotations)
    line = None
    if reparse:
        from verbnoun.evaluate.reparse import describe, reparse_run

        if len(runs) != 1 or out is None:
            raise VerbnounError("--reparse takes one run folder and --out NEW_FOLDER")
        summary = reparse_run(
            runs[0], out, parser=parser.value if parser else None, annotations=source
        )
        runs = [runs[0], out]
    elif out is not None or parser is not None:
        raise VerbnounError("--out and --parser go with --reparse")
    loaded = [load_run(r, annotations=source) for r in runs]
    comparison = compare(loaded)
    if reparse:
        line = describe(summary, loaded[0], loaded[1])
        comparison = {"reparse": summary, **comparison}
    if as_json:
        typer.echo(json.dumps(comparison, indent=2))
        return
    render(comparison)
    if line is not None:
        typer.echo(line)


def show_prompt_command(
    run: Annotated[Path, typer.Argument(help="A run folder (from `verbnoun eval`).")],
    question: Annotated[str, typer.Argument(help="A question id of the run's question file.")],
    ids: Annotated[bool, typer.Option(help="Local models: print the input ids too.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the record as JSON.")] = False,
) -> None:
    """Print exactly what the run's model was sent for one question (an API request body with
    the frames as placeholders, or a local model's prompt text and input ids), rebuilt from the
    run's config and question file; no model is asked."""
    import json

    from verbnoun.evaluate.prompt_log import render, show_prompt

    shown = show_prompt(run, question)
    if as_json:
        typer.echo(json.dumps(shown, indent=2, ensure_ascii=False))
        return
    what, text = render(shown, ids=ids)
    typer.echo(f"# {what}", err=True)
    typer.echo(text)


def report_command(
    runs: Annotated[list[Path], typer.Argument(help="Run directories to put in the report.")],
    out: Annotated[Path, typer.Option(help="The HTML file to write.")],
    videos: Annotated[
        Path | None,
        typer.Option(help="Video root: a contact sheet of each question's frames, in OUT_files/."),
    ] = None,
    layout: Annotated[Layout, typer.Option(help="Video layout under --videos.")] = Layout.chunks,
    size: Annotated[int, typer.Option(min=16, help="Contact-sheet frame size in pixels.")] = 96,
    thumbnails: Annotated[str, typer.Option(help="Contact-sheet format: jpeg or webp.")] = "jpeg",
    page_size: Annotated[int, typer.Option(min=1, help="Questions per page of the browser.")] = 50,
    annotations: Annotated[Path | None, typer.Option(help="EK100 annotation folder.")] = None,
    dataset: Annotated[
        Path | None, typer.Option(help="Dataset description (YAML): names of verbs and nouns.")
    ] = None,
) -> None:
    """Write one static HTML page: findings, accuracy per model and benchmark, paired tests,
    and every question in a browser (filters, pages, keys)."""
    from verbnoun.evaluate.report import FORMATS, write_report
    from verbnoun.evaluate.score import load_run

    if thumbnails not in FORMATS:
        raise typer.BadParameter("use jpeg or webp", param_hint="--thumbnails")
    source = _source(dataset, annotations)
    loaded = [load_run(r, annotations=source) for r in runs]
    frames_of, settings = None, None
    if videos is not None:
        from verbnoun.evaluate.frames import make_frame_source

        frames = loaded[0].config["frames"]
        frames_of = make_frame_source(videos, layout.value, frames, size)
        settings = {"frames": frames, "size": size, "layout": layout.value}
    path = write_report(
        loaded, out, frames_of=frames_of, frame_settings=settings, image_format=thumbnails,
        dataset=source, page_size=page_size, progress=True,
    )  # fmt: skip
    typer.echo(f"report: {path}")
