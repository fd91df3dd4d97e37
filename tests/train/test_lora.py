"""LoRA training (``lora`` in the training config): steps move only the adapters and the parts the
config trains in full, the adapter folder holds what it says, resume after a kill is exact, DDP
(two gloo processes) matches one process, gradient checkpointing changes nothing, the merge
round trip keeps every letter and the logits, and bad input is one line: an unknown target
module, a rank of 0, an adapter made for another base."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file
from trainer_setup import killed_after, kitchen, losses, tiny_settings, write_config

from verbnoun.cli import main
from verbnoun.errors import VerbnounError
from verbnoun.model.checkpoint import load_model, write_tiny_released_checkpoint
from verbnoun.model.config import tiny_config
from verbnoun.model.tokenization import train_tiny_tokenizer
from verbnoun.train import lora, state
from verbnoun.train.config import ConfigError, config_from_dict
from verbnoun.train.data import tokenizer_corpus
from verbnoun.train.trainer import train

HEADS = (12, 15, 100)  # the test kitchen's class ids fit
SMALL = {"rank": 4, "alpha": 8.0, "dropout": 0.0}
HEAD_KEYS = {"model.action_supervision", "verb_head.weight", "noun_head.weight",
             "action_head.weight", "model.image_newline"}  # fmt: skip


def released_base(data, directory, *, seed: int = 0) -> dict[str, torch.Tensor]:
    """A tiny checkpoint in the released layout (fp32, two shards); its weights by name."""
    tokenizer = train_tiny_tokenizer(tokenizer_corpus(data.records), 400)
    config = tiny_config(vocab_size=len(tokenizer), action_types=HEADS)
    model = write_tiny_released_checkpoint(
        directory, config, tokenizer=tokenizer, dtype=torch.float32, shards=2, seed=seed
    )
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    data = kitchen(tmp_path_factory)
    directory = tmp_path_factory.mktemp("lora") / "base"
    return directory, released_base(data, directory)


def lora_settings(data, run, base_dir, **overrides) -> dict:
    settings = tiny_settings(data, run, **overrides)
    settings["model"] = {"checkpoint": str(base_dir), "tunable_parts": ["projector", "language_model"],
                         **settings.get("model", {})}  # fmt: skip
    settings["model"].pop("tiny", None)
    settings["model"].pop("vocab_size", None)
    settings.setdefault("lora", dict(SMALL))
    return settings


def adapter_of(run, step: int):
    return run / "checkpoints" / state.step_name(step) / lora.ADAPTER_DIR


def test_steps_move_only_the_adapters_and_the_parts_trained_in_full(
    tmp_path_factory, tmp_path, base
):
    data = kitchen(tmp_path_factory)
    base_dir, before = base
    run = tmp_path / "run"
    train(config_from_dict(lora_settings(data, run, base_dir, steps=3)))
    folder = adapter_of(run, 3)
    assert sorted(p.name for p in folder.iterdir()) == [
        "adapter.json", "adapter_config.json", "adapter_model.safetensors",
        "parameters.safetensors",
    ]  # fmt: skip
    assert not (folder.parent / "model.safetensors").exists()  # no full copy of the model
    info = json.loads((folder / "adapter.json").read_text())
    assert info["base"] == lora.base_identity(base_dir)
    assert info["tunable_parts"] == ["projector", "language_model"]

    adapters = load_file(str(folder / "adapter_model.safetensors"))
    # every linear layer of the LM's two decoder layers, A and B, under peft's own key names
    assert len(adapters) == 2 * 7 * 2
    assert all(k.startswith("base_model.model.model.layers.") for k in adapters)
    moved_b = [k for k, v in adapters.items() if "lora_B" in k and v.abs().max() > 0]
    assert len(moved_b) == 14  # B starts at zero: every adapter trained

    full = load_file(str(folder / "parameters.safetensors"))
    projector = {k for k in before if k.startswith("model.mm_projector.")}
    assert set(full) == projector | HEAD_KEYS  # the LM's own weights and the tower: not here
    for key in full:
        assert not torch.equal(full[key], before[key]), key

    # the optimizer state holds exactly the trained tensors
    trainer_state = torch.load(folder.parent / "trainer.pt", weights_only=True)
    assert len(trainer_state["optimizer"]["state"]) == len(adapters) + len(full)

    # everything else is the base, bit for bit: the unmerged model's frozen weights
    model = lora.load_adapted(base_dir, run)
    params = {lora._released_name(k): v for k, v in model.named_parameters()}
    for key, value in before.items():
        if key in full or key not in params:
            continue
        assert torch.equal(params[key], value), key
    counts = lora.trainable_counts(model)
    assert counts["lora"] == sum(v.numel() for v in adapters.values())


def test_vision_adapters_and_a_tower_trained_in_full(tmp_path_factory, tmp_path, base):
    data = kitchen(tmp_path_factory)
    base_dir, before = base
    parts = ["vision_tower", "projector", "language_model"]
    with_lora = tmp_path / "vision-lora"
    settings = lora_settings(data, with_lora, base_dir, steps=2, **{"model.tunable_parts": parts})
    settings["lora"] = {**SMALL, "vision": True, "target_modules": ["q_proj", "v_proj", "fc1"]}
    train(config_from_dict(settings))
    adapters = load_file(str(adapter_of(with_lora, 2) / "adapter_model.safetensors"))
    tower = [k for k in adapters if "vision_tower" in k]
    lm = [k for k in adapters if "model.layers." in k]
    assert len(tower) == 2 * 3 * 2 and len(lm) == 2 * 2 * 2  # fc1 exists in the tower only
    full = load_file(str(adapter_of(with_lora, 2) / "parameters.safetensors"))
    assert not any("vision_tower" in k for k in full)

    full_tower = tmp_path / "full-tower"
    settings = lora_settings(data, full_tower, base_dir, steps=2, **{"model.tunable_parts": parts})
    train(config_from_dict(settings))
    full = load_file(str(adapter_of(full_tower, 2) / "parameters.safetensors"))
    tower = {k for k in full if "vision_tower" in k}
    assert tower and not any("post_layernorm" in k for k in tower)  # never trained
    assert all(not torch.equal(full[k], before[k]) for k in tower)


@pytest.mark.slow
def test_resume_after_a_kill_is_exact(tmp_path_factory, tmp_path, base):
    data = kitchen(tmp_path_factory)
    base_dir, _ = base
    settings = {"save_every": 3, "lora": {**SMALL, "dropout": 0.1}}  # dropout: its RNG resumes
    straight = tmp_path / "straight"
    train(config_from_dict(lora_settings(data, straight, base_dir, **settings)))
    killed = tmp_path / "killed"
    with killed_after(5):
        train(config_from_dict(lora_settings(data, killed, base_dir, **settings)))
    resumed = train(config_from_dict(lora_settings(data, killed, base_dir, **settings)))
    assert resumed["resumed_from"] == 3
    assert losses(killed) == losses(straight)
    for name in ("adapter_model.safetensors", "parameters.safetensors"):
        a = load_file(str(adapter_of(straight, 6) / name))
        b = load_file(str(adapter_of(killed, 6) / name))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name

    # resuming with other LoRA settings, or on another base, is refused in one line
    other = lora_settings(data, killed, base_dir, **{**settings, "steps": 8})
    other["lora"] = {**SMALL, "rank": 2}
    with pytest.raises(VerbnounError, match=r"lora: .*was trained with") as caught:
        train(config_from_dict(other))
    assert "\n" not in str(caught.value)
    without = lora_settings(data, killed, base_dir, **{**settings, "steps": 8})
    without["lora"] = None
    with pytest.raises(VerbnounError, match="holds LoRA adapters"):
        train(config_from_dict(without))
    full_run = tmp_path / "full-run"
    plain = lora_settings(data, full_run, base_dir, steps=1)
    plain["lora"] = None
    train(config_from_dict(plain))
    with pytest.raises(VerbnounError, match="holds a whole model, not adapters"):
        train(config_from_dict(lora_settings(data, full_run, base_dir, steps=2)))
    second = tmp_path / "second-base"
    released_base(data, second, seed=1)
    moved = lora_settings(data, killed, second, **{**settings, "steps": 8})
    with pytest.raises(lora.AdapterError, match=f"made for the base {base_dir.resolve()}"):
        train(config_from_dict(moved))


@pytest.mark.slow
def test_gradient_checkpointing_changes_nothing(tmp_path_factory, tmp_path, base):
    data = kitchen(tmp_path_factory)
    base_dir, _ = base
    plain, checkpointed = tmp_path / "plain", tmp_path / "checkpointed"
    train(config_from_dict(lora_settings(data, plain, base_dir, steps=3)))
    settings = lora_settings(data, checkpointed, base_dir, steps=3)
    settings["model"]["gradient_checkpointing"] = True
    train(config_from_dict(settings))
    expected, got = losses(plain), losses(checkpointed)
    assert sorted(got) == [1, 2, 3]
    for step, loss in expected.items():
        assert got[step] == pytest.approx(loss, rel=1e-5), step


@pytest.mark.slow
def test_two_gloo_processes_match_one_at_the_same_global_batch(tmp_path_factory, tmp_path, base):
    data = kitchen(tmp_path_factory)
    base_dir, _ = base
    steps = {"steps": 4, "batch_size": 2}
    one = tmp_path / "one"
    train(config_from_dict(lora_settings(data, one, base_dir, grad_accum=2, **steps)))
    two = tmp_path / "two"
    config = write_config(
        tmp_path / "two.yaml", lora_settings(data, two, base_dir, grad_accum=1, **steps)
    )
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
               "2", "-m", "verbnoun.cli", "train", "--config", str(config)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    expected, got = losses(one), losses(two)
    assert sorted(got) == [1, 2, 3, 4]
    for step, loss in expected.items():
        assert got[step] == pytest.approx(loss, rel=1e-4, abs=1e-5), step
    a = load_file(str(adapter_of(one, 4) / "adapter_model.safetensors"))
    b = load_file(str(adapter_of(two, 4) / "adapter_model.safetensors"))
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_merge_round_trip(tmp_path_factory, tmp_path, base):
    """The merged export loads as a release and gives the unmerged adapter's logits."""
    data = kitchen(tmp_path_factory)
    base_dir, before = base
    run = tmp_path / "run"
    train(config_from_dict(lora_settings(data, run, base_dir, steps=3, **{"optim.lr": 5e-2})))
    out = tmp_path / "merged"
    assert main(["export", "merged", "--checkpoint", str(base_dir), "--adapter", str(run),
                 "--out", str(out), "--shards", "2"]) == 0  # fmt: skip
    released = json.loads((out / "config.json").read_text())
    assert "mm_vision_tower" in released and "format" not in released  # the release's keys
    assert (out / "model.safetensors.index.json").is_file()
    assert (out / "tokenizer.json").is_file()
    merged = load_model(out)
    unmerged = lora.load_adapted(base_dir, run)
    weight = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(merged.state_dict()[weight], before[weight])  # the merge did something

    torch.manual_seed(0)
    ids = [torch.randint(0, 300, (12,)), torch.randint(0, 300, (9,))]
    ids[0][4] = -200  # the <image> placeholder
    videos = [torch.randn(2, 3, 32, 32), None]
    with torch.no_grad():
        a = merged(ids, videos, padding_side="left")
        b = unmerged(ids, videos, padding_side="left")
    assert (a.logits - b.logits).abs().max() <= 1e-4
    assert (a.verb_logits - b.verb_logits).abs().max() <= 1e-4


