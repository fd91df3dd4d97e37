"""The training recipe: one CPU process, ``torchrun`` with DDP (gloo or nccl), or DeepSpeed.

:func:`train` reads like the run it performs:

1. join the process group (when launched by ``torchrun``), create the run folder and save the
   resolved config (with the parts that train and each part's learning rate);
2. read the mixture; build the model and processor (a checkpoint, a tiny model, or the latest
   checkpoint of this run when resuming), freeze the parts that do not train (see
   :mod:`verbnoun.train.parts`) and build the optimizer (AdamW over the trainable parameters only,
   a learning rate per part);
3. for each optimizer step: take this rank's micro batches of the global order (see
   :class:`~verbnoun.train.data.GlobalBatchSampler`), accumulate LM + auxiliary loss gradients,
   clip, step, set the cosine learning rate; log, count skipped samples, save, evaluate.

With ``lora`` set, step 2 puts LoRA adapters on the model built from ``model.checkpoint`` (and,
when resuming, fills them from the run's latest checkpoint), and checkpoints hold the adapters in
place of the whole model (see :mod:`verbnoun.train.lora`).

Exact resume: the data order and frame jitter are functions of (seed, epoch, step), the schedule
is a function of the step, and a checkpoint holds the weights, the optimizer state and every
generator: a resumed run repeats the loss curve of an uninterrupted one.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.distributed as dist

from verbnoun.errors import CheckpointError, VerbnounError
from verbnoun.fileio import atomic_write_bytes
from verbnoun.progress import Progress
from verbnoun.train import state as ckpt
from verbnoun.train.config import TrainConfig, dump_config
from verbnoun.train.data import (
    GlobalBatchSampler,
    SFTDataset,
    class_ids,
    collate,
    load_records,
    model_inputs,
    tokenizer_corpus,
)
from verbnoun.train.engine import make_engine
from verbnoun.train.monitor import RunLog, evaluate_mqa
from verbnoun.train.parts import LR_PARTS, checkpoint_parts, freeze, lr_part, part_names


class TooManySkipped(VerbnounError):
    """More samples had missing or corrupt videos than ``data.max_skip_fraction`` allows."""


@dataclass
class Runtime:
    """Where this process runs: its rank among ``world`` processes and its device."""

    rank: int
    world: int
    device: torch.device

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def all_sum(self, values: list[float]) -> list[float]:
        """Sum numbers over all processes."""
        if self.world == 1:
            return values
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return tensor.tolist()


def init_runtime(config: TrainConfig) -> Runtime:
    """Join the process group ``torchrun`` describes (environment variables), if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    device = torch.device(f"cuda:{local}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        backend = config.distributed.backend
        if backend == "auto":
            backend = "nccl" if cuda else "gloo"
        dist.init_process_group(backend)
    return Runtime(rank, world, device)


# ---- model and optimizer ------------------------------------------------------------------------


def resolve_config(config: TrainConfig) -> TrainConfig:
    """``config`` with what the run will use spelt out: ``model.tunable_parts`` as our part names
    (from ``model.checkpoint``'s ``mm_tunable_parts`` when unset, else every part) and each
    part's learning rate (``null`` ones set to ``optim.lr``)."""
    settings = config.model
    parts = part_names(settings.tunable_parts)
    if parts is None and settings.checkpoint:
        recorded = checkpoint_parts(settings.checkpoint)
        try:
            parts = part_names(recorded)
        except ValueError as error:
            where = Path(settings.checkpoint) / "config.json"
            raise CheckpointError(f"{where}: mm_tunable_parts: {error}") from None
    if parts is None:
        parts = ["vision_tower", "projector", "language_model"]
    optim = config.optim
    rates = {
        "vision_lr": optim.lr if optim.vision_lr is None else optim.vision_lr,
        "projector_lr": optim.lr if optim.projector_lr is None else optim.projector_lr,
    }
    return replace(
        config, model=replace(settings, tunable_parts=parts), optim=replace(optim, **rates)
    )


def build_model(config: TrainConfig, records: list[dict], resume: Path | None):
    """The model (fp32 master weights) and its processor; from the run's own checkpoint when
    resuming, else from ``model.checkpoint``, else a tiny model with a locally trained tokenizer."""
    from verbnoun.model.checkpoint import load_model, with_action_heads
    from verbnoun.model.config import tiny_config
    from verbnoun.model.processor import Processor
    from verbnoun.model.tokenization import load_tokenizer, train_tiny_tokenizer

    settings = config.model
    if config.lora is not None:
        resume = None  # a LoRA checkpoint holds adapters: the model is built from the base
    source = resume or (Path(settings.checkpoint) if settings.checkpoint else None)
    if source is not None:
        model = load_model(source)
        tokenizer = load_tokenizer(
            settings.tokenizer if resume is None and settings.tokenizer else source
        )
        if resume is None and settings.action_types is not None:
            model = with_action_heads(model, settings.action_tokens, settings.action_types)
    else:
        if settings.tokenizer:
            tokenizer = load_tokenizer(settings.tokenizer)
        else:
            tokenizer = train_tiny_tokenizer(tokenizer_corpus(records), settings.vocab_size)
        types = settings.action_types
        if types is None:
            ids = [class_ids(r) for r in records]
            types = [max(max(row[k] for row in ids), 0) + 1 for k in range(3)]
        tiny = tiny_config(
            vocab_size=len(tokenizer),
            newline_position=settings.newline_position,
            action_tokens=settings.action_tokens,
            action_types=tuple(types),
            image_size=settings.image_size,
            patch_size=settings.patch_size,
            hidden_size=settings.hidden_size,
            vision_hidden_size=settings.vision_hidden_size,
            num_layers=settings.num_layers,
        )
        torch.manual_seed(config.seed)
        from verbnoun.model.architecture import LlavactionForCausalLM

        model = LlavactionForCausalLM(tiny)
    if settings.aux_loss_weight is not None and resume is None:
        model.config = replace(model.config, aux_loss_weight=settings.aux_loss_weight)
    check_class_ids(model.config, records)
    freeze(model, resolve_config(config).model.tunable_parts)
    # The vision tower's post-layernorm is kept only for the released keys: never trained.
    model.model.vision_tower.vision_tower.vision_model.post_layernorm.requires_grad_(False)
    if settings.gradient_checkpointing:
        for part in (model.model, model.model.vision_tower.vision_tower.vision_model):
            part.activation_checkpointing_enable({"use_reentrant": False})
    model.train()
    return model, Processor(tokenizer, model.config.vision.image_size), tokenizer


def check_class_ids(model_config, records: list[dict]) -> None:
    """Refuse class ids that the model's heads cannot hold, naming the record."""
    sizes = model_config.action_types
    if sizes is None:
        return
    for record in records:
        for name, value, size in zip(
            ("verb", "noun", "action"), class_ids(record), sizes, strict=True
        ):
            if value >= size:
                raise VerbnounError(
                    f"record {record['id']}: {name} id {value} but the model has {size} {name}s"
                )


def build_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW over the trainable parameters only, a group per learning-rate part (language,
    projector, vision, in that order) and decay (matrices decay, vectors not): at most six groups,
    named e.g. ``projector`` and ``projector_no_decay``. Frozen parameters are in none."""
    optim = config.optim
    rates = {
        "language": optim.lr,
        "projector": optim.lr if optim.projector_lr is None else optim.projector_lr,
        "vision": optim.lr if optim.vision_lr is None else optim.vision_lr,
    }
    groups: dict[tuple[int, bool], list] = {}
    for name, param in model.named_parameters():
        if param.requires_grad:
            key = (LR_PARTS.index(lr_part(name)), param.ndim >= 2)
            groups.setdefault(key, []).append(param)
    if not groups:
        raise VerbnounError("model.tunable_parts: no parameter of the model would train")
    param_groups = []
    for (index, decay), params in sorted(groups.items()):
        part = LR_PARTS[index]
        param_groups.append(
            {
                "params": params,
                "lr": rates[part],
                "weight_decay": optim.weight_decay if decay else 0.0,
                "name": f"{part}{'' if decay else '_no_decay'}",
            }
        )
    return torch.optim.AdamW(param_groups, betas=(optim.beta1, optim.beta2), eps=optim.eps)


def group_lrs(engine) -> dict[str, float]:
    """The current learning rate of each part that trains: ``lr`` (language model), ``vision_lr``,
    ``projector_lr``."""
    rates = {}
    for name, lr in zip(engine.group_names, engine.lrs, strict=True):
        part = name.removesuffix("_no_decay")
        rates["lr" if part == "language" else f"{part}_lr"] = lr
    return rates


def lr_factor(step: int, total: int, warmup: int, min_ratio: float) -> float:
    """Linear warmup over ``warmup`` steps, then cosine decay to ``min_ratio`` at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


# ---- one step -----------------------------------------------------------------------------------


def forward_loss(engine, batch: dict, device: torch.device, bf16: bool):
    """The micro batch's outputs (``None`` when every sample was skipped)."""
    if batch["input_ids"] is None:
        return None
    ids, videos, labels = model_inputs(batch)
    videos = [v.to(device) if v is not None else None for v in videos]
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
        return engine(ids, videos, labels, batch["actions"].to(device), loss_only=True)


def zero_loss(model: torch.nn.Module) -> torch.Tensor:
    """A zero loss touching every trainable parameter (keeps DDP's gradient sync in step)."""
    return sum(p.sum() * 0.0 for p in model.parameters() if p.requires_grad)


def train_step(engine, batches, config: TrainConfig, runtime: Runtime, bf16: bool) -> dict:
    """One optimizer step over ``grad_accum`` micro batches; this rank's sums and skips."""
    tic = time.perf_counter()
    wait = 0.0
    sums = {"loss": 0.0, "lm_loss": 0.0, "aux_loss": 0.0, "micro": 0.0, "samples": 0.0}
    skips: list[dict] = []
    for micro in range(config.grad_accum):
        t = time.perf_counter()
        batch = next(batches)
        wait += time.perf_counter() - t
        skips += batch["skipped"]
        out = forward_loss(engine, batch, runtime.device, bf16)
        engine.backward(
            zero_loss(engine.module) if out is None else out.loss, micro == config.grad_accum - 1
        )
        sums["samples"] += len(batch["ids"])
        if out is not None:
            sums["loss"] += float(out.loss.detach())
            sums["lm_loss"] += float(out.lm_loss.detach())
            sums["aux_loss"] += float(out.aux_loss.detach()) if out.aux_loss is not None else 0.0
            sums["micro"] += 1
    grad_norm = engine.step()
    sums.update(skipped=float(len(skips)), wait=wait, elapsed=time.perf_counter() - tic)
    totals = dict(zip(sums, runtime.all_sum(list(sums.values())), strict=True))
    micro_count = max(totals["micro"], 1.0)
    metrics = {key: totals[key] / micro_count for key in ("loss", "lm_loss", "aux_loss")}
    metrics.update(
        lr=config.optim.lr * engine.factor,  # the language model's, whether it trains or not
        **{k: v for k, v in group_lrs(engine).items() if k != "lr"},
        grad_norm=grad_norm,
        samples_per_s=totals["samples"] / max(sums["elapsed"], 1e-9),
        data_wait_fraction=totals["wait"] / max(totals["elapsed"], 1e-9),
    )
    return {"metrics": metrics, "skips": skips, "seen": int(totals["samples"] + totals["skipped"]),
            "skipped": int(totals["skipped"])}  # fmt: skip


# ---- the recipe ---------------------------------------------------------------------------------


def train(config: TrainConfig) -> dict:
    """Run (or resume) the training described by ``config``; returns a summary."""
    runtime = init_runtime(config)
    config = resolve_config(config)
    if config.threads:
        torch.set_num_threads(config.threads)
    run_dir = Path(config.run_dir)
    main = runtime.rank == 0
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(run_dir / "config.yaml", dump_config(config).encode("utf-8"))
    runtime.barrier()

    records = load_records(config.data.mixture, config.seed)
    resume = ckpt.latest_checkpoint(run_dir) if config.resume else None
    if resume is not None and config.lora is None and (resume / "adapter").is_dir():
        raise VerbnounError(
            f"{resume} holds LoRA adapters: resume with the run's lora settings or start a new "
            "run_dir"
        )
    model, processor, tokenizer = build_model(config, records, resume)
    write_model = None
    if config.lora is not None:  # adapters on the base; their checkpoints hold only them
        from verbnoun.train.lora import prepare_run

        write_model = prepare_run(model, config, resume)
    model.to(runtime.device)
    bf16 = config.precision == "bf16" or (
        config.precision == "auto" and runtime.device.type == "cuda"
    )
    engine = make_engine(model, build_optimizer(model, config), config, runtime, bf16)
    step, seen, skipped, rng = 0, 0, 0, None
    if resume is not None:
        saved, rng = ckpt.load_trainer_state(resume, runtime.rank, runtime.world)
        check_same_parts(resume, saved, config)
        engine.load_state(resume, saved)
        step, seen, skipped = saved["step"], saved["seen"], saved["skipped"]
    else:
        torch.manual_seed(config.seed + runtime.rank)

    dataset = SFTDataset(
        records, processor, make_layout(config), frames=config.data.frames,
        size=config.data.size, time_instruction=config.data.time_instruction,
        jitter=config.seed if config.data.jitter else None, supervision=config.data.supervision,
    )  # fmt: skip
    order = GlobalBatchSampler(
        len(dataset), micro=config.batch_size, accum=config.grad_accum, world=runtime.world,
        rank=runtime.rank, seed=config.seed,
    )  # fmt: skip
    per_epoch, global_batch = order.steps_per_epoch, order.global_batch
    if per_epoch == 0:
        raise VerbnounError(f"{len(dataset)} records: fewer than one global batch ({global_batch})")
    total = config.steps or max(1, int(config.epochs * per_epoch))
    warmup = config.optim.warmup_steps
    warmup = warmup if warmup is not None else math.ceil(config.optim.warmup_ratio * total)
    skip_budget = config.data.max_skip_fraction * total * global_batch
    order.start, order.stop = step, total
    batches = iter(make_loader(dataset, order, config))
    if rng is not None:  # after the loader's iterator, which draws a seed from torch's generator
        ckpt.set_rng_state(rng)  # (dropout, e.g. LoRA's, then draws what the killed run would)

    log = RunLog(run_dir, enabled=main, tensorboard=config.tensorboard, wandb=config.wandb)
    log.resume_at(step)
    progress = Progress("training", total, step, enabled=main and config.progress).begin()
    last, start = {}, step
    try:
        while step < total:
            epoch = step // per_epoch
            engine.set_lr(lr_factor(step, total, warmup, config.optim.min_lr_ratio))
            result = train_step(engine, batches, config, runtime, bf16)
            step += 1
            seen += result["seen"]
            skipped += result["skipped"]
            last = {"step": step, "epoch": epoch, **result["metrics"], "skipped": skipped}
            record_skips(log, run_dir, step, runtime.rank, result["skips"])
            if step % config.log_every == 0 or step == total:
                log.metrics(last)
            progress.advance(1, f"loss {last['loss']:.3f}")
            if skipped > skip_budget:
                raise TooManySkipped(
                    f"{skipped} of {seen} samples skipped (missing or corrupt video), over "
                    f"data.max_skip_fraction={config.data.max_skip_fraction} of the run's "
                    f"{total * global_batch} samples; see {run_dir / 'skipped.jsonl'}"
                )
            if (config.save_every and step % config.save_every == 0) or step == total:
                state = {"step": step, "seen": seen, "skipped": skipped, "total": total,
                         "tunable_parts": list(config.model.tunable_parts)}  # fmt: skip
                ckpt.save(run_dir, step, engine=engine, tokenizer=tokenizer, trainer_state=state,
                          rank=runtime.rank, world=runtime.world, barrier=runtime.barrier,
                          keep=config.keep_checkpoints, write_model=write_model)  # fmt: skip
            every = config.eval.every
            if config.eval.questions and ((every and step % every == 0) or step == total):
                last["eval"] = run_eval(engine, processor, config, run_dir, step, main)
                log.metrics({"step": step, "eval_accuracy": last["eval"]})
                runtime.barrier()
    finally:
        progress.close()
        log.close()
    return {"run_dir": str(run_dir), "rank": runtime.rank, "steps": total, "resumed_from": start,
            **last}  # fmt: skip


def check_same_parts(resume: Path, saved: dict, config: TrainConfig) -> None:
    """A run resumes with the parts it trained: its optimizer state holds exactly those."""
    before = saved.get("tunable_parts")
    if before is not None and list(before) != list(config.model.tunable_parts):
        raise VerbnounError(
            f"model.tunable_parts: {config.model.tunable_parts} but {resume} was trained with "
            f"{list(before)}; resume with the same parts or start a new run_dir"
        )


def make_layout(config: TrainConfig):
    """The video layout of ``data.videos``."""
    from verbnoun.data.layouts import make_layout as layout_named

    data = config.data
    return layout_named(data.layout, data.videos, chunk_seconds=data.chunk_seconds)


def make_loader(dataset: SFTDataset, sampler: GlobalBatchSampler, config: TrainConfig):
    """A DataLoader over this rank's micro batches, ``data.workers`` processes ahead."""
    from torch.utils.data import DataLoader

    workers = config.data.workers
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=workers,
        prefetch_factor=config.data.prefetch if workers > 0 else None,
        collate_fn=collate,
        persistent_workers=False,
    )


