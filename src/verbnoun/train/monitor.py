"""What a training run reports: ``metrics.jsonl``, ``skipped.jsonl``, optional TensorBoard or
Weights & Biases, and MQA evaluation of the in-memory model.

Both JSONL files carry the optimizer step of each line; on resume lines after the resumed step
(written by the run that was killed) are dropped, so the files read like one uninterrupted run.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path

from verbnoun.errors import VerbnounError
from verbnoun.evaluate.local_adapter import LlavactionAdapter


def truncate_after(path: Path, step: int) -> None:
    """Keep the lines of a JSONL file whose ``step`` is at most ``step``."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            if json.loads(line).get("step", 0) <= step:
                kept.append(line)
        except (ValueError, AttributeError, TypeError):
            continue  # a line cut short by the kill (or damaged): dropped
    path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


class RunLog:
    """Rank 0's writer of metrics (JSONL plus the optional dashboards); others write nothing.

    The dashboards open at :meth:`resume_at` (or at the first record), once the run's first step
    is known: TensorBoard event files go to ``run_dir/tensorboard`` and a resumed run purges the
    events the interrupted run wrote after its checkpoint; a W&B run takes the resolved
    ``config.yaml`` as its config and keeps one run id per run folder (``wandb-id.txt``), so a
    resumed training continues the same W&B run (``WANDB_MODE=offline`` works without network;
    files go to ``WANDB_DIR``, else to ``run_dir``)."""

    def __init__(self, run_dir: Path, *, enabled: bool, tensorboard: bool, wandb: bool) -> None:
        self.enabled = enabled
        self.run_dir = run_dir
        self.metrics_path = run_dir / "metrics.jsonl"
        self.skipped_path = run_dir / "skipped.jsonl"
        self.want_tensorboard = enabled and tensorboard
        self.want_wandb = enabled and wandb
        self.tb = None
        self.wandb = None
        self.opened = False
        for wanted, package in ((self.want_tensorboard, "tensorboard"), (self.want_wandb, "wandb")):
            if wanted and importlib.util.find_spec(package) is None:
                raise VerbnounError(
                    f"{package}: true needs the {package} package (pip install {package})"
                )

    def resume_at(self, step: int) -> None:
        """Drop lines written after ``step`` by an interrupted run, and open the dashboards."""
        if not self.enabled:
            return
        truncate_after(self.metrics_path, step)
        truncate_after(self.skipped_path, step)
        self._open(step)

    def _open(self, step: int) -> None:
        if self.opened:
            return
        self.opened = True
        if self.want_tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # the interrupted run's events after the checkpoint (steps > step) are dropped
            purge = step + 1 if step else None
            self.tb = SummaryWriter(str(self.run_dir / "tensorboard"), purge_step=purge)
        if self.want_wandb:
            self.wandb = _start_wandb(self.run_dir, resumed=step > 0)

    def metrics(self, record: dict) -> None:
        """Append one record (it carries ``step``) to ``metrics.jsonl`` and the dashboards."""
        if not self.enabled:
            return
        self._open(0)
        with self.metrics_path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")
        step = record["step"]
        numbers = {
            k: v
            for k, v in record.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and k != "step"
        }
        if self.tb is not None:
            for key, value in numbers.items():
                self.tb.add_scalar(key, value, step)
        if self.wandb is not None:
            self.wandb.log(numbers, step=step)

    def skipped(self, step: int, skips: Sequence[dict]) -> None:
        """Append the samples skipped at ``step`` to ``skipped.jsonl``."""
        if not self.enabled or not skips:
            return
        with self.skipped_path.open("a", encoding="utf-8") as out:
            for skip in skips:
                out.write(json.dumps({"step": step, **skip}, ensure_ascii=False) + "\n")

    def close(self) -> None:
        """Flush and close the dashboards."""
        if self.tb is not None:
            self.tb.close()
            self.tb = None
        if self.wandb is not None:
            self.wandb.finish()
            self.wandb = None


def _start_wandb(run_dir: Path, *, resumed: bool):
    """A W&B run for ``run_dir``: the same run id when resuming, a new one otherwise."""
    import os
    import secrets

    import wandb
    import yaml

    id_file = run_dir / "wandb-id.txt"
    if resumed and id_file.is_file():
        run_id = id_file.read_text(encoding="utf-8").strip()
    else:
        run_id = secrets.token_hex(4)
        id_file.write_text(run_id + "\n", encoding="utf-8")
    config_file = run_dir / "config.yaml"
    config = (
        yaml.safe_load(config_file.read_text(encoding="utf-8")) if config_file.is_file() else None
    )
    return wandb.init(
        project=os.environ.get("WANDB_PROJECT", "verbnoun"),
        dir=os.environ.get("WANDB_DIR") or str(run_dir),
        id=run_id,
        name=run_dir.name,
        config=config,
        resume="allow",
    )


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
    from verbnoun.evaluate.frames import make_frame_source
    from verbnoun.evaluate.runner import EvalSettings, run_evaluation

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
