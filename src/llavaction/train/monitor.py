"""What a training run reports: ``metrics.jsonl``, ``skipped.jsonl``, optional TensorBoard or
Weights & Biases, a progress bar, and MQA evaluation of the in-memory model.

Both JSONL files carry the optimizer step of each line; on resume lines after the resumed step
(written by the run that was killed) are dropped, so the files read like one uninterrupted run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from llavaction.errors import LlavactionError
from llavaction.evaluate.local_adapter import LlavactionAdapter


def truncate_after(path: Path, step: int) -> None:
    """Keep the lines of a JSONL file whose ``step`` is at most ``step``."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line).get("step", 0) <= step:
                kept.append(line)
        except ValueError:
            continue  # a line cut short by the kill
    path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


class RunLog:
    """Rank 0's writer of metrics (JSONL plus the optional dashboards); others write nothing."""

    def __init__(self, run_dir: Path, *, enabled: bool, tensorboard: bool, wandb: bool) -> None:
        self.enabled = enabled
        self.metrics_path = run_dir / "metrics.jsonl"
        self.skipped_path = run_dir / "skipped.jsonl"
        self.tb = None
        self.wandb = None
        if not enabled:
            return
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise LlavactionError(
                    "tensorboard: true needs the tensorboard package (pip install tensorboard)"
                ) from None
            self.tb = SummaryWriter(str(run_dir / "tensorboard"))
        if wandb:
            try:
                import wandb as wandb_module
            except ImportError:
                raise LlavactionError("wandb: true needs the wandb package") from None
            self.wandb = wandb_module.init(dir=str(run_dir), name=run_dir.name, resume="allow")

    def resume_at(self, step: int) -> None:
        """Drop lines written after ``step`` by an interrupted run."""
        if self.enabled:
            truncate_after(self.metrics_path, step)
            truncate_after(self.skipped_path, step)

    def metrics(self, record: dict) -> None:
        if not self.enabled:
            return
        with self.metrics_path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")
        step = record["step"]
        numbers = {k: v for k, v in record.items() if isinstance(v, int | float) and k != "step"}
        if self.tb is not None:
            for key, value in numbers.items():
                self.tb.add_scalar(key, value, step)
        if self.wandb is not None:
            self.wandb.log(numbers, step=step)

    def skipped(self, step: int, skips: Sequence[dict]) -> None:
        if not self.enabled or not skips:
            return
        with self.skipped_path.open("a", encoding="utf-8") as out:
            for skip in skips:
                out.write(json.dumps({"step": step, **skip}, ensure_ascii=False) + "\n")

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
        if self.wandb is not None:
            self.wandb.finish()


class Progress:
    """A rich progress bar over optimizer steps, showing the last loss (or nothing)."""

    def __init__(self, enabled: bool, total: int, done: int) -> None:
        self.bar = None
        if not enabled:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeRemainingColumn,
        )
        from rich.progress import (
            Progress as RichProgress,
        )

        self.bar = RichProgress(
            TextColumn("training"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeRemainingColumn(),
        )
        self.bar.start()
        self.task = self.bar.add_task("train", total=total, completed=done, status="")

    def advance(self, status: str) -> None:
        if self.bar is not None:
            self.bar.update(self.task, advance=1, status=status)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


class InMemoryAdapter(LlavactionAdapter):
    """The ``llavaction`` adapter around a model being trained (no checkpoint loaded)."""

    def __init__(self, model, processor, *, mode: str = "text", label: str = "") -> None:
        self.model, self.processor, self.mode = model, processor, mode
        self.max_new_tokens = 16
        self.checkpoint = None
        self.label = label

    def settings(self) -> dict:
        return {"in_memory": self.label, "mode": self.mode, "dtype": str(self.model.dtype)}


def evaluate_mqa(
    model,
    processor,
    questions: str | Path,
    out: Path,
    *,
    videos: str | Path,
    layout: str,
    frames: int,
    size: int | None,
    time_instruction: bool,
    mode: str,
    batch_size: int,
    label: str,
) -> dict:
    """Accuracy of the in-memory model on an MQA file, by the evaluation runner (its own run
    folder under ``out``); the model is put back in training mode afterwards."""
    from llavaction.evaluate.frames import make_frame_source
    from llavaction.evaluate.runner import EvalSettings, run_evaluation

    was_training = model.training
    model.eval()
    try:
        metrics = run_evaluation(
            questions,
            InMemoryAdapter(model, processor, mode=mode, label=label),
            out,
            EvalSettings(frames=frames, size=size, time_instruction=time_instruction),
            frame_source=make_frame_source(videos, layout, frames, size),
            batch_size=batch_size,
            workers=0,
            progress=False,
        )
    finally:
        model.train(was_training)
    return metrics or {}
