"""Frames to pixel values and prompts to token ids, as the released checkpoints expect (SPEC 2, 3).

Pixel values: RGB frames resized to the tower's square size with antialiased bicubic
interpolation (PIL's filter, which SigLIP's image processor uses), rounded to 8 bits like PIL,
scaled to [0, 1] and normalised with mean = std = 0.5. No torchvision, no PIL.

Token ids: the prompt text comes from :mod:`verbnoun.bench.prompts` (the only home of prompt
strings); the ``<image>`` placeholder becomes :data:`IMAGE_TOKEN_INDEX` (-200) and the text pieces
around it are tokenised separately, as the original ``tokenizer_image_token`` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from verbnoun.bench import prompts
from verbnoun.errors import VerbnounError
from verbnoun.model.architecture import IGNORE_INDEX
from verbnoun.model.config import IMAGE_TOKEN_INDEX

MEAN = 0.5
STD = 0.5


def preprocess_frames(frames: np.ndarray, image_size: int) -> torch.Tensor:
    """uint8 RGB frames ``(N, H, W, 3)`` -> float pixel values ``(N, 3, S, S)`` in [-1, 1]."""
    array = np.asarray(frames)
    if array.ndim != 4 or array.shape[-1] != 3:
        raise VerbnounError(f"frames must be (N, H, W, 3) RGB, got shape {array.shape}")
    if array.dtype != np.uint8:
        raise VerbnounError(f"frames must be uint8, got {array.dtype}")
    x = torch.from_numpy(np.ascontiguousarray(array)).permute(0, 3, 1, 2).float()
    if x.shape[-2:] != (image_size, image_size):
        x = F.interpolate(
            x, size=(image_size, image_size), mode="bicubic", antialias=True, align_corners=False
        )
        x = x.round().clamp(0, 255)
    return (x / 255.0 - MEAN) / STD


@dataclass(frozen=True)
class Encoded:
    """Token ids of one prompt (with the placeholder) and, for training, its labels."""

    input_ids: torch.Tensor
    labels: torch.Tensor | None = None


class Processor:
    """Tokenises chat prompts with the ``<image>`` placeholder for a given tokenizer."""

    def __init__(self, tokenizer, image_size: int) -> None:
        self.tokenizer = tokenizer
        self.image_size = image_size
        self.end_ids = self._ids(prompts.ASSISTANT_END)
        if len(self.end_ids) != 1:
            raise VerbnounError(f"{prompts.ASSISTANT_END} is not a single token")
        self.eos_ids = {self.end_ids[0]}
        endoftext = tokenizer.convert_tokens_to_ids("<|endoftext|>")
        if isinstance(endoftext, int) and endoftext != tokenizer.unk_token_id:
            self.eos_ids.add(endoftext)

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
        assistant header) with -100 and supervise the answer and its end token."""
        prompt = self.tokenize(prompts.chat_prompt(user_turn))
        target = self._ids(answer) + self.end_ids
        ids = torch.tensor(prompt + target, dtype=torch.long)
        labels = torch.tensor([IGNORE_INDEX] * len(prompt) + target, dtype=torch.long)
        return Encoded(ids, labels)

    def option_letter_ids(self, count: int) -> list[int]:
        """The single token of each option letter ``A``, ``B``, ... as the answer's first token."""
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
