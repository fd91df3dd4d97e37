"""``verbnoun annotate adapt`` (a typer command): train a classifier of your own behaviours
from a few scored bouts (:mod:`verbnoun.annotate.adapt`); registered under ``annotate`` by
:mod:`verbnoun.cli`."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from verbnoun.annotate.job import find_videos
from verbnoun.cli_options import Layout


class Gaps(StrEnum):
    background = "background"
    ignore = "ignore"


def adapt_command(
    videos: Annotated[
        Path,
        typer.Option(
            "--videos",
            "--video",
            help="A video file, a folder of them, or a layout's root: the videos labels name.",
        ),
    ],
    labels: Annotated[
        list[Path],
        typer.Option(
            help="Scored intervals, CSV video,behaviour,start,stop (seconds); repeat for more "
            "files; a filled-in label_next.csv of a run works too."
        ),
    ],
    out: Annotated[Path, typer.Option(help="Model folder to write (for annotate --adapted).")],
    layout: Annotated[Layout, typer.Option(help="How --videos DIR holds videos.")] = Layout.file,
    window: Annotated[float, typer.Option(help="Window length (s).")] = 1.0,
    stride: Annotated[float, typer.Option(help="Window step of annotate with it (s).")] = 0.5,
    frames: Annotated[int, typer.Option(help="Frames per window the features see.")] = 16,
    size: Annotated[int, typer.Option(help="Frames resized to SIZE x SIZE px.")] = 32,
    trees: Annotated[int, typer.Option(help="Trees of the random forest.")] = 200,
    gaps: Annotated[
        Gaps,
        typer.Option(
            help="Unscored time between a file's scored intervals of a video: '(no behaviour)' "
            "(background) or left out (ignore)."
        ),
    ] = Gaps.background,
    min_gap: Annotated[
        float, typer.Option(help="Unscored stretches shorter than this (s) are left out.")
    ] = 0.5,
    scored: Annotated[
        Path | None,
        typer.Option(
            help="CSV video_id,start,stop: the stretches scored exhaustively (unscored time in "
            "them is '(no behaviour)'); default: each file's first start to last stop."
        ),
    ] = None,
    holdout: Annotated[
        float, typer.Option(help="Share of each behaviour's bouts held out to measure agreement.")
    ] = 0.2,
    refit: Annotated[
        bool, typer.Option(help="Train the kept model on every label (held-out bouts too).")
    ] = True,
    seed: Annotated[int, typer.Option(help="Seed of the forest.")] = 0,
) -> None:
    """Train a classifier of your own behaviours from a few scored bouts; write a model folder
    that `verbnoun annotate --adapted DIR` uses on every other video, and its agreement with
    your labels on held-out bouts (agreement.json)."""
    from verbnoun.annotate.adapt import AdaptSettings, adapt, summary_lines

    settings = AdaptSettings(
        window=window, stride=stride, frames=frames, size=size, trees=trees, gaps=gaps.value,
        min_gap=min_gap, holdout=holdout, refit=refit, seed=seed,
    )  # fmt: skip
    settings.check()
    sources = find_videos(videos, layout.value)
    config = adapt(sources, labels, out, settings, scored=scored, progress=True)
    for text in summary_lines(config, out):
        typer.echo(text)
