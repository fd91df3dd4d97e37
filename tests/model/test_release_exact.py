"""Exact to the release (issue 12): the original's pixels on real frames, released directories
whose tower is found locally or in the Hugging Face cache, ``ask``'s duration past the video's
end, and generation that never picks an embedding row beyond the tokenizer."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
import torch

from verbnoun.errors import CheckpointError
from verbnoun.model.checkpoint import load_model, load_pretrained, write_tiny_released_checkpoint
from verbnoun.model.config import tiny_config
from verbnoun.model.inference import generate, score_options
from verbnoun.model.processor import Processor, preprocess_frames

SAMPLE_VIDEOS = (
    Path(__file__).resolve().parents[3] / "shared/data/sample-videos/epic-kitchens-avt-demo"
)

# ---- pixels: a reference of Pillow's 8-bit bicubic resample, written out here ----------------

PRECISION_BITS = 32 - 8 - 2  # Pillow's fixed-point coefficients for 8-bit images


def bicubic(x: np.ndarray) -> np.ndarray:
    """Pillow's bicubic kernel (a = -0.5)."""
    a = -0.5
    x = np.abs(x)
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = (((x - 5) * x + 8) * x - 4) * a
    return np.where(x < 1, near, np.where(x < 2, far, 0.0))


def coefficients(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """First input index and integer weights of every output pixel (antialiased when shrinking:
    the kernel is stretched by the scale), each row normalised and rounded half away from 0."""
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 2.0 * filterscale
    taps = math.ceil(support) * 2 + 1
    starts = np.zeros(out_size, dtype=np.int64)
    weights = np.zeros((out_size, taps), dtype=np.int64)
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size) - xmin
        w = bicubic((np.arange(xmax) + xmin - center + 0.5) / filterscale)
        w = w / w.sum()
        fixed = w * (1 << PRECISION_BITS)
        starts[xx] = xmin
        weights[xx, :xmax] = np.where(w < 0, np.trunc(fixed - 0.5), np.trunc(fixed + 0.5))
    return starts, weights


def resample_axis(image: np.ndarray, out_size: int, axis: int) -> np.ndarray:
    """One pass along ``axis``: integer accumulation, then shift, round and clip to 0-255."""
    image = np.moveaxis(image, axis, 0).astype(np.int64)
    starts, weights = coefficients(image.shape[0], out_size)
    acc = np.full((out_size, *image.shape[1:]), 1 << (PRECISION_BITS - 1), dtype=np.int64)
    last = image.shape[0] - 1
    for tap in range(weights.shape[1]):
        rows = np.minimum(starts + tap, last)
        acc += image[rows] * weights[:, tap].reshape(-1, *([1] * (image.ndim - 1)))
    out = np.clip(acc >> PRECISION_BITS, 0, 255).astype(np.uint8)
    return np.moveaxis(out, 0, axis)


def reference_pixels(frames: np.ndarray, size: int) -> np.ndarray:
    """Horizontal pass, vertical pass (8 bits between them), then the SigLIP processor's
    rescale (float64, cast to float32) and normalisation (float32), channels first."""
    out = []
    for frame in frames:
        resized = frame
        if frame.shape[1] != size:
            resized = resample_axis(resized, size, axis=1)
        if frame.shape[0] != size:
            resized = resample_axis(resized, size, axis=0)
        scaled = (resized.astype(np.float64) * (1 / 255)).astype(np.float32)
        out.append(((scaled - np.float32(0.5)) / np.float32(0.5)).transpose(2, 0, 1))
    return np.stack(out)


@pytest.fixture(scope="module")
def real_frames() -> np.ndarray:
    from verbnoun.data.video import read_clip

    path = SAMPLE_VIDEOS / "248.mp4"
    if not path.is_file():
        pytest.skip(f"{path} is not here")
    return read_clip(path, 2.0, 12.0, 4).frames  # 768 x 768 EPIC-KITCHENS footage


@pytest.mark.slow
def test_pixels_equal_pillow_bicubic_reference_on_real_frames(real_frames):
    ours = preprocess_frames(real_frames, 384).numpy()
    expected = reference_pixels(real_frames, 384)
    assert ours.shape == (4, 3, 384, 384) and ours.dtype == np.float32
    assert np.abs(ours - expected).max() <= 1e-6
    # the float resize this replaces is measurably different on the same frames
    x = torch.from_numpy(real_frames).permute(0, 3, 1, 2).float()
    old = torch.nn.functional.interpolate(x, size=(384, 384), mode="bicubic", antialias=True)
    old = (old.round().clamp(0, 255) / 255 - 0.5) / 0.5
    assert np.abs(old.numpy() - expected).max() > 0.02


