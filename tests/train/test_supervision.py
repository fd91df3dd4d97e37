"""Training samples of every SFT task (and a multi-turn record) follow the supervision rule of
LLaVA-NeXT's Qwen preprocessing, written out here independently of the trainer's code:

* the sample is ``<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n`` then, for each
  turn, ``<|im_start|>{user|assistant}\\n{text}<|im_end|>\\n`` (the answer's turn too);
* ``original``: every token of an assistant turn is supervised (label = id), from its
  ``<|im_start|>`` to its final newline; in the system and user turns exactly the tokens
  ``<|im_start|>``, ``<|im_end|>`` and ``\\n`` are supervised; ``<image>`` (-200) never is;
* ``answer``: the same ids; only each answer's own tokens and the ``<|im_end|>`` after it.
"""

from __future__ import annotations

import json

import pytest
import torch
from trainer_setup import kitchen

from verbnoun.bench import prompts
from verbnoun.data.layouts import make_layout
from verbnoun.model.config import IMAGE_TOKEN_INDEX
from verbnoun.model.processor import Processor
from verbnoun.model.tokenization import train_tiny_tokenizer
from verbnoun.train.data import DataError, SFTDataset, check_record, tokenizer_corpus
from verbnoun.train.sft import SftSettings, build_sft

IGNORE = -100
FRAMES = 4


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """Records of every SFT task on the session's kitchen, plus one multi-turn record."""
    data = kitchen(tmp_path_factory)
    out = tmp_path_factory.mktemp("sft-all")
    build_sft(
        data.annotations,
        out,
        SftSettings(tasks=("mqa", "prior", "temporal", "narration"), prior_probability=0.6),
    )
    by_type: dict[str, dict] = {}
    for name in ("mqa", "temporal", "narration"):
        for line in (out / f"{name}.jsonl").read_text().splitlines():
            record = json.loads(line)
            by_type.setdefault(record["question_type"], record)
    assert set(by_type) == {"mqa", "mqa_prior_actions", "temporal_detection", "direct_narration"}
    multi = dict(by_type["mqa"], id="multi:0")
    multi["conversations"] = by_type["mqa"]["conversations"] + [
        {"from": "human", "value": "And what do you do next?"},
        {"from": "gpt", "value": by_type["direct_narration"]["conversations"][1]["value"]},
    ]
    return data, [*by_type.values(), multi]


@pytest.fixture(scope="module")
def processor(records):
    _, items = records
    return Processor(train_tiny_tokenizer(tokenizer_corpus(items), vocab_size=400), 32)


def dataset(records, processor, supervision):
    data, items = records
    layout = make_layout("chunks", data.videos, chunk_seconds=15.0)
    return SFTDataset(items, processor, layout, frames=FRAMES, size=32, supervision=supervision)


def one(tokenizer, text):
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert len(ids) == 1
    return ids[0]


def expected_text(record) -> tuple[str, list[tuple[str, str]]]:
    """The sample's text and its turns, built from the record by hand."""
    turns = record["conversations"]
    first = turns[0]["value"]
    duration = record["end_timestamp"] - record["start_timestamp"]
    assert first.startswith("<image>\n")
    first = "<image>\n" + prompts.time_instruction(duration, FRAMES) + first[len("<image>\n") :]
    roles = ["user", "assistant"] * (len(turns) // 2)
    texts = [first] + [t["value"] for t in turns[1:]]
    pieces = [("system", "You are a helpful assistant."), *zip(roles, texts, strict=True)]
    return "".join(f"<|im_start|>{r}\n{t}<|im_end|>\n" for r, t in pieces), pieces


def test_every_task_follows_the_original_rule(records, processor):
    tokenizer = processor.tokenizer
    start, end, newline = (one(tokenizer, t) for t in ("<|im_start|>", "<|im_end|>", "\n"))
    original = dataset(records, processor, "original")
    answer = dataset(records, processor, "answer")
    for index, record in enumerate(original.records):
        sample, other = original[index], answer[index]
        assert sample["error"] is None and sample["pixel_values"].shape[0] == FRAMES
        ids, labels = sample["input_ids"].tolist(), sample["labels"].tolist()
        text, pieces = expected_text(record)
        # the ids spell the sample's text, <image> being the placeholder -200
        assert ids.count(IMAGE_TOKEN_INDEX) == 1
        spelled = tokenizer.decode([t for t in ids if t != IMAGE_TOKEN_INDEX])
        assert spelled == text.replace("<image>", ""), record["id"]
        # split at each <|im_start|>: one segment per turn, in order
        bounds = [i for i, t in enumerate(ids) if t == start] + [len(ids)]
        assert len(bounds) - 1 == len(pieces)
        for (role, turn_text), a, b in zip(pieces, bounds[:-1], bounds[1:], strict=True):
            segment, seg_labels = ids[a:b], labels[a:b]
            assert tokenizer.decode([t for t in segment if t != IMAGE_TOKEN_INDEX]) == (
                f"<|im_start|>{role}\n{turn_text}<|im_end|>\n".replace("<image>", "")
            )
            assert segment[-2:] == [end, newline]  # every turn ends with <|im_end|>\n
            if role == "assistant":
                assert seg_labels == segment
            else:
                rule = [t if t in (start, end, newline) else IGNORE for t in segment]
                assert seg_labels == rule
        # the position right after <image> (where the action token goes) predicts a newline
        image_at = ids.index(IMAGE_TOKEN_INDEX)
        assert labels[image_at] == IGNORE and labels[image_at + 1] == newline
        # answer-only supervision: the same ids; the answers and their <|im_end|> only
        assert other["input_ids"].tolist() == ids
        kept = [t for t in other["labels"].tolist() if t != IGNORE]
        answers = [t for role, t in pieces if role == "assistant"]
        assert tokenizer.decode(kept) == "".join(a + "<|im_end|>" for a in answers)
        assert torch.equal(sample["actions"], other["actions"])


def test_records_the_trainer_cannot_use_are_named(records):
    _, items = records
    base = items[0]
    bad = [
        ([{"from": "human", "value": "x"}], "alternating"),
        ([{"from": "gpt", "value": "x"}, {"from": "human", "value": "y"}], "alternating"),
        (base["conversations"] + [{"from": "human", "value": "<image>\nagain"},
                                  {"from": "gpt", "value": "z"}], "only the first"),
        ([{"from": "human", "value": "<image>\nq"}, {"from": "gpt", "value": None}], "turn 1"),
    ]  # fmt: skip
    for turns, message in bad:
        with pytest.raises(DataError, match=message) as error:
            check_record({**base, "conversations": turns}, "mix.yaml (record 3)")
        assert "mix.yaml (record 3)" in str(error.value) and base["id"] in str(error.value)


def test_unknown_supervision_is_refused(records, processor):
    with pytest.raises(DataError, match=r"data\.supervision"):
        dataset(records, processor, "everything")
