"""Tokenizers without a hub: load a checkpoint's own files, convert Qwen's tiktoken BPE ranks, or
train a tiny byte-level BPE for tests and the demo.

Qwen2's tokenizer is byte-level BPE with a fixed pre-tokenizer regex, NFC normalisation, and
special tokens numbered from 151643 (``<|endoftext|>``, ``<|im_start|>``, ``<|im_end|>``). The same
BPE ranks ship as a ``.tiktoken`` file (``base64-token rank`` per line); :func:`qwen2_from_tiktoken`
turns such a file into the Qwen2 tokenizer with transformers' ``TikTokenConverter``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from pathlib import Path

from verbnoun.errors import CheckpointError

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
QWEN2_FIRST_SPECIAL_ID = 151643
QWEN2_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
    r"\s*[\r\n]+|\s+(?!\S)|\s+"
)
TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "tokenizer.model")


def read_tiktoken_ranks(path: str | Path) -> dict[bytes, int]:
    """Parse a ``.tiktoken`` file: one ``base64(token) rank`` per line."""
    ranks: dict[bytes, int] = {}
    with Path(path).open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                token, rank = line.split()
                ranks[base64.b64decode(token)] = int(rank)
            except ValueError:
                raise CheckpointError(f"{path}:{number}: not a tiktoken rank line") from None
    return ranks


def qwen2_from_tiktoken(path: str | Path):
    """The Qwen2 tokenizer (a transformers fast tokenizer) from Qwen's tiktoken BPE ranks."""
    from tokenizers import AddedToken, Regex, normalizers, pre_tokenizers
    from transformers.convert_slow_tokenizer import TikTokenConverter

    ranks = read_tiktoken_ranks(path)

    class _Converter(TikTokenConverter):
        @staticmethod
        def load_tiktoken_bpe(tiktoken_url: str) -> dict[bytes, int]:
            return ranks

    backend = _Converter(vocab_file=str(path), pattern=QWEN2_PATTERN).converted()
    backend.normalizer = normalizers.NFC()
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    first = len(ranks)
    if first != QWEN2_FIRST_SPECIAL_ID:
        raise CheckpointError(f"{path}: {first} BPE ranks, Qwen2 has {QWEN2_FIRST_SPECIAL_ID}")
    backend.add_special_tokens(
        [AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS]
    )
    return _wrap(backend)


def train_tiny_tokenizer(texts: Iterable[str], vocab_size: int = 512):
    """A byte-level BPE trained on ``texts`` with Qwen's special tokens (ids 0, 1, 2) and its
    pre-tokenizer: every single character is one token, so option letters are too."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(list(texts), trainer=trainer)
    return _wrap(backend)


def _wrap(backend):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"],
        clean_up_tokenization_spaces=False,
    )


def load_tokenizer(directory: str | Path):
    """The tokenizer stored in a checkpoint directory (local files only, never a hub)."""
    from transformers import AutoTokenizer

    directory = Path(directory)
    if not any((directory / name).is_file() for name in TOKENIZER_FILES):
        raise CheckpointError(f"{directory}: no tokenizer files ({', '.join(TOKENIZER_FILES)})")
    try:
        return AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{directory}: cannot load the tokenizer: {error}") from None
