"""Tokenizers without a hub: load a checkpoint's own files, convert Qwen's tiktoken BPE ranks, or
train a tiny byte-level BPE for tests and the demo.

Qwen2's tokenizer is byte-level BPE with a fixed pre-tokenizer regex, NFC normalisation, and
special tokens numbered from 151643 (``<|endoftext|>``, ``<|im_start|>``, ``<|im_end|>``). The same
BPE ranks ship as a ``.tiktoken`` file (``base64-token rank`` per line); :func:`qwen2_from_tiktoken`
turns such a file into the Qwen2 tokenizer with transformers' ``TikTokenConverter``.

Training samples: :func:`encode_conversation` writes a record's turns with the qwen_1_5 template
and supervises them as LLaVA-NeXT's Qwen preprocessing does (``original``, the default of the
trainer) or only the answers (``answer``).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from pathlib import Path

from verbnoun.bench import prompts
from verbnoun.errors import CheckpointError, CheckpointFileError, VerbnounError
from verbnoun.fileio import read_json

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
QWEN2_FIRST_SPECIAL_ID = 151643
QWEN2_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
    r"\s*[\r\n]+|\s+(?!\S)|\s+"
)
TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "tokenizer.model")
TOKENIZER_JSON_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "added_tokens.json",
)


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
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
        clean_up_tokenization_spaces=False,
    )


def load_tokenizer(directory: str | Path):
    """The tokenizer stored in a checkpoint directory (local files only, never a hub)."""
    from transformers import AutoTokenizer

    directory = Path(directory)
    if not any((directory / name).is_file() for name in TOKENIZER_FILES):
        raise CheckpointError(f"{directory}: no tokenizer files ({', '.join(TOKENIZER_FILES)})")
    for name in TOKENIZER_JSON_FILES:  # a damaged file is named by file and line, not by folder
        if (directory / name).exists():
            read_json(directory / name, expect=dict, error=CheckpointFileError)
            with (directory / name).open("rb") as handle:
                if handle.read(3) == b"\xef\xbb\xbf":  # the tokenizers library refuses it
                    raise CheckpointFileError(
                        directory / name, "starts with a UTF-8 byte-order mark; save it without"
                    )
    try:
        return AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    except Exception as error:  # the Rust tokenizers library raises a bare Exception
        files = ", ".join(n for n in TOKENIZER_FILES if (directory / n).is_file())
        detail = " ".join(str(error).split())
        raise CheckpointError(
            f"{directory}: cannot load the tokenizer ({files}): {detail}"
        ) from None


# ---- training samples ---------------------------------------------------------------------------

SUPERVISION = ("original", "answer")
ROLES = {"human": "user", "gpt": "assistant"}


def turn_text(role: str, content: str) -> str:
    """One chat turn as the qwen_1_5 template writes it: ``<|im_start|>{role}\\n{content}
    <|im_end|>\\n`` (the answer's turn too ends with ``<|im_end|>`` and a newline)."""
    return f"<|im_start|>{role}\n{content}<|im_end|>\n"


def special_ids(tokenizer) -> tuple[int, int, int]:
    """The ids of ``<|im_start|>``, ``<|im_end|>`` and the single-newline token (198 in Qwen2)."""
    ids = []
    for text in ("<|im_start|>", "<|im_end|>", "\n"):
        encoded = list(tokenizer.encode(text, add_special_tokens=False))
        if len(encoded) != 1:
            raise CheckpointError(f"the tokenizer does not encode {text!r} as one token")
        ids.append(encoded[0])
    return ids[0], ids[1], ids[2]


def encode_conversation(
    processor, turns: Sequence[tuple[str, str]], supervision: str = "original", *,
    system: str = prompts.SYSTEM,
) -> tuple[list[int], list[int]]:  # fmt: skip
    """Token ids and labels (-100: not supervised) of a training sample: the system turn, then
    ``turns`` = ``(role, text)`` pairs (roles ``user`` / ``assistant``), each written by
    :func:`turn_text` and tokenised by ``processor.tokenize`` (``<image>`` -> -200).

    ``supervision`` changes the labels only, never the ids:

    * ``original`` (LLaVA-NeXT's Qwen preprocessing, what the released checkpoints were trained
      with): every token of an assistant turn is supervised, its ``<|im_start|>assistant``
      header line and final newline included; in the system and user turns every
      ``<|im_start|>``, ``<|im_end|>`` and single-newline token is supervised as well.
    * ``answer``: only each answer's tokens and its ``<|im_end|>``.
    """
    if supervision not in SUPERVISION:
        raise VerbnounError(f"supervision {supervision!r}: one of {', '.join(SUPERVISION)}")
    from verbnoun.model.architecture import IGNORE_INDEX

    start, end, newline = special_ids(processor.tokenizer)
    structural = {start, end, newline} if supervision == "original" else set()
    header = processor.tokenize("<|im_start|>assistant\n")
    ids: list[int] = []
    labels: list[int] = []
    for role, text in [("system", system), *turns]:
        piece = processor.tokenize(turn_text(role, text))
        ids += piece
        if role != "assistant":
            labels += [t if t in structural else IGNORE_INDEX for t in piece]
        elif supervision == "original":
            labels += piece
        else:
            first = len(header) if piece[: len(header)] == header else len(header) - 1
            last = len(piece) - 1 - piece[::-1].index(end)  # the turn's own <|im_end|>
            labels += [t if first <= i <= last else IGNORE_INDEX for i, t in enumerate(piece)]
    return ids, labels
