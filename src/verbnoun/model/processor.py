"""Frames to pixel values and prompts to token ids, as the released checkpoints expect (SPEC 2, 3).

Pixel values, exactly as the release's image processor (LLaVA-NeXT's SigLIP processor) makes
them: each uint8 RGB frame is resized to the tower's square size by Pillow's bicubic filter on the
8-bit image (:func:`verbnoun.data.images.resize_frames`; Pillow rounds and clips after each of its
two passes, which a float resize does not reproduce), then rescaled by 1/255 in float64, cast to
float32 and normalised with mean = std = 0.5 in float32. Each 8-bit level has one float value, so
the last two steps are a 256-entry table (:data:`LEVELS`), equal to the processor's arithmetic.

Token ids: the prompt text comes from :mod:`verbnoun.bench.prompts` (the only home of prompt
strings); the ``<image>`` placeholder becomes :data:`IMAGE_TOKEN_INDEX` (-200) and the text pieces
around it are tokenised separately, as the original ``tokenizer_image_token`` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from verbnoun.bench import prompts
from verbnoun.data.images import resize_frames
from verbnoun.errors import VerbnounError
from verbnoun.model.architecture import IGNORE_INDEX
from verbnoun.model.config import IMAGE_TOKEN_INDEX

MEAN = 0.5
STD = 0.5
RESCALE = 1 / 255
# Level v -> float32(float32(v * 1/255 in float64) - 0.5) / 0.5: transformers' rescale then normalize.
LEVELS = ((np.arange(256, dtype=np.float64) * RESCALE).astype(np.float32) - np.float32(MEAN)) / (
    np.float32(STD)
)


def preprocess_frames(frames: np.ndarray, image_size: int) -> torch.Tensor:
    """uint8 RGB frames ``(N, H, W, 3)`` -> float32 pixel values ``(N, 3, S, S)`` in [-1, 1]."""
    array = np.asarray(frames)
    if array.ndim != 4 or array.shape[-1] != 3:
        raise VerbnounError(f"frames must be (N, H, W, 3) RGB, got shape {array.shape}")
    if array.dtype != np.uint8:
        raise VerbnounError(f"frames must be uint8, got {array.dtype}")
    resized = resize_frames(array, (image_size, image_size))
    return torch.from_numpy(np.ascontiguousarray(LEVELS[resized].transpose(0, 3, 1, 2)))


@dataclass(frozen=True)
class Encoded:
    """Token ids of one prompt (with the placeholder) and, for training, its labels."""

    input_ids: torch.Tensor
    labels: torch.Tensor | None = None


class Processor:
    """Tokenises chat prompts with the ``<image>`` placeholder for a given tokenizer.

    ``eos_ids``: the tokens that end generation: a checkpoint's own (its generation config's or
    config's ``eos_token_id``, as the original's ``generate`` uses them, see
    :func:`verbnoun.model.checkpoint.end_token_ids`), by default (or when none of them is a token
    of the tokenizer) ``<|im_end|>``, which ends every turn of the qwen_1_5 template. ``vocab_limit``: ``len(tokenizer)``; a released embedding
    matrix has more rows (151,936 or 152,064 for 151,646 tokens) and generation and scoring
    never pick one past the tokenizer (the original resizes the embeddings to its length)."""

    def __init__(self, tokenizer, image_size: int, eos_ids: set[int] | None = None) -> None:
        self.tokenizer = tokenizer
        self.image_size = image_size
        self.vocab_limit = len(tokenizer)
        self.end_ids = self._ids(prompts.ASSISTANT_END)
        if len(self.end_ids) != 1:
            raise VerbnounError(f"{prompts.ASSISTANT_END} is not a single token")
        self.eos_ids = set(eos_ids or ())
        if not any(0 <= i < self.vocab_limit for i in self.eos_ids):  # none could ever be produced
            self.eos_ids.add(self.end_ids[0])
        self._letter_ids: dict[int, list[int]] = {}  # asked for once per question when scoring

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def pixel_values(self, frames: np.ndarray) -> torch.Tensor:
        """Frames ``(N, H, W, 3)`` uint8 -> pixel values for the vision tower."""
        return preprocess_frames(frames, self.image_size)

    def tokenize(self, text: str) -> list[int]:
        """Token ids of a text with ``<image>`` placeholders replaced by -200."""
        pieces = text.split(prompts.IMAGE_TOKEN)
        ids: list[int] = []
        for i, piece in enumerate(pieces):
            if i:
                ids.append(IMAGE_TOKEN_INDEX)
            if piece:
                ids.extend(self._ids(piece))
        return ids

    def encode_prompt(self, user_turn: str) -> Encoded:
        """The qwen_1_5 chat prompt of a user turn, up to the assistant's answer."""
        ids = self.tokenize(prompts.chat_prompt(user_turn))
        return Encoded(torch.tensor(ids, dtype=torch.long))

    def encode_training(self, user_turn: str, answer: str) -> Encoded:
        """Prompt + answer + ``<|im_end|>``; labels mask the system and user turns (and the
        assistant header) with -100 and supervise the answer and its end token. A one-question
        shortcut for small experiments; the trainer encodes records with
        :func:`~verbnoun.model.tokenization.encode_conversation` (the release's supervision)."""
        prompt = self.tokenize(prompts.chat_prompt(user_turn))
        target = self._ids(answer) + self.end_ids
        ids = torch.tensor(prompt + target, dtype=torch.long)
        labels = torch.tensor([IGNORE_INDEX] * len(prompt) + target, dtype=torch.long)
        return Encoded(ids, labels)

    def option_letter_ids(self, count: int) -> list[int]:
        """The single token of each option letter ``A``, ``B``, ... as the answer's first token."""
        if count not in self._letter_ids:
            self._letter_ids[count] = self._letter_tokens(count)
        return list(self._letter_ids[count])

    def _letter_tokens(self, count: int) -> list[int]:
        ids = []
        for index in range(count):
            letter = prompts.letter(index)
            token = self._ids(letter)
            if len(token) != 1:
                raise VerbnounError(f"option letter {letter!r} is not a single token")
            ids.append(token[0])
        return ids

    def option_answers(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each full answer ``X. text`` followed by ``<|im_end|>``."""
        return [
            self._ids(prompts.mqa_answer(i, text)) + self.end_ids for i, text in enumerate(texts)
        ]

    def decode(self, ids: Sequence[int]) -> str:
        """Text of generated ids, without special tokens."""
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)
