"""Answering questions: greedy generation with a KV cache, and single-forward multiple choice.

* :func:`generate` decodes greedily for a batch of prompts (left padding, one cache).
* :func:`score_options` answers a multiple-choice question without decoding. ``letters`` mode
  runs the prompt once and reads the next-token log-probabilities of the option letters after the
  answer prefix (``<|im_start|>assistant\\n``); ``text`` mode scores each option's full answer
  ``X. text<|im_end|>`` by its mean token log-likelihood, reusing the prompt's cache for all
  options.

On a GPU the model runs in bfloat16, on a CPU in float32 (:func:`default_dtype`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from verbnoun.bench import prompts
from verbnoun.model.architecture import Batch, LlavactionForCausalLM
from verbnoun.model.processor import Processor


def default_device() -> torch.device:
    """CUDA when available, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def default_dtype(device: torch.device) -> torch.dtype:
    """bfloat16 on a GPU, float32 on a CPU."""
    return torch.bfloat16 if device.type == "cuda" else torch.float32


@dataclass(frozen=True)
class Choice:
    """A multiple-choice answer: the chosen index and letter, and one score per option
    (log-probability of its letter, or mean log-likelihood of its answer text)."""

    index: int
    letter: str
    scores: tuple[float, ...]
    mode: str


def _step_batch(embeds: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor) -> Batch:
    none = torch.full((embeds.shape[0],), -1, device=embeds.device)
    return Batch(embeds, mask, positions, None, none)


def within_vocab(logits: torch.Tensor, vocab_limit: int | None) -> torch.Tensor:
    """Logits with the columns past the tokenizer (``vocab_limit`` and beyond) at -inf, so that
    an embedding row the tokenizer cannot decode is never chosen and softmaxes run over the
    tokenizer's tokens only (as in the original, whose embeddings are resized to it)."""
    if vocab_limit is None or vocab_limit >= logits.shape[-1]:
        return logits
    logits = logits.clone()
    logits[..., vocab_limit:] = float("-inf")
    return logits


@torch.no_grad()
def generate(
    model: LlavactionForCausalLM,
    input_ids: Sequence[torch.Tensor],
    videos: Sequence[torch.Tensor | None],
    *,
    eos_ids: set[int],
    max_new_tokens: int = 16,
    vocab_limit: int | None = None,
) -> list[list[int]]:
    """Greedy decoding for a batch; returns each row's new token ids (without the end token).
    ``vocab_limit``: the tokenizer's length (:attr:`Processor.vocab_limit`); ids at or past it
    are never generated."""
    batch = model.prepare(input_ids, videos, padding_side="left")
    out = model.run(batch, use_cache=True, logits_to_keep=1)
    cache, mask = out.cache, batch.attention_mask
    positions = batch.position_ids[:, -1:]
    rows = len(input_ids)
    finished = torch.zeros(rows, dtype=torch.bool, device=mask.device)
    results: list[list[int]] = [[] for _ in range(rows)]
    eos = torch.tensor(sorted(eos_ids), device=mask.device)
    for step in range(max_new_tokens):
        tokens = within_vocab(out.logits[:, -1], vocab_limit).argmax(-1)
        is_end = torch.isin(tokens, eos)
        for i in range(rows):
            if not finished[i] and not is_end[i]:
                results[i].append(int(tokens[i]))
        finished |= is_end
        if bool(finished.all()) or step == max_new_tokens - 1:
            break
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        positions = positions + 1
        embeds = model.model.embed_tokens(tokens[:, None])
        out = model.run(_step_batch(embeds, mask, positions), cache=cache, use_cache=True)
        cache = out.cache
    return results


@torch.no_grad()
def score_options(
    model: LlavactionForCausalLM,
    processor: Processor,
    input_ids: Sequence[torch.Tensor],
    videos: Sequence[torch.Tensor | None],
    options: Sequence[Sequence[str]],
    *,
    mode: str = "letters",
) -> list[Choice]:
    """Choose among each row's options in one forward pass of the prompts (``letters``), or one
    prompt pass plus one pass over all continuations (``text``)."""
    if mode not in ("letters", "text"):
        raise ValueError(f"unknown scoring mode {mode!r}")
    batch = model.prepare(input_ids, videos, padding_side="left")
    out = model.run(batch, use_cache=mode == "text", logits_to_keep=1)
    first = within_vocab(out.logits[:, -1].float(), processor.vocab_limit).log_softmax(-1)
    if mode == "letters":
        per_row = []
        for row, texts in enumerate(options):
            ids = processor.option_letter_ids(len(texts))
            per_row.append(first[row, ids].tolist())
    else:
        per_row = _text_likelihoods(model, processor, batch, out.cache, first, options)
    choices = []
    for scores in per_row:
        index = max(range(len(scores)), key=scores.__getitem__)
        choices.append(Choice(index, prompts.letter(index), tuple(scores), mode))
    return choices


def _text_likelihoods(
    model: LlavactionForCausalLM,
    processor: Processor,
    batch: Batch,
    cache,
    first: torch.Tensor,
    options: Sequence[Sequence[str]],
) -> list[list[float]]:
    """Mean log-likelihood of each option's answer tokens given its row's cached prompt."""
    answers = [processor.option_answers(texts) for texts in options]
    owner = [row for row, texts in enumerate(answers) for _ in texts]
    flat = [ids for texts in answers for ids in texts]
    device = batch.attention_mask.device
    index = torch.tensor(owner, device=device)
    cache.reorder_cache(index)
    length = max(len(ids) for ids in flat)
    tokens = torch.zeros(len(flat), length, dtype=torch.long, device=device)
    valid = torch.zeros(len(flat), length, dtype=torch.long, device=device)
    for i, ids in enumerate(flat):
        tokens[i, : len(ids)] = torch.tensor(ids, device=device)
        valid[i, : len(ids)] = 1
    mask = torch.cat([batch.attention_mask[index], valid], dim=1)
    start = batch.position_ids[index, -1:] + 1
    positions = start + torch.arange(length, device=device)
    embeds = model.model.embed_tokens(tokens)
    out = model.run(_step_batch(embeds, mask, positions), cache=cache)
    logp = within_vocab(out.logits.float(), processor.vocab_limit).log_softmax(-1)
    # token j of an answer is predicted by the prompt's last position (j = 0) or by token j-1
    token_logp = torch.cat(
        [
            first[index].gather(1, tokens[:, :1]),
            logp[:, :-1].gather(2, tokens[:, 1:, None]).squeeze(2),
        ],
        dim=1,
    )
    means = (token_logp * valid).sum(1) / valid.sum(1)
    scores: list[list[float]] = [[] for _ in options]
    for row, value in zip(owner, means.tolist(), strict=True):
        scores[row].append(value)
    return scores
