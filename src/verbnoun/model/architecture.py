"""The LLaVAction model in one file: LLaVA-Video (SigLIP + projector + Qwen2) with the action token.

Data flow for one sample (SPEC 6)::

    frames (F, 3, 384, 384)
      -> SigLIP, last encoder layer dropped, no post-layernorm   (F, 729, 1152)
      -> projector Linear(1152, H), GELU, Linear(H, H)           (F, 729, H)
      -> per-frame 2x2 bilinear pooling of the 27x27 grid         (F, 14, 14, H)
      -> newlines: after each row (grid) / frame / once per video (F*210, H) with grid
    token ids with one ``<image>`` placeholder (-200)
      -> [text before, visual tokens, action token(s), text after] as input embeddings
      -> Qwen2 decoder -> lm_head (next-token logits)
                       -> verb / noun / action heads on the action token's last hidden state

The module tree mirrors the released LLaVA-NeXT checkpoints so that ``state_dict()`` keys are
exactly theirs: ``model.embed_tokens.weight``, ``model.layers.{i}.*``, ``model.norm.weight``,
``lm_head.weight``, ``model.vision_tower.vision_tower.vision_model.*``,
``model.mm_projector.{0,2}.*``, ``model.image_newline``, ``model.action_supervision``,
``{verb,noun,action}_head.weight``. Attention, MLPs, rotary embeddings and caches are the
transformers components (``Qwen2Model``, ``SiglipVisionModel``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import Qwen2Config, Qwen2Model, SiglipVisionConfig, SiglipVisionModel

from verbnoun.errors import VerbnounError
from verbnoun.model.config import IMAGE_TOKEN_INDEX, LlavactionConfig, TextConfig, VisionConfig

IGNORE_INDEX = -100


def qwen2_config(text: TextConfig, attn_implementation: str = "sdpa") -> Qwen2Config:
    """The transformers ``Qwen2Config`` of our text settings."""
    config = Qwen2Config(
        vocab_size=text.vocab_size,
        hidden_size=text.hidden_size,
        intermediate_size=text.intermediate_size,
        num_hidden_layers=text.num_hidden_layers,
        num_attention_heads=text.num_attention_heads,
        num_key_value_heads=text.num_key_value_heads,
        max_position_embeddings=text.max_position_embeddings,
        rope_theta=text.rope_theta,
        rms_norm_eps=text.rms_norm_eps,
        tie_word_embeddings=text.tie_word_embeddings,
        bos_token_id=text.bos_token_id,
        eos_token_id=text.eos_token_id,
        use_sliding_window=False,
    )
    config._attn_implementation = attn_implementation
    return config


def siglip_config(vision: VisionConfig, attn_implementation: str = "sdpa") -> SiglipVisionConfig:
    """The transformers ``SiglipVisionConfig`` of the kept layers, without the pooling head."""
    config = SiglipVisionConfig(
        hidden_size=vision.hidden_size,
        intermediate_size=vision.intermediate_size,
        num_hidden_layers=vision.num_layers,
        num_attention_heads=vision.num_heads,
        patch_size=vision.patch_size,
        image_size=vision.image_size,
        layer_norm_eps=vision.layer_norm_eps,
        hidden_act=vision.hidden_act,
        vision_use_head=False,
    )
    config._attn_implementation = attn_implementation
    return config


class VisionTower(nn.Module):
    """SigLIP as LLaVA-NeXT wraps it (keys ``vision_tower.vision_model.*``): returns the output of
    the kept encoder layers, without the post-layernorm (which stays, unused, for the keys)."""

    def __init__(self, vision: VisionConfig, attn_implementation: str = "sdpa") -> None:
        super().__init__()
        self.vision_tower = nn.Module()
        self.vision_tower.vision_model = SiglipVisionModel(
            siglip_config(vision, attn_implementation)
        )

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``(frames, 3, S, S)`` -> ``(frames, patches, width)``."""
        siglip = self.vision_tower.vision_model
        dtype = siglip.embeddings.patch_embedding.weight.dtype
        hidden = siglip.embeddings(pixel_values.to(dtype))
        return siglip.encoder(inputs_embeds=hidden).last_hidden_state


