"""``verbnoun export hf``: the exported LlavaOnevision model, loaded with transformers'
``from_pretrained`` from the local folder, gives our logits and our greedy tokens."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, LlavaOnevisionForConditionalGeneration

from verbnoun.bench import prompts
from verbnoun.cli import main
from verbnoun.errors import CheckpointError
from verbnoun.model.checkpoint import load_model, save_checkpoint, write_tiny_released_checkpoint
from verbnoun.model.config import tiny_config
from verbnoun.model.export_hf import action_token_names, export_hf
from verbnoun.model.inference import generate
from verbnoun.model.processor import Processor, preprocess_frames

FRAMES = 3
VOCAB = 640  # the tiny tokenizer has 600 tokens: 40 free rows, as Qwen2 pads its vocabulary
TURN = prompts.user_turn(
    prompts.mqa_task(["open door", "close door", "take cup"]), duration=2.5, n_frames=FRAMES
)


def _config(action_tokens: int = 1, **changes):
    config = tiny_config(
        vocab_size=VOCAB, newline_position="one_token", action_tokens=action_tokens
    )
    # a rotary base other than Qwen2's default, so that a config that loses it is caught
    config = replace(config, text=replace(config.text, rope_theta=5000.0))
    return replace(config, **changes) if changes else config


def _checkpoint(path, tokenizer, config, *, layout: str = "released"):
    if layout == "released":
        write_tiny_released_checkpoint(path, config, tokenizer=tokenizer)
    else:
        torch.manual_seed(0)
        from verbnoun.model.architecture import LlavactionForCausalLM

        save_checkpoint(LlavactionForCausalLM(config), path, tokenizer)
    return path


def _frames() -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, size=(FRAMES, 32, 32, 3), dtype=np.uint8)


def _hf_inputs(out, config):
    """Input ids as the exported processor would give them: the chat template, then the one
    ``<video>`` expanded to the visual token count that processor_config.json implies."""
    tokenizer = AutoTokenizer.from_pretrained(str(out), local_files_only=True)
    task = TURN.removeprefix(prompts.IMAGE_TOKEN + "\n")
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": task}]}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    settings = json.loads((out / "processor_config.json").read_text())
    pooled = -(-int(settings["num_image_tokens"] ** 0.5) // 2)
    count = FRAMES * pooled * pooled + 1
    ids = tokenizer(text, add_special_tokens=False).input_ids
    video = tokenizer.convert_tokens_to_ids(settings["video_token"])
    assert ids.count(video) == 1
    at = ids.index(video)
    return text, torch.tensor([ids[:at] + [video] * count + ids[at + 1 :]])


@pytest.mark.parametrize(
    ("action_tokens", "layout"), [(0, "ours"), (1, "released"), (3, "released")]
)
def test_exported_logits_equal_ours(tmp_path, tiny_tokenizer, action_tokens, layout):
    config = _config(action_tokens)
    checkpoint = _checkpoint(tmp_path / "ckpt", tiny_tokenizer, config, layout=layout)
    out = tmp_path / "hf"
    shard_bytes = 100_000 if action_tokens == 3 else 10**9  # sharded with an index, or one file
    summary = export_hf(checkpoint, out, shard_bytes=shard_bytes)
    assert summary.untied == (action_tokens > 0)
    assert (len(summary.files) > 1) == (action_tokens == 3)
    names = action_token_names(action_tokens) if action_tokens else []
    assert list(summary.token_ids) == ["<image>", "<video>", *names]

    hf, loading = LlavaOnevisionForConditionalGeneration.from_pretrained(
        str(out), dtype=torch.float32, output_loading_info=True
    )
    assert not loading["missing_keys"] and not loading["unexpected_keys"]
    hf.eval()
    ours = load_model(checkpoint, dtype=torch.float32)
    text, hf_ids = _hf_inputs(out, config)
    # the template writes our prompt, with <video> and the action token(s) for <image>
    assert text == prompts.chat_prompt(TURN).replace("<image>", "<video>" + "".join(names))
    pixels = preprocess_frames(_frames(), config.vision.image_size)
    our_ids = Processor(tiny_tokenizer, config.vision.image_size).encode_prompt(TURN).input_ids
    with torch.no_grad():
        our_logits = ours([our_ids], [pixels]).logits
        hf_logits = hf(input_ids=hf_ids, pixel_values_videos=pixels[None]).logits
    assert our_logits.shape == hf_logits.shape
    assert hf_logits.shape[1] == len(our_ids) - 1 + config.visual_tokens(FRAMES) + action_tokens
    torch.testing.assert_close(hf_logits, our_logits, atol=1e-5, rtol=0)
    if action_tokens:  # the action token's embedding row is what makes them equal
        keep = torch.isin(hf_ids, torch.tensor(list(summary.token_ids.values())[2:]))
        with torch.no_grad():
            without = hf(input_ids=hf_ids[~keep][None], pixel_values_videos=pixels[None]).logits
        assert (without[0, -1] - our_logits[0, -1]).abs().max() > 1e-3


def test_greedy_generation_gives_our_tokens(tmp_path, tiny_tokenizer):
    config = _config(1)
    checkpoint = _checkpoint(tmp_path / "ckpt", tiny_tokenizer, config)
    out = tmp_path / "hf"
    export_hf(checkpoint, out, dtype="float32")
    hf = LlavaOnevisionForConditionalGeneration.from_pretrained(str(out), dtype=torch.float32)
    hf.eval()
    ours = load_model(checkpoint, dtype=torch.float32)
    processor = Processor(tiny_tokenizer, config.vision.image_size)
    pixels = preprocess_frames(_frames(), config.vision.image_size)
    _, hf_ids = _hf_inputs(out, config)
    ends = {int(i) for i in hf.generation_config.eos_token_id}
    assert ends == processor.eos_ids
    mine = generate(
        ours,
        [processor.encode_prompt(TURN).input_ids],
        [pixels],
        eos_ids=processor.eos_ids,
        max_new_tokens=12,
    )[0]
    with torch.no_grad():
        theirs = hf.generate(
            input_ids=hf_ids, pixel_values_videos=pixels[None], max_new_tokens=12, do_sample=False
        )[0, hf_ids.shape[1] :].tolist()
    theirs = theirs[: next((i for i, t in enumerate(theirs) if t in ends), len(theirs))]
    assert len(mine) >= 3
    assert theirs == mine


def test_chat_template_string_content_and_system(tmp_path, tiny_tokenizer):
    checkpoint = _checkpoint(tmp_path / "ckpt", tiny_tokenizer, _config(1))
    out = tmp_path / "hf"
    export_hf(checkpoint, out)
    tokenizer = AutoTokenizer.from_pretrained(str(out), local_files_only=True)
    # vLLM's "string" content format: the placeholder, a newline, the text
    turn = "<video>\n" + TURN.removeprefix("<image>\n")
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": turn}], tokenize=False, add_generation_prompt=True
    )
    assert text == prompts.chat_prompt(TURN).replace("<image>", "<video><|action|>")
    text = tokenizer.apply_chat_template(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        tokenize=False,
        add_generation_prompt=False,
    )
    assert text == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
    info = json.loads((out / "llavaction_export.json").read_text())
    assert info["exact"] and info["token_ids"]["<|action|>"] == 602


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"newline_position": "grid"}, "mm_newline_position 'grid'"),
        ({"newline_position": "frame"}, "mm_newline_position 'frame'"),
        ({"pool_mode": "average"}, "mm_spatial_pool_mode 'average'"),
        ({"pool_stride": 3}, "mm_spatial_pool_stride 3"),
    ],
)
def test_refuses_variants_llava_onevision_cannot_express(
    tmp_path, tiny_tokenizer, changes, message
):
    checkpoint = _checkpoint(tmp_path / "ckpt", tiny_tokenizer, _config(1, **changes))
    with pytest.raises(CheckpointError, match=message):
        export_hf(checkpoint, tmp_path / "hf")
    assert not (tmp_path / "hf").exists()


def test_refuses_a_vocabulary_without_free_rows(tmp_path, tiny_tokenizer):
    config = _config(1, text=replace(_config(1).text, vocab_size=601))
    checkpoint = _checkpoint(tmp_path / "ckpt", tiny_tokenizer, config)
    with pytest.raises(CheckpointError, match="601 embedding rows: no free rows"):
        export_hf(checkpoint, tmp_path / "hf")


def test_cli_export_and_refusal(tmp_path, tiny_tokenizer, capsys):
    checkpoint = _checkpoint(tmp_path / "ckpt", tiny_tokenizer, _config(1))
    out = tmp_path / "hf"
    assert main(["export", "hf", "--checkpoint", str(checkpoint), "--out", str(out)]) == 0
    assert "<|action|>=602" in capsys.readouterr().out
    assert (out / "config.json").is_file() and (out / "chat_template.jinja").is_file()
    grid = _checkpoint(tmp_path / "grid", tiny_tokenizer, _config(1, newline_position="grid"))
    assert main(["export", "hf", "--checkpoint", str(grid), "--out", str(tmp_path / "g")]) == 1
    err = capsys.readouterr().err
    assert "cannot export exactly" in err and "'grid'" in err


def _torchvision_works() -> bool:
    if importlib.util.find_spec("torchvision") is None:
        return False
    try:
        import torchvision  # noqa: F401
    except Exception:  # a wheel built for another torch fails at import
        return False
    return True


@pytest.mark.skipif(not _torchvision_works(), reason="the video processor needs torchvision")
def test_exported_processor_gives_our_inputs(tmp_path, tiny_tokenizer):
    from transformers import AutoProcessor

    config = _config(1)
    out = tmp_path / "hf"
    export_hf(_checkpoint(tmp_path / "ckpt", tiny_tokenizer, config), out)
    processor = AutoProcessor.from_pretrained(str(out), local_files_only=True)
    text, hf_ids = _hf_inputs(out, config)
    frames = _frames()
    inputs = processor(text=text, videos=[frames], return_tensors="pt")
    assert inputs["input_ids"].tolist() == hf_ids.tolist()
    expected = preprocess_frames(frames, config.vision.image_size)[None]
    torch.testing.assert_close(inputs["pixel_values_videos"], expected, atol=1e-5, rtol=0)
