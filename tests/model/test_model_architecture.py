"""Shapes and losses of the model: token counts, newline layout, action token, masking."""

from __future__ import annotations

import pytest
import torch

from verbnoun.model.architecture import (
    IGNORE_INDEX,
    LlavactionForCausalLM,
    arrange_visual_tokens,
    lm_loss,
    masked_cross_entropy,
    pool_frames,
)
from verbnoun.model.config import (
    IMAGE_TOKEN_INDEX,
    SIGLIP_SO400M,
    LlavactionConfig,
    TextConfig,
    tiny_config,
)


def so400m_config(newline: str) -> LlavactionConfig:
    return LlavactionConfig(text=TextConfig(hidden_size=896), newline_position=newline)


@pytest.mark.parametrize(
    ("newline", "per_frame", "extra"),
    [("grid", 210, 0), ("frame", 197, 0), ("one_token", 196, 1), ("none", 196, 0)],
)
def test_so400m_token_counts(newline, per_frame, extra):
    config = so400m_config(newline)
    assert config.vision.grid == 27 and config.pooled_grid == 14
    frames, width = 3, 8  # random features of the real 27x27 grid, narrow channels
    features = torch.randn(frames, 27 * 27, width)
    pooled = pool_frames(features, config.vision.grid, config.pool_stride, config.pool_mode)
    assert pooled.shape == (frames, 14, 14, width)
    tokens = arrange_visual_tokens(pooled, torch.randn(width), newline)
    assert tokens.shape == (frames * per_frame + extra, width)
    assert config.visual_tokens(frames) == tokens.shape[0]
    assert so400m_config("grid").visual_tokens(64) == 64 * 210  # ~13.4K for 64 frames


def test_so400m_shape_is_built_in():
    assert SIGLIP_SO400M.hidden_size == 1152 and SIGLIP_SO400M.intermediate_size == 4304
    assert SIGLIP_SO400M.num_layers == 26 and SIGLIP_SO400M.num_heads == 16
    assert (SIGLIP_SO400M.patch_size, SIGLIP_SO400M.image_size) == (14, 384)


def test_bilinear_pooling_matches_a_hand_computed_value():
    # 3x3 grid pooled to 2x2 (ceil(3/2)): corner outputs interpolate corners of the input.
    grid = torch.arange(9.0).view(1, 9, 1)
    pooled = pool_frames(grid, 3, 2, "bilinear")[0, :, :, 0]
    # scale 1.5, half-pixel centres: output (0,0) samples input (0.25, 0.25)
    assert pooled[0, 0].item() == pytest.approx(0.25 * 3 + 0.25)
    averaged = pool_frames(torch.arange(16.0).view(1, 16, 1), 4, 2, "average")[0, :, :, 0]
    assert averaged[0, 0].item() == pytest.approx((0 + 1 + 4 + 5) / 4)


def test_grid_newline_follows_each_row_in_frame_order():
    frames, h, w, c = 2, 3, 3, 4
    pooled = (
        torch.arange(frames * h * w, dtype=torch.float32)
        .view(frames, h, w, 1)
        .expand(-1, -1, -1, c)
    )
    newline = torch.full((c,), -1.0)
    tokens = arrange_visual_tokens(pooled, newline, "grid")[:, 0]
    expected = []
    for f in range(frames):
        for r in range(h):
            expected += [float(f * 9 + r * 3 + col) for col in range(w)] + [-1.0]
    assert tokens.tolist() == expected


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return LlavactionForCausalLM(tiny_config()).eval()


def test_state_dict_keys_are_the_released_names(model):
    keys = set(model.state_dict())
    for key in (
        "model.embed_tokens.weight",
        "model.layers.0.self_attn.q_proj.weight",
        "model.layers.1.mlp.down_proj.weight",
        "model.norm.weight",
        "lm_head.weight",
        "model.vision_tower.vision_tower.vision_model.embeddings.patch_embedding.weight",
        "model.vision_tower.vision_tower.vision_model.encoder.layers.1.mlp.fc1.weight",
        "model.mm_projector.0.weight",
        "model.mm_projector.2.bias",
        "model.image_newline",
        "model.action_supervision",
        "verb_head.weight",
        "noun_head.weight",
        "action_head.weight",
    ):
        assert key in keys, key
    assert not [k for k in keys if "head.bias" in k or ".vision_model.head." in k]
    assert model.model.action_supervision.shape == (1, 64)
    assert model.verb_head.weight.shape == (10, 64)


