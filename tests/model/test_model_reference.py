"""Reference check: with no action token and one newline per video, our model is
transformers' LlavaOnevisionForConditionalGeneration (same weights, same frames, same logits)."""

from __future__ import annotations

import torch
from transformers import LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration

from verbnoun.model.architecture import LlavactionForCausalLM, qwen2_config, siglip_config
from verbnoun.model.config import IMAGE_TOKEN_INDEX, tiny_config

VIDEO_TOKEN = 511  # a vocabulary id our text never uses


def build_pair(newline: str = "one_token"):
    torch.manual_seed(0)
    config = tiny_config(
        vocab_size=512, newline_position=newline, action_tokens=0, action_types=None
    )
    ours = LlavactionForCausalLM(config).eval()
    vision = siglip_config(config.vision)
    vision.num_hidden_layers = config.vision.num_layers + 1  # the reference reads layer -2
    reference_config = LlavaOnevisionConfig(
        text_config=qwen2_config(config.text).to_dict(),
        vision_config=vision.to_dict(),
        video_token_index=VIDEO_TOKEN,
        image_token_index=VIDEO_TOKEN - 1,
        vision_feature_layer=-2,
        vision_feature_select_strategy="full",
        projector_hidden_act="gelu",
        tie_word_embeddings=True,
    )
    reference_config._attn_implementation = "sdpa"
    reference = LlavaOnevisionForConditionalGeneration(reference_config).eval()
    # copy our weights into the reference's layout
    with torch.no_grad():
        inner = reference.model
        inner.language_model.load_state_dict(_text_state(ours), strict=True)
        tower = ours.model.vision_tower.vision_tower.vision_model.state_dict()
        missing, unexpected = inner.vision_tower.load_state_dict(tower, strict=False)
        extra_layer = f"encoder.layers.{config.vision.num_layers}."
        assert not unexpected and all(k.startswith(extra_layer) for k in missing)
        projector = inner.multi_modal_projector
        projector.linear_1.load_state_dict(ours.model.mm_projector[0].state_dict())
        projector.linear_2.load_state_dict(ours.model.mm_projector[2].state_dict())
        inner.image_newline.copy_(ours.model.image_newline)
        reference.lm_head.weight.copy_(ours.lm_head.weight)
    return ours, reference, config


def _text_state(ours: LlavactionForCausalLM) -> dict[str, torch.Tensor]:
    skip = ("vision_tower.", "mm_projector.", "image_newline", "action_supervision")
    return {k: v for k, v in ours.model.state_dict().items() if not k.startswith(skip)}


def test_logits_equal_llava_onevision():
    ours, reference, config = build_pair()
    torch.manual_seed(1)
    frames = 3
    video = torch.rand(frames, 3, 32, 32) * 2 - 1
    before, after = [3, 17, 42, 8], [9, 100, 7, 64, 5]
    n_visual = config.visual_tokens(frames)
    assert n_visual == frames * 4 + 1
    ids = torch.tensor([*before, IMAGE_TOKEN_INDEX, *after])
    ref_ids = torch.tensor([before + [VIDEO_TOKEN] * n_visual + after])
    with torch.no_grad():
        our_logits = ours([ids], [video]).logits
        ref_logits = reference(input_ids=ref_ids, pixel_values_videos=video[None]).logits
    assert our_logits.shape == ref_logits.shape == (1, len(before) + n_visual + len(after), 512)
    torch.testing.assert_close(our_logits, ref_logits, atol=1e-4, rtol=0)
    # and the check has teeth: a different newline changes the logits
    with torch.no_grad():
        ours.model.image_newline.add_(0.5)
        moved = ours([ids], [video]).logits
    assert (moved - ref_logits).abs().max() > 1e-3
