"""``--model hf --scoring generate`` never generates a row of a padded vocabulary (an embedding
with more rows than the tokenizer has tokens, as released Qwen2-VL checkpoints have): a tiny
Qwen2-VL whose padding rows are made to win every step still answers with the tokenizer's
tokens, as ``letters`` scoring does."""

from __future__ import annotations

from pathlib import Path

import hf_families
import numpy as np
import torch

from verbnoun.bench.build import BuildSettings, build_benchmark
from verbnoun.bench.questions import read_questions, write_questions
from verbnoun.data.kitchen import kitchen_script, write_kitchen_annotations
from verbnoun.evaluate.hf_adapter import HfAdapter, HfSettings
from verbnoun.evaluate.records import answered
from verbnoun.evaluate.runner import EvalSettings, _request, run_evaluation

PADDING = 60  # rows past the tokenizer
FRAMES = 2


def padded_qwen2_vl(directory: Path) -> Path:
    """The tiny Qwen2-VL of ``hf_families`` with ``PADDING`` more embedding rows, its weights
    set so that at every step a padding row has the highest logit, then ``B``, and after a
    ``B`` the end of the turn: hidden dimension 0 holds 10 at every text position (nothing else
    writes to it) and dimension 1 holds 10 after ``B``; the output rows read them."""
    from transformers import AutoTokenizer, Qwen2VLForConditionalGeneration

    hf_families.qwen2_vl(directory)
    tokenizer = AutoTokenizer.from_pretrained(str(directory))
    model = Qwen2VLForConditionalGeneration.from_pretrained(str(directory))
    limit = len(tokenizer)
    model.resize_token_embeddings(limit + PADDING, mean_resizing=False)
    (b,) = tokenizer.encode("B", add_special_tokens=False)
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    language = model.model.language_model
    with torch.no_grad():
        embed = language.embed_tokens.weight
        embed[:, :2] = 0.0
        embed[:, 0] = 10.0
        embed[b, 1] = 10.0
        for layer in language.layers:  # no layer writes to dimensions 0 and 1
            layer.self_attn.o_proj.weight[:2] = 0.0
            layer.mlp.down_proj.weight[:2] = 0.0
        head = model.lm_head.weight
        head[:, :2] = 0.0
        head[limit:] = 0.0
        head[limit:, 0] = 10.0  # the padding rows: the highest logit at every step
        head[b, 0] = 5.0  # then B
        head[end, 1] = 20.0  # and after B, the end of the turn
    model.config.text_config.vocab_size = limit + PADDING
    model.save_pretrained(str(directory))
    return directory


def test_generate_never_samples_a_padding_row(tmp_path):
    annotations = write_kitchen_annotations(tmp_path / "a", kitchen_script(12, 2))
    questions = tmp_path / "q.jsonl"
    build_benchmark(annotations, questions, BuildSettings(distractors="random"))
    write_questions(questions, read_questions(questions)[:3])
    model = padded_qwen2_vl(tmp_path / "hf")

    torch.set_num_threads(1)
    adapter = HfAdapter(HfSettings(str(model), mode="generate", device="cpu"))
    limit = len(adapter.tokenizer)
    assert adapter.model.get_output_embeddings().weight.shape[0] == limit + PADDING
    grey = np.full((FRAMES, 32, 32, 3), 128, dtype=np.uint8)
    request = _request(read_questions(questions)[0], grey, EvalSettings(frames=FRAMES))
    logits = adapter._forward(adapter._inputs([adapter._text(request)], [grey]), last_only=True)
    assert int(logits[0, -1].argmax()) >= limit  # unmasked, a padding row would be generated
    (b,) = adapter.tokenizer.encode("B", add_special_tokens=False)
    assert int(adapter._within_vocab(logits[0, -1]).argmax()) == b

    run = tmp_path / "run"
    run_evaluation(questions, adapter, run, EvalSettings(frames=FRAMES),
                   frame_source=lambda q: grey, workers=0, progress=False)  # fmt: skip
    records = answered(run)
    assert len(records) == 3
    assert all(r["raw"] == "B" and r["choice"] == 1 for r in records.values())
