"""Prompt strings are byte-exact with SPEC 3.1 (``prompts.json`` beside SPEC.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from verbnoun.bench import prompts
from verbnoun.bench.questions import Option, PriorAction, Question

PROMPTS_JSON = Path(__file__).resolve().parents[2].parent / "shared" / "docs" / "prompts.json"


@pytest.fixture(scope="module")
def spec():
    if not PROMPTS_JSON.is_file():
        pytest.skip("prompts.json not found")
    return json.loads(PROMPTS_JSON.read_text())


def test_strings_match_spec(spec):
    assert prompts.FIRST_PERSON_PREFIX == spec["first_person_prefix"]
    assert prompts.MQA.replace("{options}", "{OPTIONS}") == spec["mqa"]
    assert prompts.MQA_PRIOR_ACTIONS.replace("{options}", "{OPTIONS}") == spec["mqa_prior_actions"]
    assert prompts.DIRECT_NARRATION == spec["direct_narration"]
    assert prompts.CAPTION == spec["caption"]
    assert prompts.TEMPORAL_DETECTION == spec["temporal_detection_question"]
    assert prompts.TIME_INSTRUCTION == spec["time_instruction"]
    assert prompts.CHAT_QWEN_1_5 == spec["qwen_1_5_chat"]
    assert prompts.ASSISTANT_END == spec["assistant_end"]


def _question(prior=()):
    options = (
        Option("open door", "3:3", "random", "narration"),
        Option("close cupboard", "4:8", "random", "narration"),
        Option("take plate", "0:2", "ground_truth", "narration"),
    )
    return Question("P01_11_0", "P01_11", "P01", 1.0, 2.5, options, 2, "take plate", 0, 2, prior)


def test_full_mqa_prompt_is_byte_exact(spec):
    question = _question()
    options = "A. open door, B. close cupboard, C. take plate"
    task = spec["mqa"].replace("{OPTIONS}", options)
    time = "The provided video lasts for 1.500 seconds, and 8 frames are uniformly sampled from it."
    expected = spec["qwen_1_5_chat"].replace(
        "{user_turn}", spec["user_turn_with_time"].format(time_instruction=time, task=task)
    )
    assert question.prompt(8) == expected
    assert question.prompt(8).startswith(
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<image>\n"
        "The provided video lasts for 1.500 seconds, and 8 frames are uniformly sampled from it."
        "You are seeing this video"
    )
    assert question.prompt(8).endswith(
        "selecting:\nA. open door, B. close cupboard, C. take plate<|im_end|>\n<|im_start|>assistant\n"
    )
    without = spec["qwen_1_5_chat"].replace(
        "{user_turn}", spec["user_turn_without_time"].format(task=task)
    )
    assert question.prompt(8, time_instruction=False) == without
    assert question.target() == "C. take plate"


def test_prior_actions_prompt(spec):
    prior = (
        PriorAction("P01_11_7", 4.5, "open fridge", "3:12"),
        PriorAction("P01_11_8", 1.25, "take milk", "0:27"),
    )
    question = _question(prior)
    expected = spec["mqa_prior_actions"].format(
        o2="4.50", n2="open fridge", o1="1.25", n1="take milk",
        OPTIONS="A. open door, B. close cupboard, C. take plate",
    )  # fmt: skip
    assert question.task(with_prior_actions=True) == expected
    assert question.task() == spec["mqa"].replace(
        "{OPTIONS}", "A. open door, B. close cupboard, C. take plate"
    )


def test_letters():
    assert prompts.letter(0) == "A" and prompts.letter(25) == "Z"
    with pytest.raises(ValueError):
        prompts.letter(26)
