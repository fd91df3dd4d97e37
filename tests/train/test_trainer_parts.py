"""Which parts train and at which learning rate: frozen parts never move and are in no optimizer
state, each part's learning rate is the one applied, ``mm_tunable_parts`` is read from a
released ``config.json``, bad part names are one-line errors, and resume stays exact."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from safetensors.torch import load_file
from trainer_setup import killed_after, kitchen, losses, tiny_settings, write_config

from verbnoun.cli import main
from verbnoun.errors import CheckpointError, VerbnounError
from verbnoun.model.checkpoint import load_model, write_tiny_released_checkpoint
from verbnoun.model.config import tiny_config
from verbnoun.model.tokenization import train_tiny_tokenizer
from verbnoun.train import state
from verbnoun.train.config import ConfigError, config_from_dict
from verbnoun.train.data import tokenizer_corpus
from verbnoun.train.parts import lr_part
from verbnoun.train.trainer import resolve_config, train

HEADS = [12, 15, 100]  # the kitchen's class ids fit


def released_base(data, directory, tunable: str | None = None):
    """A tiny checkpoint in the released layout (fp32), with ``mm_tunable_parts`` when given;
    returns its weights by name."""
    tokenizer = train_tiny_tokenizer(tokenizer_corpus(data.records), 400)
    config = tiny_config(vocab_size=len(tokenizer), action_types=tuple(HEADS))
    model = write_tiny_released_checkpoint(
        directory, config, tokenizer=tokenizer, dtype=torch.float32, shards=1
    )
    if tunable is not None:
        path = directory / "config.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "mm_tunable_parts": tunable}))
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def weights(checkpoint) -> dict[str, torch.Tensor]:
    return load_file(str(checkpoint / "model.safetensors"))


def test_frozen_parts_stay_bitwise_and_are_not_in_the_optimizer_state(tmp_path_factory, tmp_path):
    """Starting from a released checkpoint whose config.json says only the projector trains."""
    data = kitchen(tmp_path_factory)
    base = tmp_path / "base"
    before = released_base(data, base, tunable="mm_mlp_adapter")
    run = tmp_path / "run"
    settings = tiny_settings(data, run, steps=3)
    settings["model"] = {"checkpoint": str(base)}
    train(config_from_dict(settings))

    resolved = yaml.safe_load((run / "config.yaml").read_text())
    assert resolved["model"]["tunable_parts"] == ["projector"]
    checkpoint = state.latest_checkpoint(run)
    after = weights(checkpoint)
    projector = [k for k in after if "mm_projector" in k]
    assert len(projector) == 4
    for key, value in after.items():
        if key in projector:
            assert not torch.equal(value, before[key]), key  # it trained
        else:
            assert torch.equal(value, before[key]), key  # bit for bit

    saved = torch.load(checkpoint / "trainer.pt", weights_only=True)
    moments = saved["optimizer"]["state"]
    assert len(moments) == len(projector)  # one entry per trainable tensor, no frozen one
    projector_elements = sum(after[k].numel() for k in projector)
    assert sum(entry["exp_avg"].numel() for entry in moments.values()) == projector_elements
    assert {g["name"] for g in saved["optimizer"]["param_groups"]} == {
        "projector",
        "projector_no_decay",
    }
    assert saved["tunable_parts"] == ["projector"]


def test_each_part_takes_its_own_learning_rate(tmp_path_factory, tmp_path):
    """One AdamW step at full rate moves every weight with a gradient by about its part's lr."""
    data = kitchen(tmp_path_factory)
    base = tmp_path / "base"
    before = released_base(data, base)
    run = tmp_path / "run"
    rates = {"lr": 1e-3, "vision_lr": 1e-4, "projector_lr": 3e-3}
    settings = tiny_settings(data, run, steps=1)
    settings["model"] = {"checkpoint": str(base)}
    settings["optim"] = {**rates, "warmup_steps": 0, "clip_grad": None}
    train(config_from_dict(settings))

    resolved = yaml.safe_load((run / "config.yaml").read_text())
    assert resolved["model"]["tunable_parts"] == ["vision_tower", "projector", "language_model"]
    assert {k: resolved["optim"][k] for k in rates} == rates
    row = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert {k: row[k] for k in rates} == rates

    after = weights(state.latest_checkpoint(run))
    expected = {"vision": 1e-4, "projector": 3e-3, "language": 1e-3}
    moved: dict[str, float] = {}
    for key, value in after.items():
        if key.endswith("post_layernorm.weight") or key.endswith("post_layernorm.bias"):
            assert torch.equal(value, before[key])  # never trained
            continue
        part = lr_part(key)  # the action heads take the language model's
        step = float((value - before[key]).abs().max())
        moved[part] = max(moved.get(part, 0.0), step)
        assert step <= expected[part] * 1.01, key
    for part, lr in expected.items():
        assert moved[part] == pytest.approx(lr, rel=0.01), part  # Adam's first step: lr * sign


