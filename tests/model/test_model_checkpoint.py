"""Checkpoint IO: our format round trip, the released LLaVA-NeXT layout, errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from verbnoun.errors import CheckpointError
from verbnoun.model.architecture import LlavactionForCausalLM
from verbnoun.model.checkpoint import (
    INDEX_FILE,
    load_model,
    load_pretrained,
    read_config,
    save_checkpoint,
    write_tiny_released_checkpoint,
)
from verbnoun.model.config import IMAGE_TOKEN_INDEX, LlavactionConfig, tiny_config

SRC = Path(__file__).resolve().parents[2] / "src" / "verbnoun" / "model"


def _logits(model: LlavactionForCausalLM) -> torch.Tensor:
    torch.manual_seed(3)
    video = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        return model([torch.tensor([4, 5, IMAGE_TOKEN_INDEX, 6, 7])], [video]).logits


def test_our_format_round_trip(tmp_path, tiny_tokenizer):
    torch.manual_seed(0)
    model = LlavactionForCausalLM(tiny_config(newline_position="one_token")).eval()
    save_checkpoint(model, tmp_path / "ours", tiny_tokenizer, shards=3)
    assert (tmp_path / "ours" / INDEX_FILE).is_file()
    loaded, processor = load_pretrained(tmp_path / "ours", device="cpu")
    assert loaded.config == model.config
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    assert loaded.lm_head.weight is loaded.model.embed_tokens.weight  # tied again
    torch.testing.assert_close(_logits(loaded), _logits(model), atol=0, rtol=0)
    assert processor.tokenizer.encode("open door") == tiny_tokenizer.encode("open door")


def test_released_layout_loads_with_every_weight(tmp_path, tiny_tokenizer):
    directory = tmp_path / "released"
    model = write_tiny_released_checkpoint(directory, tokenizer=tiny_tokenizer, shards=2)
    index = json.loads((directory / INDEX_FILE).read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert shards == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    keys = set(index["weight_map"])
    for key in (
        "model.action_supervision",
        "verb_head.weight",
        "model.image_newline",
        "model.vision_tower.vision_tower.vision_model.embeddings.position_embedding.weight",
    ):
        assert key in keys
    stored = load_file(str(directory / shards[0]))
    assert all(t.dtype == torch.bfloat16 for t in stored.values())
    config = json.loads((directory / "config.json").read_text())
    assert config["mm_projector_type"] == "mlp2x_gelu" and config["action_types"] == "10,16,40"
    assert config["vision_supervision"] == "one_token"
    loaded = load_model(directory)
    assert loaded.config == model.config
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value.to(torch.bfloat16).float())
    loaded_bf16 = load_model(directory, dtype=torch.bfloat16)
    assert loaded_bf16.lm_head.weight.dtype == torch.bfloat16
    # the forward pass of the loaded model equals the original's on bf16-rounded weights
    torch.testing.assert_close(_logits(loaded), _logits(model.to(torch.bfloat16).float()))


def test_released_config_with_only_the_hub_id_uses_so400m(tmp_path):
    data = tiny_config().to_released()
    del data["vision_config"]
    with pytest.raises(CheckpointError, match="mm_hidden_size 48"):
        LlavactionConfig.from_released(data)
    data["mm_hidden_size"] = 1152
    config = LlavactionConfig.from_released(data)
    assert config.vision.hidden_size == 1152 and config.vision.num_layers == 26
    assert config.visual_tokens(16) == 16 * 210
    assert config.action_types == (10, 16, 40) and config.action_tokens == 1
    data.update(mm_newline_position="one_token", vision_supervision="three_tokens")
    assert LlavactionConfig.from_released(data).action_tokens == 3
    with pytest.raises(CheckpointError, match="vision_supervision"):
        LlavactionConfig.from_released({**data, "vision_supervision": "all_newlines"})
    with pytest.raises(CheckpointError, match="only SigLIP"):
        LlavactionConfig.from_released({**data, "mm_vision_tower": "openai/clip-vit-large"})


def test_dropped_vision_layer_and_pooling_head_are_ignored(tmp_path):
    directory = tmp_path / "released"
    write_tiny_released_checkpoint(directory, shards=1)
    path = directory / "model.safetensors"
    state = load_file(str(path))
    prefix = "model.vision_tower.vision_tower.vision_model."
    state[prefix + "encoder.layers.2.mlp.fc1.weight"] = torch.zeros(96, 48)
    state[prefix + "head.probe"] = torch.zeros(1, 1, 48)
    save_file(state, str(path))
    load_model(directory)  # no error


def test_missing_and_unknown_weights_are_errors(tmp_path):
    directory = tmp_path / "released"
    write_tiny_released_checkpoint(directory, shards=1)
    path = directory / "model.safetensors"
    state = load_file(str(path))
    save_file({**state, "model.something_else": torch.zeros(2)}, str(path))
    with pytest.raises(CheckpointError, match=r"unknown weight.*model\.something_else"):
        load_model(directory)
    del state["verb_head.weight"]
    save_file(state, str(path))
    with pytest.raises(CheckpointError, match=r"missing: verb_head\.weight"):
        load_model(directory)
    state["verb_head.weight"] = torch.zeros(3, 3)
    save_file(state, str(path))
    with pytest.raises(CheckpointError, match="shape"):
        load_model(directory)


def test_not_a_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match=r"no config\.json"):
        read_config(tmp_path)
    (tmp_path / "config.json").write_text('{"hidden_size": 8}')
    with pytest.raises(CheckpointError, match="not a LLaVA checkpoint"):
        read_config(tmp_path)


def test_no_pickle_anywhere_in_the_model_package():
    for path in SRC.glob("*.py"):
        text = path.read_text()
        assert "import pickle" not in text, path.name
        assert not re.search(r"torch\.load\((?![^)]*weights_only=True)", text), path.name
        assert 'from_pretrained("' not in text, path.name