# ---- bad input ----------------------------------------------------------------------------------


def _refused(capsys, argv, *words: str) -> str:
    assert main([str(a) for a in argv]) == 1
    err = capsys.readouterr().err.strip()
    lines = [line for line in err.splitlines() if line.startswith("verbnoun: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def test_unknown_target_module_names_it_and_lists_real_ones(
    tmp_path_factory, tmp_path, base, capsys
):
    data = kitchen(tmp_path_factory)
    base_dir, _ = base
    settings = lora_settings(data, tmp_path / "run", base_dir)
    settings["lora"] = {**SMALL, "target_modules": ["q_proj", "qkv_proj"]}
    config = write_config(tmp_path / "c.yaml", settings)
    _refused(capsys, ["train", "--config", config], "lora.target_modules", "'qkv_proj'",
             "o_proj", "gate_proj")  # fmt: skip
    # out_proj is a tower layer's name: without lora.vision it names nothing adapted
    _refused(capsys, ["train", "--config", config, "lora.target_modules=[out_proj]"],
             "'out_proj'", "language model")  # fmt: skip


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("lora.rank=0", "lora.rank: must be at least 1, got 0"),
        ("lora.alpha=0", "lora.alpha: must be positive"),
        ("lora.dropout=1.0", "lora.dropout: must be below 1"),
        ("lora.ranks=4", "unknown config key 'lora.ranks'"),
        ("model.tunable_parts=[projector]", "does not train it"),
    ],
)
def test_bad_lora_settings_are_one_line_errors(
    tmp_path_factory, tmp_path, base, capsys, override, message
):
    data = kitchen(tmp_path_factory)
    base_dir, _ = base
    config = write_config(tmp_path / "c.yaml", lora_settings(data, tmp_path / "run", base_dir))
    _refused(capsys, ["train", "--config", config, override], message)