@pytest.mark.slow
def test_resume_is_exact_with_a_frozen_tower(tmp_path_factory, tmp_path, monkeypatch):
    data = kitchen(tmp_path_factory)
    settings = {"save_every": 3, "model.tunable_parts": ["projector", "language_model"]}
    straight = tmp_path / "straight"
    train(config_from_dict(tiny_settings(data, straight, **settings)))

    killed = tmp_path / "killed"
    with killed_after(5):
        train(config_from_dict(tiny_settings(data, killed, **settings)))
    assert train(config_from_dict(tiny_settings(data, killed, **settings)))["resumed_from"] == 3

    assert losses(killed) == losses(straight)
    final = weights(straight / "checkpoints" / "step-000006")
    resumed = weights(killed / "checkpoints" / "step-000006")
    assert final.keys() == resumed.keys()
    assert all(torch.equal(final[k], resumed[k]) for k in final)  # bit for bit
    middle = weights(straight / "checkpoints" / "step-000003")
    tower = [k for k in final if "vision_tower" in k]
    assert tower and all(torch.equal(final[k], middle[k]) for k in tower)
    assert not torch.equal(final["model.embed_tokens.weight"], middle["model.embed_tokens.weight"])

    # the same run_dir with other parts: refused in one line, not a traceback
    other = tiny_settings(data, killed, **{**settings, "steps": 8, "model.tunable_parts": None})
    with pytest.raises(VerbnounError, match=r"model\.tunable_parts") as caught:
        train(config_from_dict(other))
    assert "\n" not in str(caught.value)


def test_heads_alone_train_on_a_frozen_model(tmp_path_factory, tmp_path):
    """``action_heads`` trains the action token and the verb / noun / action heads only."""
    data = kitchen(tmp_path_factory)
    base = tmp_path / "base"
    before = released_base(data, base)
    run = tmp_path / "run"
    settings = tiny_settings(data, run, steps=2)
    settings["model"] = {"checkpoint": str(base), "tunable_parts": ["action_heads"]}
    summary = train(config_from_dict(settings))
    assert summary["aux_loss"] > 0
    after = weights(state.latest_checkpoint(run))
    heads = {"model.action_supervision", *(f"{h}_head.weight" for h in ("verb", "noun", "action"))}
    for key, value in after.items():
        assert torch.equal(value, before[key]) != (key in heads), key
    assert load_model(state.latest_checkpoint(run)).config.action_types == tuple(HEADS)


@pytest.mark.parametrize(
    ("value", "parts"),
    [
        ("mm_vision_tower,mm_mlp_adapter,mm_language_model", None),
        ("mm_mlp_adapter, mm_language_model", ["projector", "language_model"]),
        (["projector", "vision_tower"], ["vision_tower", "projector"]),
        (["mm_vision_tower", "action_heads"], ["vision_tower", "action_heads"]),
    ],
)
def test_release_names_and_ours_resolve_alike(value, parts):
    settings = {"model": {"tiny": True, "tunable_parts": value}, "data": {"mixture": "m.yaml"}}
    resolved = resolve_config(config_from_dict(settings))
    assert resolved.model.tunable_parts == (
        parts or ["vision_tower", "projector", "language_model"]
    )
    assert resolved.optim.vision_lr == resolved.optim.projector_lr == resolved.optim.lr


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (["vision_tower", "tower"], "unknown part 'tower'"),
        ("mm_mlp_adapter,mm_lm", "unknown part 'mm_lm'"),
        ([], "nothing would train"),
        ("mm_vision_resampler", "nothing would train"),
        (3, "expected a list"),
    ],
)
def test_bad_parts_are_one_line_errors(value, message):
    settings = {"model": {"tiny": True, "tunable_parts": value}, "data": {"mixture": "m.yaml"}}
    with pytest.raises(ConfigError, match=r"model\.tunable_parts") as caught:
        config_from_dict(settings)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_cli_bad_part_and_bad_checkpoint_parts(tmp_path_factory, tmp_path, capsys):
    data = kitchen(tmp_path_factory)
    path = write_config(tmp_path / "c.yaml", tiny_settings(data, tmp_path / "run"))
    assert main(["train", "--config", str(path), "model.tunable_parts=[projector,lm]"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("verbnoun: error:") and "model.tunable_parts" in err and "'lm'" in err
    assert "\n" not in err

    base = tmp_path / "base"
    released_base(data, base, tunable="mm_mlp_adapter,mm_speech")
    settings = tiny_settings(data, tmp_path / "run2")
    settings["model"] = {"checkpoint": str(base)}
    with pytest.raises(CheckpointError, match="mm_tunable_parts: unknown part 'mm_speech'"):
        train(config_from_dict(settings))


@pytest.mark.parametrize("name", ["tiny-kitchen", "llavaction-0.5b", "llavaction-7b"])
def test_shipped_configs_train_every_part(name):
    from pathlib import Path

    from verbnoun.train.config import load_config

    root = Path(__file__).resolve().parents[2]
    config = resolve_config(load_config(root / "configs" / f"{name}.yaml"))
    assert config.model.tunable_parts == ["vision_tower", "projector", "language_model"]
