"""Frames to pixel values, prompts to token ids (token-exact with the Qwen2 tokenizer)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from verbnoun.bench import prompts
from verbnoun.errors import VerbnounError
from verbnoun.model.architecture import IGNORE_INDEX
from verbnoun.model.config import IMAGE_TOKEN_INDEX
from verbnoun.model.processor import Processor, preprocess_frames

# <|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n in Qwen2 ids
QWEN_HEAD = [151644, 8948, 198, 2610, 525, 264, 10950, 17847, 13, 151645, 198, 151644, 872, 198]
# <|im_end|>\n<|im_start|>assistant\n
QWEN_TAIL = [151645, 198, 151644, 77091, 198]
OPTIONS = ["open door", "close cupboard", "take knife", "wash plate", "put pan"]


def test_pixel_values_scale_and_normalise():
    frames = np.zeros((2, 48, 64, 3), dtype=np.uint8)
    frames[..., 0], frames[..., 1], frames[..., 2] = 255, 51, 0
    pixels = preprocess_frames(frames, 32)
    assert pixels.shape == (2, 3, 32, 32) and pixels.dtype == torch.float32
    torch.testing.assert_close(pixels[:, 0], torch.ones(2, 32, 32))
    torch.testing.assert_close(pixels[:, 1], torch.full((2, 32, 32), (51 / 255 - 0.5) / 0.5))
    torch.testing.assert_close(pixels[:, 2], -torch.ones(2, 32, 32))


def test_pixel_values_resize_is_antialiased_bicubic():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(1, 64, 64, 3), dtype=np.uint8)
    pixels = preprocess_frames(frames, 32)
    # antialiased 2x downscale of noise is much smoother than picking every second pixel
    picked = (torch.from_numpy(frames[0, ::2, ::2, 0]).float() / 255 - 0.5) / 0.5
    assert pixels[0, 0].std() < 0.6 * picked.std()
    # already at size: untouched
    same = preprocess_frames(frames[:, :32, :32], 32)
    expected = (torch.from_numpy(frames[0, :32, :32, 1]).float() / 255 - 0.5) / 0.5
    torch.testing.assert_close(same[0, 1], expected)


def test_pixel_values_reject_wrong_frames():
    with pytest.raises(VerbnounError, match="uint8"):
        preprocess_frames(np.zeros((1, 8, 8, 3), dtype=np.float32), 8)
    with pytest.raises(VerbnounError, match="RGB"):
        preprocess_frames(np.zeros((8, 8, 3), dtype=np.uint8), 8)


@pytest.mark.slow
def test_mqa_prompt_is_token_exact_with_qwen2(qwen_tokenizer):
    processor = Processor(qwen_tokenizer, 384)
    turn = prompts.user_turn(prompts.mqa_task(OPTIONS), duration=2.5, n_frames=16)
    ids = processor.encode_prompt(turn).input_ids.tolist()
    assert ids[: len(QWEN_HEAD)] == QWEN_HEAD
    assert ids[len(QWEN_HEAD)] == IMAGE_TOKEN_INDEX and ids.count(IMAGE_TOKEN_INDEX) == 1
    assert ids[-len(QWEN_TAIL) :] == QWEN_TAIL
    # the text after the placeholder is tokenised on its own, as tokenizer_image_token does
    rest = ids[len(QWEN_HEAD) + 1 : -len(QWEN_TAIL)]
    text = "\n" + prompts.time_instruction(2.5, 16) + prompts.mqa_task(OPTIONS)
    assert rest == qwen_tokenizer.encode(text, add_special_tokens=False)
    assert rest[0] == 198  # "\n"
    assert qwen_tokenizer.decode(rest) == text
    assert "The provided video lasts for 2.500 seconds, and 16 frames" in text
    # option letters are single tokens: A=32 ... E=36 in Qwen2
    assert processor.option_letter_ids(5) == [32, 33, 34, 35, 36]
    assert processor.eos_ids == {151645}  # <|im_end|> unless the checkpoint names its own


def test_training_labels_supervise_only_the_answer(tiny_tokenizer):
    processor = Processor(tiny_tokenizer, 32)
    turn = prompts.user_turn(prompts.mqa_task(OPTIONS))
    encoded = processor.encode_training(turn, prompts.mqa_answer(2, OPTIONS[2]))
    ids, labels = encoded.input_ids, encoded.labels
    prompt_len = len(processor.encode_prompt(turn).input_ids)
    assert labels[:prompt_len].tolist() == [IGNORE_INDEX] * prompt_len
    supervised = labels[prompt_len:].tolist()
    assert supervised == ids[prompt_len:].tolist()
    assert tiny_tokenizer.decode(supervised) == "C. take knife<|im_end|>"


def test_letter_ids_are_kept_but_each_caller_gets_its_own_list(tiny_tokenizer):
    processor = Processor(tiny_tokenizer, 32)
    letters = processor.option_letter_ids(5)
    assert letters == Processor(tiny_tokenizer, 32).option_letter_ids(5)
    assert tiny_tokenizer.decode(letters) == "ABCDE"
    letters.clear()  # a caller changing its list changes nothing kept
    assert len(processor.option_letter_ids(5)) == 5
    assert processor.option_letter_ids(3) == processor.option_letter_ids(5)[:3]