def pool_frames(features: torch.Tensor, grid: int, stride: int, mode: str) -> torch.Tensor:
    """Per-frame spatial pooling: ``(F, grid*grid, C)`` -> ``(F, h, w, C)``.

    ``bilinear`` resizes to ``ceil(grid / stride)`` per side (27 -> 14), as LLaVA-Video does;
    ``average`` and ``max`` pool with kernel = stride."""
    frames, patches, channels = features.shape
    if patches != grid * grid:
        raise ValueError(f"{patches} patches per frame, expected {grid}x{grid}")
    x = features.view(frames, grid, grid, channels).permute(0, 3, 1, 2).contiguous()
    if mode == "bilinear":
        side = math.ceil(grid / stride)
        x = F.interpolate(x, size=(side, side), mode="bilinear")
    elif mode == "average":
        x = F.avg_pool2d(x, stride)
    elif mode == "max":
        x = F.max_pool2d(x, stride)
    else:
        raise ValueError(f"unknown pooling mode {mode!r}")
    return x.permute(0, 2, 3, 1)


def arrange_visual_tokens(
    pooled: torch.Tensor, newline: torch.Tensor | None, position: str
) -> torch.Tensor:
    """Flatten pooled frames ``(F, h, w, C)`` into the visual token sequence ``(N, C)``.

    ``grid``: a newline after each row of each frame (LLaVA-Video: 14*15 = 210 per frame);
    ``frame``: one after each frame; ``one_token``: one after the whole video (LLaVA-OneVision);
    ``none``: no newline."""
    frames, h, w, c = pooled.shape
    if position == "none":
        return pooled.reshape(-1, c)
    if newline is None:
        raise ValueError(f"newline position {position!r} needs the image_newline vector")
    newline = newline.to(pooled.dtype)
    if position == "grid":
        rows = torch.cat([pooled, newline.expand(frames, h, 1, c)], dim=2)
        return rows.reshape(-1, c)
    if position == "frame":
        flat = pooled.reshape(frames, h * w, c)
        return torch.cat([flat, newline.expand(frames, 1, c)], dim=1).reshape(-1, c)
    if position == "one_token":
        return torch.cat([pooled.reshape(-1, c), newline.view(1, c)], dim=0)
    raise ValueError(f"unknown newline position {position!r}")


class LlavactionModel(Qwen2Model):
    """The Qwen2 decoder plus the multimodal parts, under the released key names."""

    def __init__(self, config: LlavactionConfig) -> None:
        super().__init__(qwen2_config(config.text, config.attn_implementation))
        hidden = config.text.hidden_size
        self.vision_tower = VisionTower(config.vision, config.attn_implementation)
        self.mm_projector = nn.Sequential(
            nn.Linear(config.vision.hidden_size, hidden), nn.GELU(), nn.Linear(hidden, hidden)
        )
        self.image_newline = nn.Parameter(torch.empty(hidden))
        self.action_supervision = (
            nn.Parameter(torch.empty(config.action_tokens, hidden))
            if config.action_tokens
            else None
        )


@dataclass
class Batch:
    """Model inputs after the placeholder expansion, padded. ``action_positions``: index of each
    row's first action token (-1 when the row has no video or no action token)."""

    inputs_embeds: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    labels: torch.Tensor | None
    action_positions: torch.Tensor


@dataclass
class LlavactionOutput:
    """Logits, losses and head outputs of one forward pass."""

    logits: torch.Tensor
    loss: torch.Tensor | None = None
    lm_loss: torch.Tensor | None = None
    aux_loss: torch.Tensor | None = None
    verb_logits: torch.Tensor | None = None
    noun_logits: torch.Tensor | None = None
    action_logits: torch.Tensor | None = None
    cache: object | None = None


