"""How gradients are computed and applied: plain PyTorch (one process or DDP) or DeepSpeed ZeRO.

Only trainable parameters (``requires_grad``) are in the optimizer's groups, so the optimizer
state that either engine saves holds none of a frozen part.

Both engines offer the same small interface to the recipe: call the engine like the model,
``backward(loss, last)`` for each micro batch (``last``: the final micro batch of the optimizer
step), ``step()`` once per optimizer step (returns the gradient norm), ``set_lr(factor)``,
``full_model()`` (the whole model on rank 0, for saving and evaluation: a collective call under
ZeRO-3), and ``state()`` / ``load_state()`` / ``save_extra()`` for checkpoints.

DeepSpeed is optional: it is imported only when ``distributed.deepspeed`` names a config file.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from verbnoun.errors import VerbnounError
from verbnoun.fileio import read_json


class _LearningRates:
    """Schedule support shared by the engines: ``optimizer``, ``base_lrs`` and ``group_names``
    (one per parameter group, see :func:`verbnoun.train.trainer.build_optimizer`) set by each."""

    optimizer: torch.optim.Optimizer
    base_lrs: list[float]
    group_names: list[str]
    factor: float = 1.0

    def set_lr(self, factor: float) -> None:
        self.factor = factor
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = base * factor

    @property
    def lrs(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]


class TorchEngine(_LearningRates):
    """AdamW on the model itself (one process) or on its DDP wrapper (several processes)."""

    def __init__(self, model: nn.Module, optimizer, *, world: int, device, config) -> None:
        self.module = model
        self.optimizer = optimizer
        self.accum = config.grad_accum
        self.clip = config.optim.clip_grad
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.group_names = [group.get("name", "") for group in optimizer.param_groups]
        self.trainable = [p for p in model.parameters() if p.requires_grad]
        self.wrapped = model
        if world > 1:
            from torch.nn.parallel import DistributedDataParallel

            ids = [device.index] if device.type == "cuda" else None
            unused = config.distributed.find_unused_parameters
            self.wrapped = DistributedDataParallel(
                model, device_ids=ids, find_unused_parameters=unused
            )

    def __call__(self, *args, **kwargs):
        return self.wrapped(*args, **kwargs)

    def backward(self, loss: torch.Tensor, last: bool) -> None:
        """Accumulate ``loss / accum``; DDP all-reduces gradients on the last micro batch only."""
        loss = loss / self.accum
        if not last and hasattr(self.wrapped, "no_sync"):
            with self.wrapped.no_sync():
                loss.backward()
        else:
            loss.backward()

    def step(self) -> float:
        norm = float("nan")
        if self.clip:
            norm = float(torch.nn.utils.clip_grad_norm_(self.trainable, self.clip))
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return norm

    def full_model(self) -> nn.Module:
        return self.module

    def state(self) -> dict:
        return {"optimizer": self.optimizer.state_dict()}

    def save_extra(self, directory: Path) -> None:
        pass

    def load_state(self, directory: Path, state: dict) -> None:
        """The optimizer state of a checkpoint; one that holds other parameters than this run
        trains (parts or groups changed) is refused in one line."""
        try:
            self.optimizer.load_state_dict(state["optimizer"])
        except (ValueError, KeyError) as error:
            raise VerbnounError(
                f"{directory / 'trainer.pt'}: its optimizer state does not fit the parameters "
                f"this run trains ({' '.join(str(error).split())[:160]}); resume with the same "
                "model.tunable_parts and learning rates or start a new run_dir"
            ) from None


def _skip_cpu_shared_memory_op(deepspeed) -> None:
    """On the CPU, DeepSpeed compiles a shared-memory allreduce (a C++ op) at its first
    initialize: tens of seconds per run, and a build killed halfway leaves a lock file that every
    later run waits on forever. CPU DeepSpeed is our smoke path, so it uses torch.distributed's
    allreduce instead (the same sums); DeepSpeed keeps the probe's result in one dict that it
    reads at initialize."""
    from deepspeed.accelerator import get_accelerator

    if get_accelerator().device_name() == "cpu":
        deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False


class DeepSpeedEngine(_LearningRates):
    """DeepSpeed ZeRO (stage from its JSON config) around the model and our AdamW."""

    def __init__(self, model: nn.Module, optimizer, *, config, bf16: bool) -> None:
        try:
            import deepspeed
        except ImportError:
            raise VerbnounError(
                "distributed.deepspeed is set but DeepSpeed is not installed (pip install deepspeed)"
            ) from None
        self.deepspeed = deepspeed
        _skip_cpu_shared_memory_op(deepspeed)
        path = Path(config.distributed.deepspeed)
        if not path.is_file():
            raise VerbnounError(f"distributed.deepspeed: {path} not found")
        ds_config = read_json(path, expect=dict)
        ds_config.update(
            train_micro_batch_size_per_gpu=config.batch_size,
            gradient_accumulation_steps=config.grad_accum,
            gradient_clipping=config.optim.clip_grad or 0.0,
            zero_allow_untested_optimizer=True,
            bf16={"enabled": bf16},
        )
        ds_config.pop("train_batch_size", None)
        ds_config.setdefault("steps_per_print", 1 << 30)
        self.stage = int(ds_config.get("zero_optimization", {}).get("stage", 0))
        self.config = model.config
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.group_names = [group.get("name", "") for group in optimizer.param_groups]
        if self.stage == 3:
            # used in the top-level forward although the inner model owns them
            for param in (model.model.image_newline, model.model.action_supervision):
                if param is not None:
                    deepspeed.zero.register_external_parameter(model, param)
        self.engine, self.optimizer, _, _ = deepspeed.initialize(
            model=model, optimizer=optimizer, config=ds_config
        )
        self.module = self.engine.module

    def __call__(self, *args, **kwargs):
        return self.engine(*args, **kwargs)

    def backward(self, loss: torch.Tensor, last: bool) -> None:
        """DeepSpeed scales by the accumulation steps and steps at the boundary itself."""
        self.engine.backward(loss)
        if not last:
            self.engine.step()

    def step(self) -> float:
        self.engine.step()
        norm = self.engine.get_global_grad_norm()
        return float(norm) if norm is not None else float("nan")

    def full_model(self) -> nn.Module | None:
        """The whole model on rank 0 (a copy gathered from the partitions under ZeRO-3)."""
        if self.stage < 3:
            return self.module
        state = self.engine._zero3_consolidated_16bit_state_dict()
        if state is None:
            return None
        from verbnoun.model.checkpoint import _build_empty  # allocated, not initialised

        model = _build_empty(self.config, torch.device("cpu"), torch.float32)
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or set(missing) - {"lm_head.weight"}:
            raise VerbnounError(f"ZeRO-3 gather: missing {missing}, unexpected {unexpected}")
        return model

    def state(self) -> dict:
        return {}

    def save_extra(self, directory: Path) -> None:
        self.engine.save_checkpoint(str(directory), tag="deepspeed")

    def load_state(self, directory: Path, state: dict) -> None:
        self.engine.load_checkpoint(str(directory), tag="deepspeed")


def make_engine(model: nn.Module, optimizer, config, runtime, bf16: bool):
    """DeepSpeed when ``distributed.deepspeed`` is set, else plain PyTorch (DDP when world > 1)."""
    if config.distributed.deepspeed:
        return DeepSpeedEngine(model, optimizer, config=config, bf16=bf16)
    return TorchEngine(model, optimizer, world=runtime.world, device=runtime.device, config=config)
