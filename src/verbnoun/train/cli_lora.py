"""``verbnoun export merged``: a LoRA run's adapters merged into their base, written as a full
model in the released layout (see :mod:`verbnoun.train.lora`).

Only typer is imported at module level; torch and peft are imported when the command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from verbnoun.model.export_hf import ExportDtype


def export_merged_command(
    checkpoint: Annotated[
        Path, typer.Option(help="The base checkpoint the adapter was trained on.")
    ],
    adapter: Annotated[
        Path,
        typer.Option(
            help="A LoRA run folder (its latest checkpoint), one of its checkpoints, or an "
            "adapter folder."
        ),
    ],
    out: Annotated[Path, typer.Option(help="Output folder (released LLaVA-NeXT layout).")],
    dtype: Annotated[
        ExportDtype, typer.Option(help="Weight dtype; auto keeps the base's.")
    ] = ExportDtype.auto,
    shards: Annotated[int, typer.Option(min=1, help="Safetensors shards (with an index).")] = 2,
) -> None:
    """Merge a LoRA adapter into its base and write a full model in the released layout (what
    --model llavaction, ask, export hf and the lmms-eval plugin load)."""
    from verbnoun.train.lora import export_merged

    summary = export_merged(checkpoint, adapter, out, dtype=dtype.value, shards=shards)
    typer.echo(
        f"wrote {summary.out} ({summary.dtype}, {len(summary.files)} weight file(s)); "
        f"base {summary.base['path']}"
    )