def test_lora_needs_a_base_checkpoint_and_no_deepspeed():
    data = {"data": {"mixture": "m.yaml"}, "lora": {}}
    with pytest.raises(ConfigError, match=r"lora: needs model\.checkpoint"):
        config_from_dict({**data, "model": {"tiny": True}})
    deepspeed = {**data, "model": {"checkpoint": "b"}, "distributed": {"deepspeed": "z.json"}}
    with pytest.raises(ConfigError, match=r"not with distributed\.deepspeed"):
        config_from_dict(deepspeed)


def test_an_adapter_made_for_another_base_is_refused_naming_it(
    tmp_path_factory, tmp_path, base, capsys
):
    data = kitchen(tmp_path_factory)
    base_dir, _ = base
    run = tmp_path / "run"
    train(config_from_dict(lora_settings(data, run, base_dir, steps=1)))
    other = tmp_path / "other"
    released_base(data, other, seed=1)  # same shape, other weights
    out = tmp_path / "merged"
    line = _refused(capsys, ["export", "merged", "--checkpoint", other, "--adapter", run,
                             "--out", out], f"made for the base {base_dir.resolve()}",
                    str(other))  # fmt: skip
    assert "sha256:" in line and not out.exists()
    # same shapes and config, one tensor changed: still another base
    changed = tmp_path / "changed"
    changed.mkdir()
    for path in base_dir.iterdir():
        (changed / path.name).write_bytes(path.read_bytes())
    shard = sorted(changed.glob("model-*.safetensors"))[0]
    tensors = load_file(str(shard))
    key = sorted(tensors)[0]
    tensors[key] = tensors[key] + 1.0
    from safetensors.torch import save_file

    save_file(tensors, str(shard), metadata={"format": "pt"})
    _refused(capsys, ["export", "merged", "--checkpoint", changed, "--adapter", run, "--out", out],
             "made for the base")  # fmt: skip
    # not an adapter at all
    _refused(capsys, ["export", "merged", "--checkpoint", base_dir, "--adapter", base_dir,
                      "--out", out], "not a LoRA adapter")  # fmt: skip


def test_the_shipped_lora_config_loads():
    from verbnoun.train.config import load_config

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    config = load_config(os.path.join(root, "configs", "lora-0.5b.yaml"))
    assert config.lora.rank == 16 and config.model.gradient_checkpointing
    assert config.distributed.deepspeed is None
