"""TensorBoard and W&B (offline) dashboards of a real training run, read back by each tool's own
reader: TensorBoard's EventAccumulator and ``wandb leet inspect`` on the ``.wandb`` log."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from trainer_setup import kitchen, losses, tiny_settings

from verbnoun.errors import VerbnounError
from verbnoun.train import monitor
from verbnoun.train.config import config_from_dict
from verbnoun.train.trainer import train


class Killed(Exception):
    pass


@pytest.fixture(scope="module")
def resumed_run(tmp_path_factory):
    """A 6-step run with both dashboards, killed after logging step 5 (last checkpoint: step 3)
    and resumed: the dashboards must read like one uninterrupted run."""
    data = kitchen(tmp_path_factory)
    root = tmp_path_factory.mktemp("monitor")
    run = root / "run"
    wandb_dir = root / "wandb-dir"
    wandb_dir.mkdir()
    settings = tiny_settings(
        data, run, steps=6, save_every=3, tensorboard=True, wandb=True, log_every=1
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WANDB_MODE", "offline")
        patch.setenv("WANDB_DIR", str(wandb_dir))
        patch.setenv("WANDB_SILENT", "true")
        patch.setenv("WANDB_CONSOLE", "off")
        patch.setenv("WANDB_PROJECT", "llavaction-test")
        write_metrics = monitor.RunLog.metrics
        killed_losses = {}

        def die_at_step_5(self, record):
            if "loss" in record:
                killed_losses[record["step"]] = record["loss"]
            write_metrics(self, record)
            if record["step"] == 5:
                self.close()  # what the trainer's finally does; then the kill
                raise Killed

        patch.setattr(monitor.RunLog, "metrics", die_at_step_5)
        with pytest.raises(Killed):
            train(config_from_dict(settings))
        patch.setattr(monitor.RunLog, "metrics", write_metrics)
        summary = train(config_from_dict(settings))
    assert summary["resumed_from"] == 3
    return run, wandb_dir, killed_losses


@pytest.mark.slow
def test_tensorboard_events_hold_the_logged_losses(resumed_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run, _, killed = resumed_run
    files = sorted((run / "tensorboard").glob("events.out.tfevents.*"))
    assert len(files) == 2  # one per process that trained
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    assert {"loss", "lm_loss", "lr", "samples_per_s"} <= set(events.Tags()["scalars"])
    logged = losses(run)  # metrics.jsonl: steps 1-6 of the resumed run
    # in file order: the killed run's steps 4-5 were purged, not shown twice
    assert [e.step for e in events.Scalars("loss")] == [1, 2, 3, 4, 5, 6]
    scalars = {e.step: e.value for e in events.Scalars("loss")}
    for step, loss in logged.items():
        assert scalars[step] == pytest.approx(loss, rel=1e-6)  # float32 in the event file
    assert killed[4] == logged[4]  # exact resume: the same values, written once


def _wandb_records(path: Path) -> list[dict]:
    """Records of a ``.wandb`` transaction log, by wandb's own reader."""
    out = subprocess.run(
        [sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(path)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


@pytest.mark.slow
def test_wandb_offline_run_holds_the_logged_losses(resumed_run):
    run, wandb_dir, _ = resumed_run
    offline = sorted((wandb_dir / "wandb").glob("offline-run-*"))
    assert len(offline) == 2  # the killed run and its resumption
    run_id = (run / "wandb-id.txt").read_text().strip()
    history: dict[int, dict] = {}
    for folder in offline:
        (log,) = folder.glob("*.wandb")
        assert log.name == f"run-{run_id}.wandb"  # one W&B run continued, not two
        records = _wandb_records(log)
        (start,) = [r["run"] for r in records if r["type"] == "run"]
        assert start["project"] == "llavaction-test" and start["display_name"] == "run"
        for record in records:
            if record["type"] == "history":
                item = record["history"]["item"]
                history[item["_step"]] = item  # the resumed run's values replace the killed
    logged = losses(run)
    assert sorted(history) == [1, 2, 3, 4, 5, 6]
    for step, loss in logged.items():
        assert history[step]["loss"] == pytest.approx(loss, rel=1e-12)
    config = json.dumps(start["config"])
    assert '"steps"' in config and "tensorboard" in config  # the resolved config.yaml


def test_missing_dashboard_package_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(monitor.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(VerbnounError, match="wandb: true needs the wandb package"):
        monitor.RunLog(tmp_path, enabled=True, tensorboard=False, wandb=True)
    monitor.RunLog(tmp_path, enabled=False, tensorboard=True, wandb=True)  # other ranks: nothing