def test_pixels_equal_reference_on_non_square_crops_up_and_down(real_frames):
    crops = [real_frames[:2, 100:612, :], real_frames[:2, 300:500, 250:410]]  # 512x768, 200x160
    for crop in crops:
        crop = np.ascontiguousarray(crop)
        ours = preprocess_frames(crop, 384).numpy()
        assert np.abs(ours - reference_pixels(crop, 384)).max() <= 1e-6


def test_frames_resized_while_decoding_are_the_processors_pixels(real_frames):
    from verbnoun.data.video import read_clip

    resized = read_clip(SAMPLE_VIDEOS / "248.mp4", 2.0, 12.0, 4, size=384).frames
    assert resized.shape == (4, 384, 384, 3)
    from_native = preprocess_frames(real_frames, 384)
    assert torch.equal(preprocess_frames(resized, 384), from_native)


# ---- released directories: the tower from a local directory or the local HF cache ------------


def tower_json(config) -> dict:
    """A SigLIP (full model) config.json for the tiny tower, as the hub stores them."""
    v = config.vision
    return {
        "model_type": "siglip",
        "vision_config": {
            "model_type": "siglip_vision_model",
            "hidden_size": v.hidden_size,
            "intermediate_size": v.intermediate_size,
            "num_hidden_layers": v.num_layers + 1,
            "num_attention_heads": v.num_heads,
            "patch_size": v.patch_size,
            "image_size": v.image_size,
        },
        "text_config": {"hidden_size": 16},
    }


def released_without_shape(directory: Path, tower: str) -> object:
    """A tiny released checkpoint whose config.json names its tower only by ``tower``."""
    config = tiny_config()
    model = write_tiny_released_checkpoint(directory, config)
    data = json.loads((directory / "config.json").read_text())
    data.pop("vision_config")
    data["mm_vision_tower"] = tower
    (directory / "config.json").write_text(json.dumps(data))
    return model


def test_released_directory_with_a_local_tower_directory(tmp_path):
    model = released_without_shape(tmp_path / "ckpt", str(tmp_path / "my-siglip"))
    (tmp_path / "my-siglip").mkdir()
    (tmp_path / "my-siglip" / "config.json").write_text(json.dumps(tower_json(model.config)))
    loaded = load_model(tmp_path / "ckpt")
    assert loaded.config.vision == model.config.vision
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value.to(torch.bfloat16).float()), key


def test_released_directory_with_a_hub_id_from_the_local_cache(tmp_path, monkeypatch):
    model = released_without_shape(tmp_path / "ckpt", "someorg/siglip-tiny-patch8-32")
    with pytest.raises(CheckpointError) as error:
        monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-home"))
        monkeypatch.delenv("HF_HUB_CACHE", raising=False)
        load_model(tmp_path / "ckpt")
    message = str(error.value)
    assert "\n" not in message and "mm_vision_tower 'someorg/siglip-tiny-patch8-32'" in message
    assert "vision_config" in message and "huggingface-cli download" in message

    home = tmp_path / "hf-home"
    repo = home / "hub" / "models--someorg--siglip-tiny-patch8-32"
    snapshot = repo / "snapshots" / "0123456789abcdef0123456789abcdef01234567"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps(tower_json(model.config)))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(snapshot.name)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = load_model(tmp_path / "ckpt")
    assert loaded.config.vision == model.config.vision
    assert asdict(loaded.config.vision)["num_layers"] == model.config.vision.num_layers


def test_a_tower_that_is_not_siglip_is_refused_on_one_line(tmp_path):
    released_without_shape(tmp_path / "ckpt", str(tmp_path / "clip"))
    (tmp_path / "clip").mkdir()
    (tmp_path / "clip" / "config.json").write_text(json.dumps({"model_type": "clip_vision_model"}))
    with pytest.raises(CheckpointError, match=r"clip_vision_model.*only SigLIP"):
        load_model(tmp_path / "ckpt")


# ---- ask: the duration is stop - start, also past the video's end -----------------------------