def record_skips(log: RunLog, run_dir: Path, step: int, rank: int, skips: list[dict]) -> None:
    """Report skipped samples (id, video, reason) in the log and in ``skipped.jsonl``: rank 0
    through the run log, other ranks by appending one line per write to the same file."""
    import json

    for skip in skips:
        print(f"verbnoun: skipped sample {skip['id']}: {skip['reason']}", file=sys.stderr)
    rows = [{"rank": rank, **skip} for skip in skips]
    if rank == 0:
        log.skipped(step, rows)
        return
    for row in rows:
        line = json.dumps({"step": step, **row}, ensure_ascii=False) + "\n"
        fd = os.open(run_dir / "skipped.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)


def run_eval(engine, processor, config: TrainConfig, run_dir: Path, step: int, main: bool):
    """Accuracy on ``eval.questions`` at this step (run folder ``run_dir/eval/step-N``), on rank
    0; the model is gathered on every rank first (collective under ZeRO-3)."""
    model = engine.full_model()
    if not main:
        return None
    metrics = evaluate_mqa(
        model, processor, config.eval.questions, run_dir / "eval" / ckpt.step_name(step),
        videos=config.data.videos, layout=config.data.layout, frames=config.data.frames,
        size=config.data.size, time_instruction=config.data.time_instruction,
        mode=config.eval.scoring, batch_size=config.eval.batch_size, label=f"{run_dir}@{step}",
    )  # fmt: skip
    return float(metrics.get("overall", {}).get("accuracy", float("nan")))