def test_action_token_sits_right_after_the_visual_tokens(model):
    ids = torch.tensor([5, 6, 7, IMAGE_TOKEN_INDEX, 8, 9])
    video = torch.randn(2, 3, 32, 32)
    batch = model.prepare([ids], [video])
    n_visual = model.config.visual_tokens(2)
    assert n_visual == 2 * (2 * 2 + 2)  # 4x4 patches pooled to 2x2, a newline per row
    position = int(batch.action_positions[0])
    assert position == 3 + n_visual
    embeds = batch.inputs_embeds[0]
    assert embeds.shape[0] == 3 + n_visual + 1 + 2
    assert torch.equal(embeds[position], model.model.action_supervision[0])
    assert torch.equal(embeds[position + 1], model.model.embed_tokens.weight[8])
    assert torch.equal(embeds[position - 1], model.model.image_newline)
    # left padding shifts it by the padding
    short = torch.tensor([IMAGE_TOKEN_INDEX, 8])
    left = model.prepare([ids, short], [video, video], padding_side="left")
    pad = (3 + n_visual + 1 + 2) - (n_visual + 1 + 1)
    assert left.action_positions.tolist() == [position, pad + n_visual]
    assert left.attention_mask[1].tolist() == [0] * pad + [1] * (n_visual + 2)
    assert left.position_ids[1, pad:].tolist() == list(range(n_visual + 2))


def test_heads_read_the_action_token_hidden_state(model):
    ids = torch.tensor([5, IMAGE_TOKEN_INDEX, 8, 9])
    video = torch.randn(1, 3, 32, 32)
    out = model([ids], [video])
    batch = model.prepare([ids], [video])
    hidden = model.model(
        inputs_embeds=batch.inputs_embeds, attention_mask=batch.attention_mask
    ).last_hidden_state
    at = int(batch.action_positions[0])
    torch.testing.assert_close(out.verb_logits[0], model.verb_head(hidden[0, at]))
    torch.testing.assert_close(out.action_logits[0], model.action_head(hidden[0, at]))


def test_three_action_tokens_feed_one_head_each():
    torch.manual_seed(1)
    config = LlavactionConfig(**{**tiny_config().__dict__, "action_tokens": 3})
    model = LlavactionForCausalLM(config).eval()
    ids = torch.tensor([5, IMAGE_TOKEN_INDEX, 8])
    batch = model.prepare([ids], [torch.randn(1, 3, 32, 32)])
    out = model.run(batch)
    hidden = model.model(inputs_embeds=batch.inputs_embeds).last_hidden_state[0]
    at = int(batch.action_positions[0])
    torch.testing.assert_close(out.noun_logits[0], model.noun_head(hidden[at + 1]))
    torch.testing.assert_close(out.action_logits[0], model.action_head(hidden[at + 2]))


def test_lm_loss_counts_only_supervised_tokens():
    torch.manual_seed(0)
    logits = torch.randn(1, 5, 7)
    labels = torch.tensor([[IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX, 3, 4]])
    expected = torch.nn.functional.cross_entropy(logits[0, 2:4], torch.tensor([3, 4]))
    torch.testing.assert_close(lm_loss(logits, labels), expected)
    # changing a masked label changes nothing
    labels2 = labels.clone()
    labels2[0, 1] = IGNORE_INDEX
    torch.testing.assert_close(lm_loss(logits, labels2), expected)


