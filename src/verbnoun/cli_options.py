"""Typer option types that several commands share (``eval``, ``sft captions``, ``annotate``).

Choices come from the modules that own them (a tuple, or the adapter registry), never from an
enum that repeats their names: :func:`choice` turns such a tuple into the enum typer wants.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from verbnoun.data.layouts import LAYOUTS

_ENUMS: dict[tuple[str, tuple[str, ...]], type[StrEnum]] = {}


def choice(name: str, values: tuple[str, ...]) -> type[StrEnum]:
    """``values`` as a string enum named ``name`` (one class per name and values)."""
    key = (name, tuple(values))
    if key not in _ENUMS:
        _ENUMS[key] = StrEnum(name, {value: value for value in values})
    return _ENUMS[key]


def option(kind, text: str, *names: str, **limits):
    """``Annotated[kind, typer.Option(*names, help=text, **limits)]``: one option type, one line."""
    return Annotated[kind, typer.Option(*names, help=text, **limits)]


# how every OpenAI-compatible call retries (eval, sft captions); defaults from RetryPolicy
TriesOpt = Annotated[
    int,
    typer.Option(min=1, help="OpenAI-compatible endpoint: tries per request (transient faults)."),
]
MaxWaitOpt = Annotated[
    float, typer.Option(min=0, help="Endpoint: seconds one request may wait between tries, in all.")
]
FirstWaitOpt = Annotated[
    float, typer.Option(min=0, help="Endpoint: first backoff in seconds (doubles, jittered).")
]
RequestTimeoutOpt = Annotated[
    float, typer.Option(min=0.001, help="Endpoint: seconds one try may take.")
]
MaxFailuresOpt = Annotated[
    int,
    typer.Option(
        min=0,
        help="Endpoint: stop (keeping everything) after N failed requests in a row (0: never).",
    ),
]

# where videos are and how frames are sampled (frames, eval, annotate, export, sft)
Layout = choice("Layout", LAYOUTS)
VideosOpt = Annotated[
    Path | None,
    typer.Option(help="Video root (ek100, chunks), or the clip itself (--layout file)."),
]
LayoutOpt = Annotated[Layout, typer.Option(help="How videos are stored.")]
ChunkOpt = Annotated[
    float | None,
    typer.Option(help="Chunk length in seconds (chunks layout); 0 reads it from file names."),
]
FramesOpt = Annotated[int, typer.Option("--frames", min=1, help="Frames per segment (N).")]
SizeOpt = Annotated[
    int | None, typer.Option(min=1, help="Resize frames to SIZE x SIZE while decoding.")
]


def chunk_seconds(value: float | None) -> float | None:
    """``--chunk-seconds``: 0 reads the length from file names, none is 15 s."""
    return None if value == 0 else (15.0 if value is None else value)
