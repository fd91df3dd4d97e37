"""Damaged checkpoints, specialist folders, training configs and SFT files (see conftest.py)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from damagetools import TRAIN, cli, copy_kitchen, header_only, refused, set_line

INDEX = "model.safetensors.index.json"
SHARD = "model-00001-of-00002.safetensors"


def _json_file(name: str, change: Callable[[dict], object]) -> Callable[[Path], None]:
    def damage(directory: Path) -> None:
        data = json.loads((directory / name).read_text())
        result = change(data)
        (directory / name).write_text(json.dumps(data if result is None else result))

    return damage


def _first_key(directory: Path) -> str:
    return next(iter(json.loads((directory / INDEX).read_text())["weight_map"]))


def _shard_header(directory: Path, change: Callable[[dict], None]) -> None:
    import struct

    path = directory / SHARD
    data = path.read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + size])
    change(header)
    raw = json.dumps(header, separators=(",", ":")).encode().ljust(size)
    assert len(raw) == size
    path.write_bytes(data[:8] + raw + data[8 + size :])


CHECKPOINT_DAMAGE = [
    (
        "config not JSON",
        lambda d: (d / "config.json").write_text('{"hidden_size": '),
        "config.json",
        r"config\.json:1: not valid JSON",
    ),
    (
        "config a list",
        lambda d: (d / "config.json").write_text("[]"),
        "config.json",
        r"expected a JSON object",
    ),
    (
        "config missing key",
        _json_file(
            "config.json",
            lambda c: [c.pop(k, None) for k in ("mm_vision_tower", "vision_config")] and None,
        ),
        "config.json",
        r"mm_vision_tower",
    ),
    (
        "config wrong value type",
        _json_file("config.json", lambda c: c.__setitem__("num_hidden_layers", "two")),
        "config.json",
        r"\[num_hidden_layers\]: expected a positive integer",
    ),
    (
        "config negative size",
        _json_file("config.json", lambda c: c.__setitem__("hidden_size", -64)),
        "config.json",
        r"\[hidden_size\]: expected a positive integer",
    ),
    (
        "config zero key/value heads",
        _json_file("config.json", lambda c: c.__setitem__("num_key_value_heads", 0)),
        "config.json",
        r"\[num_key_value_heads\]: expected a positive integer, got 0",
    ),
    (
        "config heads that do not divide the width",
        _json_file("config.json", lambda c: c.__setitem__("num_attention_heads", 7)),
        "config.json",
        r"\[num_attention_heads\]: 7 heads do not divide",
    ),
    (
        "config non-UTF-8",
        lambda d: (d / "config.json").write_bytes(b'{"a": "\xff"}'),
        "config.json",
        r":1: not UTF-8",
    ),
    (
        "index not JSON",
        lambda d: (d / INDEX).write_text("weight_map = {}"),
        INDEX,
        r":1: not valid JSON",
    ),
    (
        "index missing weight_map",
        _json_file(INDEX, lambda i: i.pop("weight_map") and None),
        INDEX,
        r"\[weight_map\]: missing key",
    ),
    (
        "index weight_map a list",
        _json_file(INDEX, lambda i: i.__setitem__("weight_map", [])),
        INDEX,
        r"\[weight_map\]: expected",
    ),
    (
        "index shard leaving the folder",
        _json_file(
            INDEX,
            lambda i: i["weight_map"].__setitem__(next(iter(i["weight_map"])), "../x.safetensors"),
        ),
        INDEX,
        r"\[weight_map\..*not a file name",
    ),
    ("missing shard", lambda d: (d / SHARD).unlink(), INDEX, r"missing shard.*" + SHARD),
    ("zero-byte shard", lambda d: (d / SHARD).write_bytes(b""), SHARD, r"truncated"),
    (
        "truncated shard",
        lambda d: (d / SHARD).write_bytes((d / SHARD).read_bytes()[:-100]),
        SHARD,
        r"\[.*\]: tensor ends .*truncated",
    ),
    (
        "garbage header",
        lambda d: (d / SHARD).write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}......."),
        SHARD,
        r"unreadable safetensors header",
    ),
    (
        "implausible header size",
        lambda d: (d / SHARD).write_bytes(b"\xff" * 64),
        SHARD,
        r"implausible",
    ),
    (
        "header entry without offsets",
        lambda d: _shard_header(
            d, lambda h: h[next(k for k in h if k != "__metadata__")].pop("data_offsets")
        ),
        SHARD,
        r"\[.*\]: bad data_offsets",
    ),
    (
        "folder instead of config",
        lambda d: ((d / "config.json").unlink(), (d / "config.json").mkdir()),
        "ckpt",
        r"no config\.json",
    ),
    (
        "tokenizer not JSON",
        lambda d: (d / "tokenizer.json").write_text('{"version": "1.0", "model": '),
        "tokenizer.json",
        r":1: not valid JSON",
    ),
    (
        "tokenizer config a list",
        lambda d: (d / "tokenizer_config.json").write_text("[]"),
        "tokenizer_config.json",
        r"expected a JSON object",
    ),
    (
        "tokenizer with a byte-order mark",
        lambda d: (d / "tokenizer.json").write_bytes(
            b"\xef\xbb\xbf" + (d / "tokenizer.json").read_bytes()
        ),
        "tokenizer.json",
        r"byte-order mark",
    ),
    (
        "tokenizer JSON the tokenizer library refuses",
        lambda d: (d / "tokenizer.json").write_text('{"version": "1.0", "model": {"type": "BPE"}}'),
        "tokenizer.json",
        r"cannot load the tokenizer",
    ),
]


@pytest.mark.parametrize(
    ("damage", "named", "place"), [(d, n, p) for _, d, n, p in CHECKPOINT_DAMAGE],
    ids=[n for n, _, _, _ in CHECKPOINT_DAMAGE],
)  # fmt: skip
@pytest.mark.slow
def test_checkpoint_in_ask(world, checkpoint, tmp_path, capsys, damage, named, place):
    directory = tmp_path / "ckpt"
    shutil.copytree(checkpoint, directory)
    damage(directory)
    refused(capsys, ["ask", "--checkpoint", directory, "--video", world.video, "--options",
                     "open door,close door", "--device", "cpu"],
            file=directory / named if named != "ckpt" else directory, place=place)  # fmt: skip


EXPORT_INFO_FILE = "llavaction_export.json"  # what marks an earlier export (export_hf)


def test_undamaged_checkpoint_answers(world, checkpoint, capsys):
    """The fixture works, so the refusals above come from the damage."""
    assert cli("ask", "--checkpoint", checkpoint, "--video", world.video, "--options",
               "open door,close door", "--device", "cpu") == 0  # fmt: skip
    assert "door" in capsys.readouterr().out


def test_checkpoint_in_hf_export_keeps_the_earlier_export(checkpoint, tmp_path, capsys):
    directory = tmp_path / "ckpt"
    shutil.copytree(checkpoint, directory)
    (directory / "config.json").write_text('{"model_type": "llava_qwen",')
    out = tmp_path / "hf"
    out.mkdir()
    (out / EXPORT_INFO_FILE).write_text('{"format": "llavaction-export-hf"}\n')
    (out / "config.json").write_text("{}\n")
    refused(capsys, ["export", "hf", "--checkpoint", directory, "--out", out],
            file=directory / "config.json", place=r":1: not valid JSON", keep=(out,))  # fmt: skip


def test_hf_export_refuses_a_folder_that_is_not_an_export(checkpoint, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my notes\n")
    refused(capsys, ["export", "hf", "--checkpoint", checkpoint, "--out", out], file=out,
            place=rf"not empty and holds no {EXPORT_INFO_FILE}", keep=(out,))  # fmt: skip


def test_specialist_model_folder(world, tmp_path, capsys):
    model = tmp_path / "specialist"
    model.mkdir()
    (model / "specialist.json").write_text('{"settings": {}, "num_verbs": 3')
    out = tmp_path / "pred.json"
    out.write_text('{"an": "earlier prediction file"}\n')
    refused(capsys, ["specialist", "predict", "--model", model, "--annotations",
                     world.kitchen / "annotations", "--videos", world.videos, "--out", out],
            file=model / "specialist.json", place=r":1: not valid JSON", keep=(out,))  # fmt: skip


def test_specialist_model_folder_missing_key(world, tmp_path, capsys):
    model = tmp_path / "specialist"
    model.mkdir()
    (model / "specialist.json").write_text('{"num_verbs": 3, "num_nouns": 4, "actions": []}')
    refused(capsys, ["specialist", "predict", "--model", model, "--annotations",
                     world.kitchen / "annotations", "--videos", world.videos, "--out",
                     tmp_path / "p.json"], file=model / "specialist.json", place="settings")  # fmt: skip


# ----------------------------------------------------------------------------- training configs


TRAIN_DAMAGE = [
    ("YAML syntax error", "model: {tiny: true\n", r":\d+: not valid YAML"),
    ("YAML tabs", "model:\n\ttiny: true\n", r":2: not valid YAML.*tabs"),
    ("top level a list", "- steps: 3\n", r"expected a mapping"),
    ("unknown key", "model: {tiny: true}\nstepz: 3\n", r"unknown config key 'stepz'"),
    (
        "duplicate key",
        "model: {tiny: true}\nsteps: 3\nsteps: 4\n",
        r":3: not valid YAML: duplicate key 'steps'",
    ),
    ("wrong value type", "model: {tiny: true}\nsteps: many\n", r"steps: expected int"),
    (
        "NaN learning rate",
        "model: {tiny: true}\ndata: {mixture: m.yaml}\noptim: {lr: .nan}\n",
        r"optim\.lr",
    ),
    ("negative steps", "model: {tiny: true}\ndata: {mixture: m.yaml}\nsteps: -4\n", r"steps"),
    ("non-UTF-8 byte", b"model: {tiny: true}\n# caf\xe9\n", r":2: not UTF-8"),
]


@pytest.mark.parametrize(
    ("text", "place"), [(t, p) for _, t, p in TRAIN_DAMAGE], ids=[n for n, _, _ in TRAIN_DAMAGE]
)
def test_training_config(tmp_path, capsys, text, place):
    config = tmp_path / "train.yaml"
    config.write_bytes(text if isinstance(text, bytes) else text.encode())
    refused(capsys, ["train", "--config", config], file=config, place=place)


def test_training_config_missing(tmp_path, capsys):
    refused(capsys, ["train", "--config", tmp_path / "nope.yaml"], file="nope.yaml",
            place="not found")  # fmt: skip


# ----------------------------------------------------------------------------- SFT files


def test_sft_build_keeps_the_earlier_folder(world, tmp_path, capsys):
    kitchen = copy_kitchen(world, tmp_path)
    sft = tmp_path / "sft"
    assert cli("sft", "build", "--annotations", kitchen / "annotations", "--out", sft) == 0
    target = kitchen / "annotations" / TRAIN
    set_line(target, 6, lambda x: x.replace(b"_", b"\x81", 1))
    refused(capsys, ["sft", "build", "--annotations", kitchen / "annotations", "--out", sft],
            file=target, place=r":6: not UTF-8", keep=(sft,))  # fmt: skip


def test_sft_build_empty_split(world, tmp_path, capsys):
    kitchen = copy_kitchen(world, tmp_path)
    target = kitchen / "annotations" / TRAIN
    header_only(target)
    sft = tmp_path / "sft"
    assert cli("sft", "build", "--annotations", world.kitchen / "annotations", "--out", sft) == 0
    refused(capsys, ["sft", "build", "--annotations", kitchen / "annotations", "--out", sft],
            file=target, place=r"no segments in", keep=(sft,))  # fmt: skip


def test_sft_build_damaged_mixture(world, tmp_path, capsys):
    sft = tmp_path / "sft"
    assert cli("sft", "build", "--annotations", world.kitchen / "annotations", "--out", sft) == 0
    (sft / "mixture.yaml").write_text("datasets:\n  - json_path: [mqa.jsonl\n")
    refused(capsys, ["sft", "build", "--annotations", world.kitchen / "annotations", "--out",
                     sft], file=sft / "mixture.yaml", place=r":\d+: not valid YAML",
            keep=(sft,))  # fmt: skip


def _mixture_train(tmp_path: Path, records: bytes, name: str = "mqa.jsonl") -> Path:
    data = tmp_path / "sft"
    data.mkdir()
    (data / name).write_bytes(records)
    (data / "mixture.yaml").write_text(f"datasets:\n  - json_path: {name}\n")
    config = tmp_path / "train.yaml"
    config.write_text(f"run_dir: {tmp_path / 'run'}\nsteps: 1\nmodel: {{tiny: true}}\n"
                      f"data: {{mixture: {data / 'mixture.yaml'}, videos: {tmp_path}}}\n")  # fmt: skip
    return data


@pytest.mark.parametrize(
    ("records", "place"),
    [
        (b'{"id": "a", "conversations": []}\n{"id": "b", "conv', r":2: last line is truncated"),
        (b'{"id": "a", "conversations": []}\n{"id": "b"}\n', r":2: record without 'conversations'"),
        (b"", r"no records"),
    ],
    ids=["truncated record", "record without conversations", "empty file"],
)
def test_sft_records_in_train(tmp_path, capsys, records, place):
    data = _mixture_train(tmp_path, records)
    refused(capsys, ["train", "--config", tmp_path / "train.yaml"], file=data / "mqa.jsonl",
            place=place)  # fmt: skip


def test_specialist_train_empty_split_keeps_the_earlier_specialist(world, tmp_path, capsys):
    kitchen = copy_kitchen(world, tmp_path)
    header_only(kitchen / "annotations" / TRAIN)
    out = tmp_path / "specialist"
    out.mkdir()
    (out / "specialist.json").write_text('{"an": "earlier specialist"}\n')
    refused(capsys, ["specialist", "train", "--annotations", kitchen / "annotations", "--videos",
                     world.videos, "--out", out], file=kitchen / "annotations" / TRAIN,
            place="no segments in", keep=(out,))  # fmt: skip