def test_ask_states_stop_minus_start_past_the_end(tmp_path, tiny_tokenizer, monkeypatch, capsys):
    from verbnoun.cli import main
    from verbnoun.data.synth import write_video

    checkpoint = tmp_path / "ckpt"
    config = tiny_config(vocab_size=len(tiny_tokenizer))
    write_tiny_released_checkpoint(checkpoint, config, tokenizer=tiny_tokenizer)
    frames = (np.full((64, 64, 3), i * 12, dtype=np.uint8) for i in range(20))
    video = write_video(tmp_path / "clip.mp4", frames, 10)  # 2.0 s
    turns: list[str] = []
    encode = Processor.encode_prompt

    def spy(self, turn):
        turns.append(turn)
        return encode(self, turn)

    monkeypatch.setattr(Processor, "encode_prompt", spy)
    args = ["ask", "--checkpoint", str(checkpoint), "--video", str(video), "--frames", "4"]
    code = main([*args, "--start", "0.5", "--stop", "3.75", "--options", "open door,close door"])
    assert code in (0, None)
    assert "The provided video lasts for 3.250 seconds, and 4 frames" in turns[-1]
    code = main([*args, "--start", "0.5", "--options", "open door,close door"])
    assert "The provided video lasts for 1.500 seconds, and 4 frames" in turns[-1]
    capsys.readouterr()


# ---- generation and scoring stay within the tokenizer ----------------------------------------


@pytest.fixture(scope="module")
def oversized(tmp_path_factory, tiny_tokenizer):
    """A released checkpoint with 64 embedding rows more than its tokenizer has tokens, the
    extra rows of the (tied) head made to win every argmax."""
    directory = tmp_path_factory.mktemp("oversized")
    tokens = len(tiny_tokenizer)
    config = tiny_config(vocab_size=tokens + 64)
    torch.manual_seed(0)
    from verbnoun.model.architecture import LlavactionForCausalLM

    model = LlavactionForCausalLM(config)
    with torch.no_grad():
        model.model.embed_tokens.weight[tokens:] *= 50.0
    write_tiny_released_checkpoint(directory, model=model, tokenizer=tiny_tokenizer)
    return directory, tokens


def test_generation_never_picks_an_id_beyond_the_tokenizer(oversized):
    directory, tokens = oversized
    model, processor = load_pretrained(directory, device="cpu")
    assert processor.vocab_limit == tokens < model.config.text.vocab_size
    turn = "<image>\nWhat action are you doing?"
    ids = [processor.encode_prompt(turn).input_ids]
    side = model.config.vision.image_size
    video = [torch.zeros(2, 3, side, side)]
    unmasked = generate(model, ids, video, eos_ids=processor.eos_ids, max_new_tokens=8)
    assert any(i >= tokens for i in unmasked[0])  # the rows beyond would be picked unmasked
    (out,) = generate(
        model,
        ids,
        video,
        eos_ids=processor.eos_ids,
        max_new_tokens=8,
        vocab_limit=processor.vocab_limit,
    )
    assert out and all(0 <= i < tokens for i in out)
    processor.decode(out)  # every id decodes
    (choice,) = score_options(model, processor, ids, video, [["open door", "cut pan"]], mode="text")
    assert all(math.isfinite(s) and s <= 0 for s in choice.scores)


def test_end_tokens_come_from_the_checkpoint(oversized, tmp_path, tiny_tokenizer):
    directory, _ = oversized
    _, processor = load_pretrained(directory, device="cpu")
    im_end = tiny_tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert processor.eos_ids == {im_end}  # tiny config names none: the template's end
    config = tiny_config(vocab_size=len(tiny_tokenizer))
    config = replace(config, text=replace(config.text, eos_token_id=im_end))
    write_tiny_released_checkpoint(tmp_path / "c", config, tokenizer=tiny_tokenizer)
    (tmp_path / "c" / "generation_config.json").write_text(json.dumps({"eos_token_id": [3, 5]}))
    _, processor = load_pretrained(tmp_path / "c", device="cpu")
    assert processor.eos_ids == {3, 5}  # generation_config.json wins, as in transformers
    (tmp_path / "c" / "generation_config.json").write_text(json.dumps({"eos_token_id": 10**6}))
    _, processor = load_pretrained(tmp_path / "c", device="cpu")
    assert processor.eos_ids == {10**6, im_end}  # an end no token can reach: <|im_end|> too
