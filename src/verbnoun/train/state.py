"""Checkpoints of a training run: weights in safetensors, everything else as plain tensors.

``run_dir/checkpoints/step-000100/`` holds the model (``config.json``, ``model.safetensors``, the
tokenizer: loadable by :func:`verbnoun.model.checkpoint.load_model` and usable for evaluation as
is; a LoRA run's holds ``adapter/`` instead, see :mod:`verbnoun.train.lora`), ``trainer.pt`` (optimizer state, schedule and data position) and ``rng-rank{R}.pt`` (each
process's random generators). The ``.pt`` files hold only tensors, numbers, strings and lists,
written with ``torch.save`` and read back with ``torch.load(..., weights_only=True)``: no
arbitrary object is ever unpickled. A checkpoint is written under a temporary name and renamed
when complete, then ``checkpoints/latest`` names it, so a run killed mid-save resumes from the
previous one.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import torch

from verbnoun.errors import CheckpointError
from verbnoun.fileio import atomic_write_bytes

LATEST = "latest"


def step_name(step: int) -> str:
    return f"step-{step:06d}"


def rng_state() -> dict:
    """This process's torch, CUDA, numpy and Python generator states, as tensors and numbers."""
    version, words, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python_version": version,
        "python": torch.tensor(words, dtype=torch.int64),
        "python_gauss": gauss,
        "numpy_kind": kind,
        "numpy": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
        "numpy_pos": int(pos),
        "numpy_has_gauss": int(has_gauss),
        "numpy_gauss": float(cached),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.stack(torch.cuda.get_rng_state_all())
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` captured."""
    torch.set_rng_state(state["torch"])
    words = tuple(int(w) for w in state["python"].tolist())
    random.setstate((state["python_version"], words, state["python_gauss"]))
    keys = state["numpy"].numpy().astype(np.uint32)
    np.random.set_state(
        (
            state["numpy_kind"],
            keys,
            state["numpy_pos"],
            state["numpy_has_gauss"],
            state["numpy_gauss"],
        )
    )
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint of a run, or ``None``."""
    marker = run_dir / "checkpoints" / LATEST
    if not marker.is_file():
        return None
    name = marker.read_text(encoding="utf-8", errors="replace").strip()
    if not name or Path(name).name != name:
        raise CheckpointError(f"{marker}: not a checkpoint folder name: {name[:80]!r}")
    path = run_dir / "checkpoints" / name
    if not (path / "trainer.pt").is_file():
        raise CheckpointError(f"{marker}: names {path.name}, which is incomplete")
    return path


def save(
    run_dir: Path,
    step: int,
    *,
    engine,
    tokenizer,
    trainer_state: dict,
    rank: int,
    world: int,
    barrier,
    keep: int = 2,
    write_model=None,
) -> Path:
    """Write checkpoint ``step``: every rank calls this (gathering weights may be collective);
    rank 0 writes the model and the trainer state, each rank its generators. ``write_model(model,
    folder, tokenizer)`` writes the model in place of the whole checkpoint (a LoRA run writes
    its adapters)."""
    from verbnoun.model.checkpoint import save_checkpoint

    root = run_dir / "checkpoints"
    final = root / step_name(step)
    tmp = root / f".{step_name(step)}.tmp"
    if rank == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    barrier()
    torch.save(rng_state(), tmp / f"rng-rank{rank}.pt")
    model = engine.full_model()
    engine.save_extra(tmp)
    if rank == 0:
        (write_model or save_checkpoint)(model, tmp, tokenizer)
        torch.save({**trainer_state, **engine.state(), "world_size": world}, tmp / "trainer.pt")
    barrier()
    if rank == 0:
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        atomic_write_bytes(root / LATEST, final.name.encode("utf-8"))
        _prune(root, keep)
    barrier()
    return final


def _prune(root: Path, keep: int) -> None:
    if keep <= 0:
        return
    steps = sorted(p for p in root.glob("step-*") if p.is_dir())
    for old in steps[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def _load(path: Path):
    """``torch.load`` (tensors and plain types only); a damaged file is an error naming it."""
    try:
        return torch.load(path, weights_only=True, map_location="cpu")
    except FileNotFoundError:
        raise CheckpointError(f"{path}: file not found (incomplete checkpoint)") from None
    except Exception as error:  # torch raises many kinds (RuntimeError, UnpicklingError, ...)
        detail = " ".join(str(error).split())[:200]
        raise CheckpointError(
            f"{path}: cannot be read ({type(error).__name__}: {detail})"
        ) from None


def load_trainer_state(path: Path, rank: int, world: int) -> tuple[dict, dict | None]:
    """The trainer state of a checkpoint and this rank's generator state (``None`` when the
    checkpoint was written by fewer processes)."""
    state = _load(path / "trainer.pt")
    rng_file = path / f"rng-rank{rank}.pt"
    rng = _load(rng_file) if rng_file.is_file() else None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path / 'trainer.pt'}: not a trainer state")
    if state.get("world_size") != world:
        rng = None  # a different world size: data order is global, generators start fresh
    return state, rng
