"""A LoRA run, checkpoint or adapter folder given where a model is expected (``--checkpoint``)
is refused in one line that says it holds an adapter and how to merge it into its base."""

from __future__ import annotations

import json

import pytest

from verbnoun.errors import CheckpointError
from verbnoun.model.checkpoint import read_config


def _adapter(folder, base="/models/base"):
    folder.mkdir(parents=True)
    (folder / "adapter.json").write_text(json.dumps({"format": "verbnoun-lora", "base": {
        "path": base, "digest": "sha256:0"}}))  # fmt: skip


@pytest.mark.parametrize("given", ["run", "run/checkpoints/step-000004", "adapter"])
def test_an_adapter_folder_says_to_merge_it(tmp_path, given):
    _adapter(tmp_path / "run/checkpoints/step-000004/adapter")
    (tmp_path / "run/checkpoints/step-000004/trainer.pt").write_bytes(b"")  # marks it complete
    (tmp_path / "run/checkpoints/latest").write_text("step-000004")
    _adapter(tmp_path / "adapter")
    with pytest.raises(CheckpointError) as raised:
        read_config(tmp_path / given)
    message = str(raised.value)
    assert "\n" not in message and "no config.json" in message
    assert "holds a LoRA adapter" in message
    assert (
        f"verbnoun export merged --checkpoint /models/base --adapter {tmp_path / given}" in message
    )


def test_another_folder_gets_no_hint(tmp_path):
    with pytest.raises(CheckpointError) as raised:
        read_config(tmp_path)
    assert "LoRA" not in str(raised.value)