def test_loss_only_gives_the_same_loss_and_gradients_from_fewer_logits(model):
    torch.manual_seed(3)
    ids = [torch.tensor([5, IMAGE_TOKEN_INDEX, 8, 9, 10]), torch.tensor([6, IMAGE_TOKEN_INDEX, 7])]
    videos = [torch.randn(1, 3, 32, 32), torch.randn(1, 3, 32, 32)]
    labels = [
        torch.tensor([IGNORE_INDEX, IGNORE_INDEX, 8, IGNORE_INDEX, 10]),
        torch.tensor([IGNORE_INDEX, IGNORE_INDEX, 7]),
    ]
    actions = torch.tensor([[1, 2, 3], [4, 5, 6]])

    def run(loss_only: bool):
        model.zero_grad()
        out = model(ids, videos, labels, actions, loss_only=loss_only)
        out.loss.backward()
        return out, [p.grad.clone() for p in model.parameters() if p.grad is not None]

    full, full_grads = run(False)
    kept, kept_grads = run(True)
    # one row per supervised target: 8, 10 and 7
    assert kept.logits.shape == (3, model.config.text.vocab_size)
    torch.testing.assert_close(kept.lm_loss, full.lm_loss)
    torch.testing.assert_close(kept.loss, full.loss)
    model.zero_grad()
    assert len(full_grads) == len(kept_grads)
    for a, b in zip(full_grads, kept_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    # nothing supervised: a zero loss that still reaches the LM head
    none = model(ids, videos, [torch.full((len(i),), IGNORE_INDEX) for i in ids], loss_only=True)
    assert none.lm_loss.item() == 0.0 and none.logits.shape[0] == 0


def test_visual_and_action_positions_are_never_supervised(model):
    ids = torch.tensor([5, IMAGE_TOKEN_INDEX, 8, 9])
    labels = torch.tensor([IGNORE_INDEX, IGNORE_INDEX, 8, 9])
    batch = model.prepare([ids], [torch.randn(1, 3, 32, 32)], [labels])
    inserted = model.config.visual_tokens(1) + 1
    assert batch.labels[0].tolist() == [IGNORE_INDEX] * (1 + inserted) + [8, 9]


def test_aux_loss_ignores_unknown_labels(model):
    ids = torch.tensor([5, IMAGE_TOKEN_INDEX, 8, 9])
    videos = [torch.randn(1, 3, 32, 32), torch.randn(1, 3, 32, 32)]
    labels = [torch.tensor([IGNORE_INDEX, IGNORE_INDEX, 8, 9])] * 2
    known = torch.tensor([[1, 2, 3], [4, 5, 6]])
    out = model([ids, ids], videos, labels, known)
    ce = torch.nn.functional.cross_entropy
    expected = (
        0.5 * ce(out.verb_logits, known[:, 0])
        + 0.5 * ce(out.noun_logits, known[:, 1])
        + 0.1 * ce(out.action_logits, known[:, 2])
    ) / 2
    torch.testing.assert_close(out.aux_loss, expected)
    torch.testing.assert_close(out.loss, out.lm_loss + 0.1 * out.aux_loss)
    # row 1 unknown: only row 0 counts
    partial = model([ids, ids], videos, labels, torch.tensor([[1, 2, 3], [-1, -1, -1]]))
    expected0 = (
        0.5 * ce(out.verb_logits[:1], known[:1, 0])
        + 0.5 * ce(out.noun_logits[:1], known[:1, 1])
        + 0.1 * ce(out.action_logits[:1], known[:1, 2])
    ) / 2
    torch.testing.assert_close(partial.aux_loss, expected0)
    # all unknown: zero, and the LM loss alone still backpropagates
    none = model([ids, ids], videos, labels, torch.full((2, 3), -1))
    assert none.aux_loss.item() == 0.0
    none.loss.backward()
    assert model.model.embed_tokens.weight.grad is not None
    model.zero_grad()


def test_masked_cross_entropy_without_valid_rows_is_zero():
    logits = torch.randn(3, 4, requires_grad=True)
    loss = masked_cross_entropy(logits, torch.tensor([-1, -1, -1]))
    loss.backward()
    assert loss.item() == 0.0 and torch.all(logits.grad == 0)