class LlavactionForCausalLM(nn.Module):
    """LLaVA-Video with the action token and its three bias-free heads (SPEC 6)."""

    def __init__(self, config: LlavactionConfig) -> None:
        super().__init__()
        self.config = config
        hidden, vocab = config.text.hidden_size, config.text.vocab_size
        self.model = LlavactionModel(config)
        self.lm_head = nn.Linear(hidden, vocab, bias=False)
        if config.action_types is not None:
            verbs, nouns, actions = config.action_types
            self.verb_head = nn.Linear(hidden, verbs, bias=False)
            self.noun_head = nn.Linear(hidden, nouns, bias=False)
            self.action_head = nn.Linear(hidden, actions, bias=False)
        self.init_extra_parameters()
        self.tie_weights()

    # ---- parameters -------------------------------------------------------------------------

    def tie_weights(self) -> None:
        """Share the output projection with the input embeddings when the config says so."""
        if self.config.text.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    @torch.no_grad()
    def init_extra_parameters(self) -> None:
        """Explicit initialisation of what LLaVA adds to the LM: newline, action token(s), heads
        (normal, std 1/sqrt(H) for the vectors, 0.02 for the heads)."""
        std = 1.0 / math.sqrt(self.config.text.hidden_size)
        self.model.image_newline.normal_(0.0, std)
        if self.model.action_supervision is not None:
            self.model.action_supervision.normal_(0.0, std)
        for head in self.heads():
            head.weight.normal_(0.0, 0.02)

    def heads(self) -> list[nn.Linear]:
        """The verb, noun and action heads (empty when the config has none)."""
        if self.config.action_types is None:
            return []
        return [self.verb_head, self.noun_head, self.action_head]

    @property
    def device(self) -> torch.device:
        return self.lm_head.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.lm_head.weight.dtype

    # ---- inputs -----------------------------------------------------------------------------

    def encode_videos(self, videos: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Pixel values ``(F, 3, S, S)`` per video -> visual token embeddings ``(N, H)`` each."""
        if not videos:
            return []
        counts = [video.shape[0] for video in videos]
        frames = torch.cat([video.to(self.device) for video in videos])
        features = self.model.mm_projector(self.model.vision_tower(frames))
        pooled = pool_frames(
            features, self.config.vision.grid, self.config.pool_stride, self.config.pool_mode
        )
        newline = self.model.image_newline
        position = self.config.newline_position
        return [arrange_visual_tokens(p, newline, position) for p in pooled.split(counts)]

    def prepare(
        self,
        input_ids: Sequence[torch.Tensor],
        videos: Sequence[torch.Tensor | None],
        labels: Sequence[torch.Tensor] | None = None,
        *,
        padding_side: str = "right",
    ) -> Batch:
        """Expand each row's ``<image>`` placeholder into visual tokens + action token(s), embed,
        and pad. A row without a placeholder must have no video (text only)."""
        present = [v for v in videos if v is not None]
        visual = iter(self.encode_videos(present))
        embed = self.model.embed_tokens
        action = self.model.action_supervision
        rows, row_labels, positions = [], [], []
        for i, ids in enumerate(input_ids):
            ids = ids.to(self.device)
            lab = labels[i].to(self.device) if labels is not None else None
            where = (ids == IMAGE_TOKEN_INDEX).nonzero().flatten()
            if videos[i] is None:
                if len(where):
                    raise VerbnounError(f"row {i} has an <image> placeholder but no video")
                rows.append(embed(ids))
                row_labels.append(lab)
                positions.append(-1)
                continue
            if len(where) != 1:
                raise VerbnounError(f"row {i} needs one <image> placeholder, has {len(where)}")
            p = int(where[0])
            tokens = next(visual).to(embed.weight.dtype)
            parts = [embed(ids[:p]), tokens]
            inserted = tokens.shape[0]
            if action is not None:
                parts.append(action.to(tokens.dtype))
                inserted += action.shape[0]
            parts.append(embed(ids[p + 1 :]))
            rows.append(torch.cat(parts))
            positions.append(p + tokens.shape[0] if action is not None else -1)
            if lab is not None:
                fill = torch.full((inserted,), IGNORE_INDEX, dtype=lab.dtype, device=lab.device)
                row_labels.append(torch.cat([lab[:p], fill, lab[p + 1 :]]))
        return self._pad(rows, row_labels if labels is not None else None, positions, padding_side)

    def _pad(
        self,
        rows: list[torch.Tensor],
        labels: list[torch.Tensor] | None,
        positions: list[int],
        side: str,
    ) -> Batch:
        length = max(row.shape[0] for row in rows)
        hidden = rows[0].shape[1]
        embeds = rows[0].new_zeros(len(rows), length, hidden)
        mask = torch.zeros(len(rows), length, dtype=torch.long, device=self.device)
        out_labels = None
        if labels is not None:
            out_labels = torch.full((len(rows), length), IGNORE_INDEX, device=self.device)
        shifted = []
        for i, row in enumerate(rows):
            n = row.shape[0]
            start = length - n if side == "left" else 0
            embeds[i, start : start + n] = row
            mask[i, start : start + n] = 1
            if out_labels is not None:
                out_labels[i, start : start + n] = labels[i]
            shifted.append(positions[i] + start if positions[i] >= 0 else -1)
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        action_positions = torch.tensor(shifted, device=self.device)
        return Batch(embeds, mask, position_ids, out_labels, action_positions)

    # ---- forward ----------------------------------------------------------------------------

    def forward(
        self,
        input_ids: Sequence[torch.Tensor],
        videos: Sequence[torch.Tensor | None],
        labels: Sequence[torch.Tensor] | None = None,
        actions: torch.Tensor | None = None,
        *,
        padding_side: str = "right",
        logits_to_keep: int = 0,
        loss_only: bool = False,
    ) -> LlavactionOutput:
        """Token ids (with ``<image>`` = -200) and pixel values -> logits and losses.

        ``labels``: per-row token targets aligned with ``input_ids`` (-100 = not supervised);
        ``actions``: ``(B, 3)`` verb, noun, action class per row, -1 where unknown;
        ``logits_to_keep``: 0 for all positions, k for the last k only;
        ``loss_only`` (with ``labels``, for training): vocabulary logits only at the positions
        that predict a supervised token, so their memory follows the supervised tokens, not the
        sequence (a 16-frame clip is ~3,000 positions x 152k vocabulary); ``logits`` is then
        ``(N, vocab)`` for those N positions, in order, and the loss is the same."""
        batch = self.prepare(input_ids, videos, labels, padding_side=padding_side)
        return self.run(batch, actions, logits_to_keep=logits_to_keep, loss_only=loss_only)

    def run(
        self,
        batch: Batch,
        actions: torch.Tensor | None = None,
        *,
        cache: object | None = None,
        use_cache: bool = False,
        logits_to_keep: int = 0,
        loss_only: bool = False,
    ) -> LlavactionOutput:
        """The decoder on prepared inputs, plus the LM loss and the auxiliary loss when asked
        (``loss_only``: see :meth:`forward`)."""
        out = self.model(
            inputs_embeds=batch.inputs_embeds,
            attention_mask=batch.attention_mask,
            position_ids=batch.position_ids,
            cache=cache,
            use_cache=use_cache,
        )
        hidden = out.last_hidden_state
        losses = []
        if loss_only and batch.labels is not None:
            targets = batch.labels[:, 1:]
            supervised = targets != IGNORE_INDEX
            result = LlavactionOutput(logits=self.lm_head(hidden[:, :-1][supervised]))
            result.lm_loss = token_loss(result.logits, targets[supervised])
            losses.append(result.lm_loss)
        else:
            kept = hidden[:, -logits_to_keep:] if logits_to_keep else hidden
            result = LlavactionOutput(logits=self.lm_head(kept), cache=out.cache)
            if batch.labels is not None:
                result.lm_loss = lm_loss(result.logits, batch.labels)
                losses.append(result.lm_loss)
        if self.config.action_types is not None and (batch.action_positions >= 0).any():
            self._head_logits(hidden, batch.action_positions, result)
            if actions is not None:
                result.aux_loss = self.aux_loss(result, batch.action_positions, actions)
                losses.append(self.config.aux_loss_weight * result.aux_loss)
        if losses:
            result.loss = sum(losses[1:], losses[0])
        return result

    def _head_logits(
        self, hidden: torch.Tensor, positions: torch.Tensor, result: LlavactionOutput
    ) -> None:
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        at = positions.clamp(min=0)
        # One token: all heads read it; three tokens: verb, noun, action read one each.
        offsets = (0, 1, 2) if self.config.action_tokens == 3 else (0, 0, 0)
        verb, noun, action = (
            head(hidden[rows, at + k]) for head, k in zip(self.heads(), offsets, strict=True)
        )
        result.verb_logits, result.noun_logits, result.action_logits = verb, noun, action

    def aux_loss(
        self, result: LlavactionOutput, positions: torch.Tensor, actions: torch.Tensor
    ) -> torch.Tensor:
        """``(w_v*CE_verb + w_n*CE_noun + w_a*CE_action) / divisor`` over rows with a video and
        a label; a -1 label (unknown class) leaves its row out of that head's term."""
        actions = actions.to(positions.device).clone()
        actions[positions < 0] = -1
        logits = (result.verb_logits, result.noun_logits, result.action_logits)
        total = None
        for weight, head_logits, target in zip(
            self.config.aux_weights, logits, actions.T, strict=True
        ):
            term = weight * masked_cross_entropy(head_logits, target)
            total = term if total is None else total + term
        return total / self.config.aux_divisor


def masked_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over rows whose target is >= 0; zero (still in the graph) if none."""
    return token_loss(logits, torch.where(target >= 0, target, IGNORE_INDEX))


def lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy, mean over supervised positions (labels != -100)."""
    shift_logits = logits[:, :-1].reshape(-1, logits.shape[-1])
    return token_loss(shift_logits, labels[:, 1:].reshape(-1))


def token_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``(N, vocab)`` logits against ``(N,)`` targets, mean over the targets
    that are not -100; zero (still in the graph) when there are none."""
    logits = logits.float()
    if not bool((targets != IGNORE_INDEX).any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits, targets, ignore_index=IGNORE_INDEX)
