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

    from verbnoun.train.config import load_config
    from verbnoun.train.trainer import train as run_training

    summary = run_training(load_config(config, overrides or []))
    if summary.get("rank", 0) == 0:
        shown = {
            k: summary[k]
            for k in ("run_dir", "steps", "resumed_from", "loss", "eval")
            if k in summary
        }
        typer.echo(json.dumps(shown))
