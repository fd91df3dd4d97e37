"""``verbnoun train --config configs/NAME.yaml [section.key=value ...]``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def train(
    config: Annotated[Path, typer.Option(help="Training config (YAML).")],
    overrides: Annotated[
        list[str] | None,
        typer.Argument(help="Dotted overrides, e.g. optim.lr=1e-3 data.frames=8."),
    ] = None,
) -> None:
    """Train (or resume) a LLaVAction model: one process, torchrun (DDP) or DeepSpeed."""
    import json
    import os

    from verbnoun.progress import Heartbeat
    from verbnoun.train.config import load_config
    from verbnoun.train.trainer import train as run_training

    settings = load_config(config, overrides or [])
    first = os.environ.get("RANK", "0") == "0"  # one log line per run, not per process
    with Heartbeat("train", enabled=settings.progress and first):  # model loading talks too
        summary = run_training(settings)
    if summary.get("rank", 0) == 0:
        shown = {
            k: summary[k]
            for k in ("run_dir", "steps", "resumed_from", "loss", "eval")
            if k in summary
        }
        typer.echo(json.dumps(shown))
