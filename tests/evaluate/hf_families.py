"""Tiny random transformers models of three image-text-to-text families, built locally.

Each builder writes a model directory the way ``save_pretrained`` does for a released model:
``config.json``, safetensors weights, a tokenizer trained here (never downloaded), the family's
PIL image processor config, ``processor_config.json`` and a chat template in the family's own
message format (written for these tests, not copied). Widths are tiny and frames 32 px.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from verbnoun.bench import prompts

CORPUS = [prompts.MQA, prompts.TIME_INSTRUCTION, "A. B. C. D. E. take put red bowl User Assistant"]

# Qwen2-VL's message format: vision segments inside the user turn, then the text
QWEN2_VL_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if loop.first and message['role'] != 'system' -%}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{%- endif -%}"
    "<|im_start|>{{ message['role'] }}\n"
    "{%- if message['content'] is string -%}{{ message['content'] }}"
    "{%- else -%}{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'image' -%}<|vision_start|><|image_pad|><|vision_end|>"
    "{%- elif part['type'] == 'video' -%}<|vision_start|><|video_pad|><|vision_end|>"
    "{%- elif part['type'] == 'text' -%}{{ part['text'] }}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}<|im_end|>\n"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}<|im_start|>assistant\n{%- endif -%}"
)
# Idefics3's (SmolVLM's) message format: "User:" turns ending in <end_of_utterance>
IDEFICS3_TEMPLATE = (
    "<|im_start|>"
    "{%- for message in messages -%}"
    "{{ message['role'] | capitalize }}:"
    "{%- if message['content'] is string -%}{{ message['content'] }}"
    "{%- else -%}{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'image' -%}<image>"
    "{%- elif part['type'] == 'text' -%}{{ part['text'] }}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}<end_of_utterance>\n"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}Assistant:{%- endif -%}"
)


def _tokenizer(specials: list[str], vocab_size: int = 400):
    from verbnoun.model.tokenization import train_tiny_tokenizer

    tokenizer = train_tiny_tokenizer(CORPUS * 3, vocab_size=vocab_size)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", *specials]})
    return tokenizer


def _text_config(vocab: int) -> dict:
    return {
        "vocab_size": vocab,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
        "tie_word_embeddings": False,
    }


def _finish(directory: Path, model, tokenizer, processor: dict, template: str) -> Path:
    model.generation_config.eos_token_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    model.save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    (directory / "chat_template.jinja").write_text(template, encoding="utf-8")
    (directory / "processor_config.json").write_text(json.dumps(processor), encoding="utf-8")
    return directory


def qwen2_vl(directory: Path, seed: int = 0) -> Path:
    """A tiny Qwen2-VL: 32-px frames make 4 visual tokens each (patch 8, merge 2)."""
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
        Qwen2VLImageProcessorPil,
    )

    specials = ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
    tokenizer = _tokenizer(specials)
    ids = dict(zip(specials, tokenizer.convert_tokens_to_ids(specials), strict=True))
    text = _text_config(len(tokenizer))
    text["rope_parameters"] = {"rope_type": "default", "rope_theta": 10000.0,
                               "mrope_section": [2, 3, 3]}  # fmt: skip
    config = Qwen2VLConfig(
        text_config=text,
        vision_config={"depth": 1, "embed_dim": 32, "hidden_size": 64, "num_heads": 2,
                       "patch_size": 8, "spatial_merge_size": 2, "temporal_patch_size": 2},
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )  # fmt: skip
    torch.manual_seed(seed)
    model = Qwen2VLForConditionalGeneration(config)
    directory.mkdir(parents=True, exist_ok=True)
    Qwen2VLImageProcessorPil(
        patch_size=8, merge_size=2, temporal_patch_size=2,
        size={"shortest_edge": 16 * 16, "longest_edge": 32 * 32},
    ).save_pretrained(str(directory))  # fmt: skip
    return _finish(directory, model, tokenizer, {"processor_class": "Qwen2VLProcessor"},
                   QWEN2_VL_TEMPLATE)  # fmt: skip


def idefics3(directory: Path, seed: int = 0) -> Path:
    """A tiny Idefics3 (SmolVLM's architecture): 32-px images, 4 visual tokens each."""
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration
    from transformers.models.idefics3.image_processing_pil_idefics3 import (
        Idefics3ImageProcessorPil,
    )

    specials = ["<fake_token_around_image>", "<image>", "<end_of_utterance>", "<global-img>"]
    tokenizer = _tokenizer(specials)
    config = Idefics3Config(
        text_config={**_text_config(len(tokenizer)), "model_type": "llama"},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                       "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        scale_factor=2,
    )  # fmt: skip
    torch.manual_seed(seed)
    model = Idefics3ForConditionalGeneration(config)
    directory.mkdir(parents=True, exist_ok=True)
    Idefics3ImageProcessorPil(
        do_image_splitting=False, size={"longest_edge": 32}, max_image_size={"longest_edge": 32}
    ).save_pretrained(str(directory))
    processor = {"processor_class": "Idefics3Processor", "image_seq_len": 4}
    return _finish(directory, model, tokenizer, processor, IDEFICS3_TEMPLATE)
